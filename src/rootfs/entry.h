// The rootfs model: one Entry per path of a layer, with metadata already
// normalised (numeric owners, permission bits, no times) and a ContentSource
// for a regular file's bytes, read only when the layer is written.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace kiln {

enum class EntryType : uint8_t {
  kFile,
  kDir,
  kSymlink,
  kHardlink,
  kChar,
  kBlock,
  kFifo
};
const char* EntryTypeName(EntryType type);

// Receives a stream of bytes (a tar writer, a hasher, a file).
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void Write(const void* data, size_t n) = 0;
};

// Appends to a string (small contents: account files, tests).
class StringSink : public ByteSink {
 public:
  explicit StringSink(std::string* out) : out_(out) {}
  void Write(const void* data, size_t n) override {
    out_->append(static_cast<const char*>(data), n);
  }

 private:
  std::string* out_;
};

// Forwards to another sink, counting the bytes.
class CountingSink : public ByteSink {
 public:
  explicit CountingSink(ByteSink& next) : next_(next) {}
  void Write(const void* data, size_t n) override {
    next_.Write(data, n);
    count += n;
  }
  uint64_t count = 0;

 private:
  ByteSink& next_;
};

// Where a regular file's bytes come from: a context file, inline text, a spool
// of unpacked archive members.
class ContentSource {
 public:
  virtual ~ContentSource() = default;
  // Streams exactly `size` bytes; throws if the source no longer has them.
  virtual void CopyTo(ByteSink& sink, uint64_t size) const = 0;
  // For messages: "context file bin/hello".
  virtual std::string Describe() const = 0;
  // Reads the whole content (small files only: /etc/passwd and friends).
  std::string ReadAll(uint64_t size) const;
};

std::shared_ptr<const ContentSource> InlineContent(std::string bytes);

struct Entry {
  std::string path;  // normalised image path: "usr/bin/hello"
  EntryType type = EntryType::kFile;
  uint32_t mode = 0644;  // permission bits, including setuid/setgid/sticky
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // regular files
  std::string
      link;  // symlink target (verbatim) or hardlink target (image path)
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  std::shared_ptr<const ContentSource> content;  // regular files with size > 0
  std::string
      sha256;  // hex of the content, when a reader computed it (diff, SBOM)
  std::string sha1;    // hex, only for SBOMs (SPDX requires it)
  uint32_t layer = 0;  // the image layer it was read from (reading back)
  std::string origin;  // where it was declared, for messages

  bool IsDir() const { return type == EntryType::kDir; }
};

// OCI whiteouts: ".wh.NAME" hides NAME below; ".wh..wh..opq" hides a
// directory's lower contents.
inline constexpr char kWhiteoutPrefix[] = ".wh.";
inline constexpr char kOpaqueWhiteout[] = ".wh..wh..opq";

}  // namespace kiln

// An OCI image layout directory (image-spec "image-layout"): oci-layout,
// index.json, blobs/sha256/<hex>. Blobs are written temp file -> fsync ->
// verify -> rename, so no reader ever sees a partial blob under a final name;
// index.json changes are read-modify-write under a lock and replaced
// atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/fs.h"
#include "digest/digest.h"
#include "oci/model.h"
#include "rootfs/entry.h"

namespace kiln {

// A blob being written. Hashes what it is given; Commit() puts it in place.
class BlobWriter : public ByteSink {
 public:
  BlobWriter(std::string blobs_dir, UniqueFd fd, std::string temp_path);
  ~BlobWriter() override;  // an uncommitted blob's temp file is removed

  void Write(const void* data, size_t n) override;
  uint64_t size() const { return hasher_.bytes(); }
  // fsync, check against `expected` if given, rename to blobs/sha256/<hex>.
  Descriptor Commit(const std::string& media_type,
                    const std::optional<Digest>& expected = std::nullopt);

 private:
  std::string blobs_dir_;
  UniqueFd fd_;
  std::string temp_path_;
  Sha256 hasher_;
  bool committed_ = false;
};

class Layout {
 public:
  // Opens `dir`; with `create`, makes it a layout if it is empty or missing.
  // A damaged layout reads as `corrupt_kind` errors (user input for oci:
  // directories, the environment for the store).
  static Layout Open(const std::string& dir, bool create,
                     ErrorKind corrupt_kind = ErrorKind::kUser);

  const std::string& dir() const { return dir_; }
  // The kind of error a damaged layout gives (see Open).
  ErrorKind corrupt_kind() const { return corrupt_kind_; }
  std::string BlobPath(const Digest& digest) const;
  bool HasBlob(const Digest& digest) const;

  std::unique_ptr<BlobWriter> NewBlob() const;
  Descriptor PutBlob(std::string_view bytes,
                     const std::string& media_type) const;
  // Moves a finished file (on the layout's file system) in as a blob: hashed,
  // fsynced and renamed, so a large file is never copied.
  Descriptor AdoptFile(const std::string& path,
                       const std::string& media_type) const;
  // Reads a small blob and checks its size and digest.
  std::string ReadBlob(const Descriptor& d,
                       uint64_t max_bytes = 16 << 20) const;
  // Copies a blob from another layout unless present, verifying the digest.
  void CopyBlobFrom(const Layout& from, const Descriptor& d) const;

  Index ReadIndex() const;
  // Changes index.json under an exclusive lock on the directory.
  void UpdateIndex(const std::function<void(Index&)>& change) const;
  // The entry named `ref` (org.opencontainers.image.ref.name), if any.
  std::optional<Descriptor> FindRef(const std::string& ref) const;

 private:
  Layout(std::string dir, ErrorKind kind)
      : dir_(std::move(dir)), corrupt_kind_(kind) {}
  Error Corrupt(const std::string& message) const {
    return Error(corrupt_kind_, message);
  }

  std::string dir_;
  ErrorKind corrupt_kind_;
};

}  // namespace kiln

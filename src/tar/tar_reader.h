// Reads tar archives (plain or compressed with gzip, zstd, xz, bzip2, lz4) with
// libarchive, one entry at a time, streaming: tarball inputs and image layers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "digest/digest.h"
#include "rootfs/entry.h"

struct archive;

namespace kiln {

struct TarHeader {
  std::string name;  // as stored, not normalised
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  std::string link;  // symlink target, or the hardlink's target name as stored
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  bool unsupported = false;  // a socket or an unknown type
  // What kiln never writes but another archive may carry; only comparisons
  // (kiln diff --layers, kiln repro) look at these.
  int64_t mtime = 0;
  int64_t mtime_nsec = 0;
  std::string uname;
  std::string gname;
  std::vector<std::pair<std::string, std::string>> xattrs;  // name, value
  std::string extra;   // atime, ctime, ACLs, file flags: "atime=1 ctime=2"
  int64_t offset = 0;  // where its header starts in the uncompressed tar
};

class TarReader {
 public:
  // `what` names the archive in errors ("tarball vendor/x.tar.gz"). With
  // `expected`, the file's bytes are hashed as they are read, and reaching the
  // end with another digest is an error (a layer blob that rotted on disk).
  static std::unique_ptr<TarReader> Open(
      const std::string& path, const std::string& what,
      std::optional<Digest> expected = std::nullopt);
  // Reads an archive from a stream: pull(&buf) returns the next block's size
  // (0 at the end), as libarchive's read callbacks do.
  static std::unique_ptr<TarReader> OpenStream(
      std::function<long(const void**)> pull, const std::string& what);
  ~TarReader();

  // The next entry's header; false at the end. Errors are UserErrors naming
  // the archive (a corrupt or truncated input).
  bool Next(TarHeader* header);
  // Streams the current entry's data to sink; returns the byte count.
  uint64_t CopyData(ByteSink& sink);

 private:
  struct Source;
  TarReader(struct archive* a, std::unique_ptr<Source> source,
            std::string what);
  [[noreturn]] void Fail(const std::string& doing);

  struct archive* a_;
  std::unique_ptr<Source> source_;
  std::string what_;
};

// Decompresses a whole blob (gzip, zstd, or none) into sink; returns the
// uncompressed byte count.
uint64_t Decompress(const std::string& path, ByteSink& sink,
                    const std::string& what);

// What the files of an input archive (a tarball, a .deb) of `archive_bytes`
// may add up to unless the template allows more: 100 times its size, at
// least 1 GB. A decompression bomb, or a sparse file of holes, is refused at
// the header that crosses it, before its data is unpacked.
uint64_t DefaultUnpackLimit(uint64_t archive_bytes);
// The rule, for messages: "a tarball may unpack to 100 times its size or
// 1.0 GB, whichever is more".
std::string UnpackLimitRule(const std::string& what);

}  // namespace kiln

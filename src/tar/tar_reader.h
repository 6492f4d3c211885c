// Reads tar archives (plain or compressed with gzip, zstd, xz, bzip2, lz4) with
// libarchive, one entry at a time, streaming: tarball inputs and image layers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

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

}  // namespace kiln

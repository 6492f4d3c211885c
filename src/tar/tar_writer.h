// Writes a deterministic tar stream (POSIX ustar, with pax extended headers
// only where ustar cannot hold a value). Every entry gets the one build date as
// its mtime; no atime/ctime, no user or group names, no host xattrs.
#pragma once

#include <cstdint>
#include <string>

#include "rootfs/entry.h"

namespace kiln {

class TarWriter {
 public:
  TarWriter(ByteSink& out, int64_t mtime) : out_(out), mtime_(mtime) {}

  // Writes the entry's header(s) and, for a regular file, its content.
  void Add(const Entry& entry);
  // The two zero blocks that end an archive.
  void Finish();
  uint64_t bytes_written() const { return bytes_; }

 private:
  void Emit(const void* data, size_t n);
  void Pad(uint64_t size);
  void WriteHeader(const std::string& name, char typeflag, const Entry& e,
                   uint64_t size, const std::string& link);

  ByteSink& out_;
  int64_t mtime_;
  uint64_t bytes_ = 0;
};

}  // namespace kiln

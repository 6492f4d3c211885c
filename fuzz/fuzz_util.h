// What the fuzzers share: a scratch file for the entry points that read a
// path, and sinks for entry data.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/temp_dir.h"
#include "rootfs/entry.h"

namespace kiln::fuzz {

// One file in a private temporary folder (removed at exit), written anew for
// each input: no fsync, no rename, since only this process reads it.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& name)
      : dir_(std::filesystem::temp_directory_path().string(), "kiln-fuzz-"),
        path_(dir_.path() + "/" + name) {}

  const std::string& Write(const uint8_t* data, size_t size) {
    // A new file each time: ext4 flushes a file truncated and written again
    // when it is closed (auto_da_alloc), which would make the fuzzer wait.
    ::unlink(path_.c_str());
    int fd =
        ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) __builtin_trap();
    while (size > 0) {
      ssize_t n = ::write(fd, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) __builtin_trap();
      data += n;
      size -= static_cast<size_t>(n);
    }
    ::close(fd);
    return path_;
  }

 private:
  TempDir dir_;
  std::string path_;
};

// Drops entry data, but stops an input that unpacks to more than 64 MiB (a
// decompression bomb is slow, not a bug: kiln's inputs are pinned by digest).
class CappedSink : public ByteSink {
 public:
  void Write(const void*, size_t n) override {
    total_ += n;
    if (total_ > kMax) throw UserError("fuzz: more than 64 MiB of entry data");
  }

 private:
  static constexpr uint64_t kMax = uint64_t{64} << 20;
  uint64_t total_ = 0;
};

}  // namespace kiln::fuzz

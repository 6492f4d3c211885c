// File-system helpers: descriptors, whole-file reads, atomic writes, locks.
// Every failure is an EnvError naming the path and the operation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace kiln {

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release();

 private:
  int fd_ = -1;
};

// Opens for reading; throws EnvError (UserError if `missing_is_user`).
UniqueFd OpenRead(const std::string& path, bool missing_is_user = false);
// Reads up to n bytes, retrying on EINTR and short reads; returns bytes read.
size_t ReadFull(int fd, void* buf, size_t n, const std::string& what);
void WriteAll(int fd, const void* data, size_t n, const std::string& what);
// Reads a whole file; refuses files larger than max_bytes.
std::string ReadFile(const std::string& path, uint64_t max_bytes = 64 << 20);
// At most the first `n` bytes of a file.
std::string ReadPrefix(const std::string& path, size_t n);
bool PathExists(const std::string& path);
void MakeDirs(const std::string& path);
// Removes `root` and all below it, whatever modes a build left there (a
// read-only folder holding files): folders are made writable first; links are
// removed, never followed. Returns the first error (none if `root` is gone).
std::error_code RemoveFolder(const std::string& root);
void FsyncPath(const std::string& path);
// Writes temp file -> fsync -> rename -> fsync(dir): readers see the old or the
// new content, never a part.
void WriteFileAtomic(const std::string& path, std::string_view data,
                     unsigned mode = 0644);
// For hints that may be lost in a crash but never read half-written (caches
// whose every line is checked): written beside and renamed, without fsync.
void WriteHintFile(const std::string& path, std::string_view data);
// Copies the file `from` into `out_fd` at `offset`, leaving holes where
// `from` has them (raw disk images are mostly holes); copy_file_range where
// the file systems allow it, read and write where not.
void CopySparseInto(const std::string& from, int out_fd, uint64_t offset,
                    const std::string& out_what);
// A unique name beside `path` for a temporary file ("DIR/.tmp-NAME-RANDOM").
std::string TempPathBeside(const std::string& path);
std::string Dirname(const std::string& path);
std::string Basename(const std::string& path);
// Absolute, normalised form of path (no symlinks resolved).
std::string AbsolutePath(const std::string& path);

// An advisory lock (flock) on a file or directory, released on destruction.
// Sets a file's times to now (best effort: a read-only store is fine).
void Touch(const std::string& path);

class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  FileLock(const std::string& path, Mode mode);
  FileLock(FileLock&&) = default;
  ~FileLock() = default;

 private:
  UniqueFd fd_;
};

}  // namespace kiln

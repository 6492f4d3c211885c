#include "core/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <random>
#include <vector>

#include "core/error.h"

namespace kiln {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.Release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::Release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

UniqueFd OpenRead(const std::string& path, bool missing_is_user) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (missing_is_user && (err == ENOENT || err == ENOTDIR)) {
      throw UserError(path + ": no such file");
    }
    throw SystemError("opening " + path, err);
  }
  return UniqueFd(fd);
}

size_t ReadFull(int fd, void* buf, size_t n, const std::string& what) {
  size_t done = 0;
  auto* p = static_cast<char*>(buf);
  while (done < n) {
    ssize_t r = ::read(fd, p + done, n - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw SystemError("reading " + what, errno);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

void WriteAll(int fd, const void* data, size_t n, const std::string& what) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw SystemError("writing " + what, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

std::string ReadFile(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd = OpenRead(path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw SystemError("stat " + path, errno);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    throw UserError(path + ": file is larger than " +
                    std::to_string(max_bytes) + " bytes");
  }
  std::string data;
  data.resize(static_cast<size_t>(st.st_size));
  size_t got = ReadFull(fd.get(), data.data(), data.size(), path);
  data.resize(got);
  return data;
}

std::string ReadPrefix(const std::string& path, size_t n) {
  UniqueFd fd = OpenRead(path);
  std::string data(n, '\0');
  data.resize(ReadFull(fd.get(), data.data(), n, path));
  return data;
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

void MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw EnvError("creating directory " + path + ": " + ec.message());
}

std::error_code RemoveFolder(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // The iterator enters a folder after it is visited: chmod it first.
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
        (st.st_mode & S_IRWXU) != S_IRWXU)
      ::chmod(it->path().c_str(), (st.st_mode & 07777) | S_IRWXU);
  }
  if (ec == std::errc::no_such_file_or_directory) ec.clear();
  std::error_code removed;
  fs::remove_all(root, removed);
  return removed ? removed : ec;
}

void FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SystemError("opening " + path, errno);
  UniqueFd owned(fd);
  if (::fsync(fd) != 0 && errno != EINVAL)
    throw SystemError("fsync " + path, errno);
}

std::string TempPathBeside(const std::string& path) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char suffix[17];
  snprintf(suffix, sizeof suffix, "%016llx",
           static_cast<unsigned long long>(rng()));
  return Dirname(path) + "/.tmp-" + Basename(path) + "-" + suffix;
}

void WriteFileAtomic(const std::string& path, std::string_view data,
                     unsigned mode) {
  std::string tmp = TempPathBeside(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw SystemError("creating " + tmp, errno);
  UniqueFd owned(fd);
  try {
    WriteAll(fd, data.data(), data.size(), tmp);
    if (::fchmod(fd, mode) != 0) throw SystemError("chmod " + tmp, errno);
    if (::fsync(fd) != 0) throw SystemError("fsync " + tmp, errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      throw SystemError("renaming " + tmp + " to " + path, errno);
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  FsyncPath(Dirname(path));
}

void WriteHintFile(const std::string& path, std::string_view data) {
  std::string tmp = TempPathBeside(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw SystemError("creating " + tmp, errno);
  UniqueFd owned(fd);
  try {
    WriteAll(fd, data.data(), data.size(), tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      throw SystemError("renaming " + tmp + " to " + path, errno);
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

std::string Dirname(const std::string& path) {
  size_t pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string Basename(const std::string& path) {
  size_t pos = path.find_last_of('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  if (ec) throw EnvError("resolving " + path + ": " + ec.message());
  return abs.lexically_normal().string();
}

FileLock::FileLock(const std::string& path, Mode mode) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  }
  if (fd < 0) throw SystemError("opening lock " + path, errno);
  fd_ = UniqueFd(fd);
  int op = mode == Mode::kShared ? LOCK_SH : LOCK_EX;
  while (::flock(fd, op) != 0) {
    if (errno != EINTR) throw SystemError("locking " + path, errno);
  }
}

void Touch(const std::string& path) {
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
}

}  // namespace kiln

namespace kiln {

void CopySparseInto(const std::string& from, int out_fd, uint64_t offset,
                    const std::string& out_what) {
  UniqueFd in = OpenRead(from);
  struct stat st;
  if (::fstat(in.get(), &st) != 0) throw SystemError("reading " + from, errno);
  std::vector<char> buf;
  bool plain = false;  // copy_file_range refused: read and write
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = ::lseek(in.get(), pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;
    if (data < 0) throw SystemError("reading " + from, errno);
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) throw SystemError("reading " + from, errno);
    loff_t src = data, dst = static_cast<loff_t>(offset) + data;
    while (src < hole) {
      size_t want = static_cast<size_t>(hole - src);
      if (!plain) {
        ssize_t n = ::copy_file_range(in.get(), &src, out_fd, &dst, want, 0);
        if (n > 0) continue;
        if (n < 0 && errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
            errno != EOPNOTSUPP)
          throw SystemError("copying " + from + " into " + out_what, errno);
        plain = true;
      }
      buf.resize(1 << 20);
      size_t n = ::pread(in.get(), buf.data(), std::min(want, buf.size()), src);
      if (n == static_cast<size_t>(-1))
        throw SystemError("reading " + from, errno);
      if (n == 0) throw EnvError(from + " shrank while it was copied");
      for (size_t done = 0; done < n;) {
        ssize_t w = ::pwrite(out_fd, buf.data() + done, n - done,
                             dst + static_cast<off_t>(done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw SystemError("writing " + out_what, errno);
        done += static_cast<size_t>(w);
      }
      src += static_cast<off_t>(n);
      dst += static_cast<off_t>(n);
    }
    pos = hole;
  }
}

}  // namespace kiln

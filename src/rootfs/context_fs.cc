#include "rootfs/context_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <functional>
#include <utility>

#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"

namespace kiln {
namespace {

class HostFileSource : public ContentSource {
 public:
  HostFileSource(std::string path, uint64_t size)
      : path_(std::move(path)), size_(size) {}

  void CopyTo(ByteSink& sink, uint64_t size) const override {
    UniqueFd fd = OpenRead(path_);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) throw SystemError("stat " + path_, errno);
    if (static_cast<uint64_t>(st.st_size) != size || size != size_) {
      throw UserError(path_ + " changed while kiln was building (size " +
                      std::to_string(size_) + " became " +
                      std::to_string(st.st_size) + ")");
    }
    if (size >= (1 << 20))
      ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    constexpr size_t kBuf = 1 << 20;
    static thread_local std::unique_ptr<char[]> buf(new char[kBuf]);
    uint64_t left = size;
    while (left > 0) {
      size_t want = left < kBuf ? static_cast<size_t>(left) : kBuf;
      size_t got = ReadFull(fd.get(), buf.get(), want, path_);
      if (got != want)
        throw UserError(path_ + " shrank while kiln was building");
      sink.Write(buf.get(), got);
      left -= got;
    }
  }

  std::string Describe() const override { return path_; }

 private:
  std::string path_;
  uint64_t size_;
};

// lstat results as FileInfo; `at` reads a symlink's target.
FileInfo InfoOf(const struct stat& st,
                const std::function<std::string(size_t)>& read_link) {
  FileInfo info;
  info.size = static_cast<uint64_t>(st.st_size);
  info.mode = st.st_mode & 07777;
  info.dev = static_cast<uint64_t>(st.st_dev);
  info.ino = static_cast<uint64_t>(st.st_ino);
  info.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  info.ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
  if (S_ISREG(st.st_mode)) {
    info.type = FileInfo::Type::kFile;
  } else if (S_ISDIR(st.st_mode)) {
    info.type = FileInfo::Type::kDir;
    info.size = 0;
  } else if (S_ISLNK(st.st_mode)) {
    info.type = FileInfo::Type::kSymlink;
    info.link = read_link(static_cast<size_t>(st.st_size) + 1);
    info.size = 0;
  } else {
    info.type = FileInfo::Type::kOther;
  }
  return info;
}

class HostFs : public ContextFs {
 public:
  std::optional<FileInfo> Lstat(const std::string& path) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
      throw SystemError("stat " + path, errno);
    }
    return InfoOf(st, [&](size_t room) {
      std::string target(room, '\0');
      ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
      if (n < 0) throw SystemError("readlink " + path, errno);
      target.resize(static_cast<size_t>(n));
      return target;
    });
  }

  std::vector<std::pair<std::string, FileInfo>> ListDirInfo(
      const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (!dir) throw SystemError("listing " + path, errno);
    std::vector<std::pair<std::string, FileInfo>> out;
    try {
      int fd = ::dirfd(dir);
      errno = 0;
      while (struct dirent* d = ::readdir(dir)) {
        std::string name = d->d_name;
        if (name == "." || name == "..") continue;
        struct stat st;
        if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) continue;  // gone since the listing
          throw SystemError("stat " + path + "/" + name, errno);
        }
        out.emplace_back(
            name, InfoOf(st, [&](size_t room) {
              std::string target(room, '\0');
              ssize_t n = ::readlinkat(fd, name.c_str(), target.data(), room);
              if (n < 0)
                throw SystemError("readlink " + path + "/" + name, errno);
              target.resize(static_cast<size_t>(n));
              return target;
            }));
        errno = 0;
      }
      if (errno) throw SystemError("listing " + path, errno);
    } catch (...) {
      ::closedir(dir);
      throw;
    }
    ::closedir(dir);
    return out;
  }

  std::vector<std::string> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (!dir) throw SystemError("listing " + path, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* d = ::readdir(dir)) {
      std::string name = d->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    int err = errno;
    ::closedir(dir);
    if (err) throw SystemError("listing " + path, err);
    return names;
  }

  std::shared_ptr<const ContentSource> Content(const std::string& path,
                                               uint64_t size) override {
    return std::make_shared<HostFileSource>(path, size);
  }
};

}  // namespace

std::unique_ptr<ContextFs> NewHostFs() { return std::make_unique<HostFs>(); }

std::vector<std::pair<std::string, FileInfo>> ContextFs::ListDirInfo(
    const std::string& path) {
  std::vector<std::pair<std::string, FileInfo>> out;
  for (auto& name : ListDir(path)) {
    if (auto info = Lstat(path + "/" + name))
      out.emplace_back(std::move(name), std::move(*info));
  }
  return out;
}

std::string ResolveContextPath(ContextFs& fs, const std::string& context,
                               const std::string& rel) {
  std::deque<std::string> todo;
  for (auto& part : Split(rel, '/')) todo.push_back(part);
  std::vector<std::string> at;  // components below the context root
  int hops = 0;
  auto host = [&] {
    return at.empty() ? context : context + "/" + Join(at, "/");
  };
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (at.empty())
        throw UserError(Quote(rel) + " leads outside the build context " +
                        context);
      at.pop_back();
      continue;
    }
    at.push_back(part);
    auto info = fs.Lstat(host());
    if (!info)
      throw UserError(Quote(rel) + ": no such file in the build context " +
                      context);
    if (info->type != FileInfo::Type::kSymlink) continue;
    if (++hops > 40)
      throw UserError(Quote(rel) + ": too many levels of symbolic links");
    at.pop_back();
    if (!info->link.empty() && info->link[0] == '/') {
      // An absolute link in the context cannot be followed safely.
      throw UserError(Quote(rel) + " is or goes through a symlink to " +
                      info->link + ", outside the build context");
    }
    std::deque<std::string> target;
    for (auto& p : Split(info->link, '/')) target.push_back(p);
    todo.insert(todo.begin(), target.begin(), target.end());
  }
  return host();
}

void MemoryFs::AddFile(const std::string& path, std::string content,
                       uint32_t mode) {
  Node n;
  n.info.type = FileInfo::Type::kFile;
  n.info.size = content.size();
  n.info.mode = mode;
  n.content = std::move(content);
  nodes_[path] = std::move(n);
}

void MemoryFs::AddDir(const std::string& path, uint32_t mode) {
  Node n;
  n.info.type = FileInfo::Type::kDir;
  n.info.mode = mode;
  nodes_[path] = std::move(n);
}

void MemoryFs::AddSymlink(const std::string& path, std::string target) {
  Node n;
  n.info.type = FileInfo::Type::kSymlink;
  n.info.mode = 0777;
  n.info.link = std::move(target);
  nodes_[path] = std::move(n);
}

std::optional<FileInfo> MemoryFs::Lstat(const std::string& path) {
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return std::nullopt;
  return it->second.info;
}

std::vector<std::string> MemoryFs::ListDir(const std::string& path) {
  std::vector<std::string> names;
  std::string prefix = path + "/";
  // Reverse order, so tests catch code that relies on listing order.
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    const std::string& p = it->first;
    if (StartsWith(p, prefix) &&
        p.find('/', prefix.size()) == std::string::npos) {
      names.push_back(p.substr(prefix.size()));
    }
  }
  return names;
}

std::shared_ptr<const ContentSource> MemoryFs::Content(const std::string& path,
                                                       uint64_t size) {
  auto it = nodes_.find(path);
  if (it == nodes_.end() || it->second.content.size() != size) {
    throw UserError(path + " changed while kiln was building");
  }
  return InlineContent(it->second.content);
}

}  // namespace kiln

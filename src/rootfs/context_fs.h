// The build context as kiln sees it: a small interface over the host file
// system, with an in-memory implementation for tests.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rootfs/entry.h"

namespace kiln {

struct FileInfo {
  enum class Type { kFile, kDir, kSymlink, kOther };
  Type type = Type::kFile;
  uint64_t size = 0;
  uint32_t mode =
      0;  // permission bits as on the host (only the x bits are used)
  std::string link;  // symlink target
  // What the stat cache compares (the host's; zero in MemoryFs).
  uint64_t dev = 0, ino = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
};

class ContextFs {
 public:
  virtual ~ContextFs() = default;
  // lstat: nullopt if the path does not exist.
  virtual std::optional<FileInfo> Lstat(const std::string& path) = 0;
  // The names in a directory, in no particular order.
  virtual std::vector<std::string> ListDir(const std::string& path) = 0;
  // The same with each one's lstat (the host's is quicker than Lstat of
  // each path).
  virtual std::vector<std::pair<std::string, FileInfo>> ListDirInfo(
      const std::string& path);
  // The bytes of a regular file, read when the layer is written; reading
  // fails if the file's size changed since it was planned.
  virtual std::shared_ptr<const ContentSource> Content(const std::string& path,
                                                       uint64_t size) = 0;
};

// The host path of `rel` inside the context directory, following symlinks
// only while they stay inside it. UserError ("\"../x\" leads outside the
// build context /ctx") otherwise, or if it does not exist.
std::string ResolveContextPath(ContextFs& fs, const std::string& context,
                               const std::string& rel);

// The real file system. Reads with large sequential reads.
std::unique_ptr<ContextFs> NewHostFs();

// Files held in memory, for tests: paths are absolute ("/ctx/bin/hello").
class MemoryFs : public ContextFs {
 public:
  void AddFile(const std::string& path, std::string content,
               uint32_t mode = 0644);
  void AddDir(const std::string& path, uint32_t mode = 0755);
  void AddSymlink(const std::string& path, std::string target);

  std::optional<FileInfo> Lstat(const std::string& path) override;
  std::vector<std::string> ListDir(const std::string& path) override;
  std::shared_ptr<const ContentSource> Content(const std::string& path,
                                               uint64_t size) override;

 private:
  struct Node {
    FileInfo info;
    std::string content;
  };
  std::map<std::string, Node> nodes_;
};

}  // namespace kiln

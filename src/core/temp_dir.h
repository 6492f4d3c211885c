// A temporary directory removed with its contents on destruction: in the
// system's temp folder (tests), or in a given folder.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/fs.h"

namespace kiln {

class TempDir {
 public:
  TempDir()
      : TempDir(std::filesystem::temp_directory_path().string(), "kiln-test-") {
  }
  TempDir(const std::string& parent, const std::string& prefix) {
    MakeDirs(parent);
    std::string tmpl = parent + "/" + prefix + "XXXXXX";
    if (!mkdtemp(tmpl.data()))
      throw SystemError("creating a temporary folder in " + parent, errno);
    path_ = tmpl;
  }
  ~TempDir() {
    if (!kept_) RemoveFolder(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Leaves the folder and its contents in place when this goes.
  void Keep() { kept_ = true; }
  // Writes `content` to path()/rel, creating parent folders.
  std::string Write(const std::string& rel, const std::string& content,
                    unsigned mode = 0644) const {
    std::string p = path_ + "/" + rel;
    MakeDirs(Dirname(p));
    WriteFileAtomic(p, content, mode);
    return p;
  }

 private:
  std::string path_;
  bool kept_ = false;
};

}  // namespace kiln

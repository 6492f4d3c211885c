// Entries for unit tests (tar, image comparison, initramfs): a regular file
// with inline content, a folder, a symbolic link. Test code only.
#pragma once

#include <cstdint>
#include <string>

#include "rootfs/entry.h"

namespace kiln::test {

inline Entry FileEntry(const std::string& path, const std::string& content,
                       uint32_t mode = 0644, uint32_t uid = 0) {
  Entry e;
  e.path = path;
  e.mode = mode;
  e.uid = uid;
  e.gid = uid;
  e.size = content.size();
  e.content = InlineContent(content);
  return e;
}

inline Entry DirEntry(const std::string& path, uint32_t mode = 0755) {
  Entry e;
  e.path = path;
  e.type = EntryType::kDir;
  e.mode = mode;
  return e;
}

inline Entry SymlinkEntry(const std::string& path, const std::string& target) {
  Entry e;
  e.path = path;
  e.type = EntryType::kSymlink;
  e.mode = 0777;
  e.link = target;
  return e;
}

}  // namespace kiln::test

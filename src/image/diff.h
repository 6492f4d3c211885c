// Comparing two file systems path by path: what was added, removed, or
// changed and in which property (type, content, mode, owner, link target,
// device numbers). `kiln diff` uses it on flattened images.
#pragma once

#include <string>
#include <vector>

#include "rootfs/tree.h"

namespace kiln {

struct PathChange {
  enum class Kind { kAdded, kRemoved, kChanged };
  Kind kind;
  std::string path;                     // absolute: "/usr/bin/hello"
  std::vector<std::string> properties;  // "mode 0644 -> 0755", "content", ...
};

// Trees need Entry::sha256 for content comparison (Flatten with hash_files).
std::vector<PathChange> DiffTrees(const Tree& a, const Tree& b);
std::string DescribeEntry(const Entry& e);  // "file 0644 0:0 12 B"

}  // namespace kiln

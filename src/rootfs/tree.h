// A file system tree built by applying layers in order, with OCI whiteout
// semantics. Used for the view below a layer being planned (the base and the
// earlier layers) and for flattening an image.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/image_path.h"
#include "rootfs/entry.h"

namespace kiln {

struct PathOrder {
  bool operator()(const std::string& a, const std::string& b) const {
    return PathLess(a, b);
  }
};

class Tree {
 public:
  using Map = std::map<std::string, Entry, PathOrder>;

  const Entry* Find(const std::string& path) const;
  // Applies one layer's entries: its whiteouts first (they hide only what is
  // below), then its entries. A non-directory replaces a whole subtree.
  void ApplyLayer(std::vector<Entry> entries);
  // Adds or replaces one entry (no whiteout handling).
  void Put(Entry entry);
  void RemoveTree(const std::string& path);
  void RemoveChildren(const std::string& dir);

  // Resolves symlinks among the parents of `path`, as a runtime would when
  // extracting into this tree (targets stay inside the root). Sets `why` and
  // returns false if a parent is not a directory or symlinks loop.
  // `overlay` (the layer being planned) is consulted first: there, only
  // directories may be parents, unless `overlay_links` lets its symlinks be
  // followed too (as dpkg does for the packages of one layer).
  using Lookup = std::function<const Entry*(const std::string&)>;
  bool ResolveParents(const std::string& path, std::string* out,
                      std::string* why, const Lookup& overlay = nullptr,
                      bool overlay_links = false) const;

  const Map& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  Map entries_;
};

// In a tar, a hardlink must come after the file it links to. In tree order
// that may not hold, so the first path of each group (sorted) takes the
// content and the others link to it. `entries` is in tree order; each
// hardlink's link names the group's file.
void OrderHardlinks(std::vector<Entry>* entries);

// Whether a layer entry's base name is a whiteout; `target` is what it hides
// (for an opaque whiteout, the directory whose lower contents it hides).
enum class Whiteout { kNone, kFile, kOpaque };
Whiteout ClassifyWhiteout(const std::string& path, std::string* target);

}  // namespace kiln

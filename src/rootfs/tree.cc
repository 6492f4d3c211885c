#include "rootfs/tree.h"

#include <algorithm>
#include <unordered_map>

#include "core/strings.h"

namespace kiln {

Whiteout ClassifyWhiteout(const std::string& path, std::string* target) {
  std::string_view base = BaseName(path);
  if (!StartsWith(base, kWhiteoutPrefix)) return Whiteout::kNone;
  std::string parent = ParentPath(path);
  if (base == kOpaqueWhiteout) {
    *target = parent;
    return Whiteout::kOpaque;
  }
  std::string name(base.substr(sizeof(kWhiteoutPrefix) - 1));
  *target = parent.empty() ? name : parent + "/" + name;
  return Whiteout::kFile;
}

const Entry* Tree::Find(const std::string& path) const {
  auto it = entries_.find(path);
  return it == entries_.end() ? nullptr : &it->second;
}

void Tree::RemoveChildren(const std::string& dir) {
  // Children sort right after their directory and before anything else.
  auto it = dir.empty() ? entries_.begin() : entries_.upper_bound(dir);
  auto end = it;
  while (end != entries_.end() && end->first != dir &&
         PathWithin(end->first, dir))
    ++end;
  entries_.erase(it, end);
}

void Tree::RemoveTree(const std::string& path) {
  RemoveChildren(path);
  entries_.erase(path);
}

void Tree::Put(Entry entry) {
  auto it = entries_.find(entry.path);
  if (it != entries_.end() && it->second.IsDir() && !entry.IsDir())
    RemoveChildren(entry.path);
  std::string key = entry.path;
  entries_.insert_or_assign(std::move(key), std::move(entry));
}

void Tree::ApplyLayer(std::vector<Entry> entries) {
  std::vector<Entry> kept;
  kept.reserve(entries.size());
  for (auto& e : entries) {
    std::string target;
    switch (ClassifyWhiteout(e.path, &target)) {
      case Whiteout::kFile:
        RemoveTree(target);
        break;
      case Whiteout::kOpaque:
        RemoveChildren(target);
        break;
      case Whiteout::kNone:
        kept.push_back(std::move(e));
        break;
    }
  }
  // Layers come in tree order: each entry goes right after the one before
  // (a hinted insert), so a big layer costs no search per entry.
  auto hint = entries_.end();
  for (auto& e : kept) {
    size_t before = entries_.size();
    auto it = entries_.try_emplace(hint, e.path);
    if (entries_.size() == before && it->second.IsDir() && !e.IsDir()) {
      RemoveChildren(e.path);
      it = entries_.find(e.path);
    }
    it->second = std::move(e);
    hint = std::next(it);
  }
}

bool Tree::ResolveParents(const std::string& path, std::string* out,
                          std::string* why, const Lookup& overlay,
                          bool overlay_links) const {
  std::string todo = path;  // what is left to resolve, relative to `done`
  std::string done;
  int hops = 0;
  while (true) {
    size_t slash = todo.find('/');
    if (slash == std::string::npos)
      break;  // the last component is not resolved
    std::string next = done.empty() ? todo.substr(0, slash)
                                    : done + "/" + todo.substr(0, slash);
    todo = todo.substr(slash + 1);
    const Entry* e = overlay ? overlay(next) : nullptr;
    if (e && !e->IsDir() &&
        !(overlay_links && e->type == EntryType::kSymlink)) {
      *why = "/" + next + " is declared as a " + EntryTypeName(e->type) +
             " in this layer (" + e->origin + "), not a directory";
      return false;
    }
    if (!e) e = Find(next);
    if (!e || e->IsDir()) {
      done = next;
      continue;
    }
    if (e->type != EntryType::kSymlink) {
      *why = "/" + next + " is a " + EntryTypeName(e->type) +
             " in the layers below, not a directory";
      return false;
    }
    if (++hops > 40) {
      *why = "too many levels of symbolic links at /" + next;
      return false;
    }
    std::string resolved;
    // Runtimes resolve links inside the root: ".." stops at "/".
    ResolveInRoot(ParentPath(next), e->link, &resolved);
    // Start over from the link's target, which may itself hold links.
    todo = resolved.empty() ? todo : resolved + "/" + todo;
    done.clear();
  }
  *out = done.empty() ? todo : done + "/" + todo;
  return true;
}

}  // namespace kiln

namespace kiln {

void OrderHardlinks(std::vector<Entry>* entries) {
  std::unordered_map<std::string, size_t> index;
  std::unordered_map<std::string, std::vector<size_t>>
      groups;  // file path -> links
  for (size_t i = 0; i < entries->size(); ++i) {
    const Entry& e = (*entries)[i];
    index[e.path] = i;
    if (e.type == EntryType::kHardlink) groups[e.link].push_back(i);
  }
  for (auto& [file_path, links] : groups) {
    auto it = index.find(file_path);
    if (it == index.end()) continue;  // the caller checked targets exist
    size_t file = it->second;
    size_t first = file;
    for (size_t l : links)
      first = std::min(first, l);  // tree order = index order
    Entry content = (*entries)[file];
    for (size_t i : links) {
      Entry& l = (*entries)[i];
      l.type = EntryType::kHardlink;
      l.mode = content.mode;
      l.uid = content.uid;
      l.gid = content.gid;
      l.size = 0;
      l.content.reset();
      l.sha256.clear();
    }
    if (first != file) {
      Entry& f = (*entries)[first];
      std::string path = f.path, origin = f.origin;
      f = content;
      f.path = path;
      f.origin = origin;
      Entry& old = (*entries)[file];
      old.type = EntryType::kHardlink;
      old.size = 0;
      old.content.reset();
      old.sha256.clear();
    }
    const std::string& target = (*entries)[first].path;
    for (size_t i : links) {
      if (i != first) (*entries)[i].link = target;
    }
    if (first != file) (*entries)[file].link = target;
  }
}

}  // namespace kiln

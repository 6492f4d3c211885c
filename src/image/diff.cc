#include "image/diff.h"

#include <cstdio>

#include "core/strings.h"

namespace kiln {
namespace {

std::string Owner(const Entry& e) {
  return std::to_string(e.uid) + ":" + std::to_string(e.gid);
}

std::vector<std::string> Compare(const Entry& a, const Entry& b) {
  std::vector<std::string> out;
  if (a.type != b.type) {
    out.push_back(std::string("type ") + EntryTypeName(a.type) + " -> " +
                  EntryTypeName(b.type));
    return out;
  }
  if (a.type == EntryType::kFile &&
      (a.size != b.size || a.sha256 != b.sha256)) {
    out.push_back("content" + (a.size != b.size
                                   ? " (" + std::to_string(a.size) + " -> " +
                                         std::to_string(b.size) + " bytes)"
                                   : std::string()));
  }
  if (a.mode != b.mode)
    out.push_back("mode " + OctalMode(a.mode) + " -> " + OctalMode(b.mode));
  if (a.uid != b.uid || a.gid != b.gid)
    out.push_back("owner " + Owner(a) + " -> " + Owner(b));
  if (a.link != b.link)
    out.push_back("link " + Quote(a.link) + " -> " + Quote(b.link));
  if (a.dev_major != b.dev_major || a.dev_minor != b.dev_minor) {
    out.push_back("device " + std::to_string(a.dev_major) + "," +
                  std::to_string(a.dev_minor) + " -> " +
                  std::to_string(b.dev_major) + "," +
                  std::to_string(b.dev_minor));
  }
  return out;
}

}  // namespace

std::string DescribeEntry(const Entry& e) {
  std::string s = std::string(EntryTypeName(e.type)) + " " + OctalMode(e.mode) +
                  " " + Owner(e);
  if (e.type == EntryType::kFile) s += " " + std::to_string(e.size);
  if (!e.link.empty()) s += " -> " + e.link;
  return s;
}

std::vector<PathChange> DiffTrees(const Tree& a, const Tree& b) {
  std::vector<PathChange> out;
  auto ia = a.entries().begin(), ea = a.entries().end();
  auto ib = b.entries().begin(), eb = b.entries().end();
  PathOrder less;
  while (ia != ea || ib != eb) {
    if (ib == eb || (ia != ea && less(ia->first, ib->first))) {
      out.push_back({PathChange::Kind::kRemoved, "/" + ia->first, {}});
      ++ia;
    } else if (ia == ea || less(ib->first, ia->first)) {
      out.push_back({PathChange::Kind::kAdded, "/" + ib->first, {}});
      ++ib;
    } else {
      auto props = Compare(ia->second, ib->second);
      if (!props.empty())
        out.push_back(
            {PathChange::Kind::kChanged, "/" + ia->first, std::move(props)});
      ++ia;
      ++ib;
    }
  }
  return out;
}

}  // namespace kiln

#include "core/image_path.h"

#include <vector>

namespace kiln {
namespace {

// Splits on '/', dropping empty and "." components. Returns false on "..".
bool Components(std::string_view path, std::vector<std::string_view>* parts) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part == "..") return false;
    if (!part.empty() && part != ".") parts->push_back(part);
    start = end + 1;
  }
  return true;
}

std::string JoinParts(const std::vector<std::string_view>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

bool HasNul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

}  // namespace

bool NormalizeImagePath(std::string_view path, std::string* out,
                        std::string* why) {
  if (path.empty() || path[0] != '/') {
    *why = "must be an absolute path (start with /)";
    return false;
  }
  if (HasNul(path)) {
    *why = "contains a NUL byte";
    return false;
  }
  std::vector<std::string_view> parts;
  if (!Components(path, &parts)) {
    *why = "must not contain \"..\"";
    return false;
  }
  *out = JoinParts(parts);
  return true;
}

bool NormalizeArchivePath(std::string_view name, std::string* out,
                          std::string* why) {
  if (name.empty()) {
    *why = "empty entry name";
    return false;
  }
  if (name[0] == '/') {
    *why = "absolute entry name";
    return false;
  }
  if (HasNul(name)) {
    *why = "entry name contains a NUL byte";
    return false;
  }
  std::vector<std::string_view> parts;
  if (!Components(name, &parts)) {
    *why = "entry name contains \"..\"";
    return false;
  }
  *out = JoinParts(parts);
  return true;
}

bool ResolveInRoot(std::string_view dir, std::string_view target,
                   std::string* out) {
  std::vector<std::string_view> parts;
  bool inside = true;
  if (!target.empty() && target[0] == '/') {
    // Absolute targets are relative to the image root.
  } else {
    Components(dir, &parts);
  }
  size_t start = 0;
  while (start <= target.size()) {
    size_t end = target.find('/', start);
    if (end == std::string_view::npos) end = target.size();
    std::string_view part = target.substr(start, end - start);
    if (part == "..") {
      if (parts.empty()) {
        inside = false;
      } else {
        parts.pop_back();
      }
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  *out = JoinParts(parts);
  return inside;
}

bool PathLess(std::string_view a, std::string_view b) {
  size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    // '/' ends a component, so it sorts before every other byte.
    unsigned char ca = a[i] == '/' ? 0 : static_cast<unsigned char>(a[i]);
    unsigned char cb = b[i] == '/' ? 0 : static_cast<unsigned char>(b[i]);
    return ca < cb;
  }
  return a.size() < b.size();
}

std::string ParentPath(std::string_view path) {
  size_t pos = path.rfind('/');
  return pos == std::string_view::npos ? std::string()
                                       : std::string(path.substr(0, pos));
}

std::string_view BaseName(std::string_view path) {
  size_t pos = path.rfind('/');
  return pos == std::string_view::npos ? path : path.substr(pos + 1);
}

bool PathWithin(std::string_view path, std::string_view dir) {
  if (dir.empty()) return true;
  if (path.size() < dir.size() || path.substr(0, dir.size()) != dir)
    return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

}  // namespace kiln

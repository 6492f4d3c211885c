// Paths inside an image. Internally a path is relative to the image root,
// normalised, without leading or trailing '/': "usr/bin/hello"; the root is "".
#pragma once

#include <string>
#include <string_view>

namespace kiln {

// Normalises an absolute path written in a template ("/usr//bin/./x/").
// Returns false with `why` set if it is not absolute or contains "..".
bool NormalizeImagePath(std::string_view path, std::string* out,
                        std::string* why);
// Normalises an entry name read from an archive ("./usr/bin/x", "usr/bin/").
// Refuses absolute names and any ".." component.
bool NormalizeArchivePath(std::string_view name, std::string* out,
                          std::string* why);
// Resolves a link target against the link's directory. Returns false if ".."
// climbs above the root; `out` is then clamped at the root, as a runtime
// resolving inside a container root would.
bool ResolveInRoot(std::string_view dir, std::string_view target,
                   std::string* out);

// Tree order: depth-first with each directory's children sorted by name, as
// `tar --sort=name` writes. Parents come before their children.
bool PathLess(std::string_view a, std::string_view b);
std::string ParentPath(std::string_view path);  // "a/b/c" -> "a/b"; "a" -> ""
std::string_view BaseName(std::string_view path);  // "a/b/c" -> "c"
// Whether `path` is `dir` itself or inside it ("" contains everything).
bool PathWithin(std::string_view path, std::string_view dir);
inline std::string Absolute(std::string_view path) {
  return "/" + std::string(path);
}

}  // namespace kiln

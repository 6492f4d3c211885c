// Where a template value came from, and errors that point at it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"

namespace kiln {

// A template file's text, kept so errors can quote the offending line.
struct SourceFile {
  std::string path;  // as the user named it (relative paths stay relative)
  std::string text;
};

struct SourceLocation {
  std::shared_ptr<const SourceFile> file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based

  bool known() const { return file != nullptr; }
  // "kiln.yaml:12:9"
  std::string ToString() const;
};

// "file:line:col: message", then the source line and a caret under the column:
//   kiln.yaml:12:9: unknown key "mdoe" (did you mean "mode"?)
//         - {dest: /etc/motd, mdoe: "0644"}
//                             ^
std::string FormatAt(const SourceLocation& loc, std::string_view message);
inline Error ErrorAt(const SourceLocation& loc, std::string_view message) {
  return UserError(FormatAt(loc, message));
}

}  // namespace kiln

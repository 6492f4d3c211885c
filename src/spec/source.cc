#include "spec/source.h"

namespace kiln {
namespace {

std::string_view LineOf(std::string_view text, int line) {
  size_t start = 0;
  for (int i = 1; i < line; ++i) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = text.find('\n', start);
  std::string_view l =
      text.substr(start, end == std::string_view::npos ? end : end - start);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  return l;
}

}  // namespace

std::string SourceLocation::ToString() const {
  if (!file) return "<unknown>";
  std::string s = file->path;
  if (line > 0) {
    s += ":" + std::to_string(line);
    if (column > 0) s += ":" + std::to_string(column);
  }
  return s;
}

std::string FormatAt(const SourceLocation& loc, std::string_view message) {
  std::string out;
  if (loc.known()) {
    out = loc.ToString() + ": ";
  }
  out += message;
  if (!loc.known() || loc.line <= 0) return out;
  std::string_view line = LineOf(loc.file->text, loc.line);
  if (line.empty()) return out;
  out += "\n";
  out += line;
  out += "\n";
  // Keep tabs so the caret lines up with the quoted line in any terminal.
  for (int i = 0; i + 1 < loc.column && i < static_cast<int>(line.size());
       ++i) {
    out += line[i] == '\t' ? '\t' : ' ';
  }
  out += "^";
  return out;
}

}  // namespace kiln

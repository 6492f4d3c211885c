#include "spec/source.h"

#include <algorithm>

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
  // A very long line (a minified or hostile template) is shown around the
  // column, cut at character boundaries.
  constexpr size_t kMaxShown = 160, kAround = 60;
  size_t column = static_cast<size_t>(std::max(loc.column, 1)) - 1;
  std::string_view before = "", after = "";
  if (line.size() > kMaxShown) {
    auto boundary = [&](size_t at) {
      while (at > 0 && at < line.size() && (line[at] & 0xc0) == 0x80) --at;
      return at;
    };
    column = std::min(column, line.size());
    size_t start = column > kAround ? boundary(column - kAround) : 0;
    size_t end = boundary(std::min(line.size(), column + kAround));
    if (start > 0) before = "...";
    if (end < line.size()) after = "...";
    line = line.substr(start, end - start);
    column = column - start + before.size();
  }
  out += "\n";
  out += before;
  out += line;
  out += after;
  out += "\n";
  // Keep tabs so the caret lines up with the quoted line in any terminal.
  for (size_t i = 0; i < column && i < before.size() + line.size(); ++i) {
    out += i >= before.size() && line[i - before.size()] == '\t' ? '\t' : ' ';
  }
  out += "^";
  return out;
}

}  // namespace kiln

// ForEachParagraph, inline: Packages indexes are parsed at full speed.
#pragma once

#include "core/error.h"

namespace kiln {

namespace control_internal {
void AddLine(Paragraph* p, std::string_view line, std::string* last,
             const std::string& what, size_t lineno);
}  // namespace control_internal

template <typename Fn>
void ForEachParagraph(std::string_view text, const std::string& what, Fn&& fn) {
  Paragraph p;
  std::string last;
  bool any = false;
  size_t lineno = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (any) fn(std::move(p));
      p = Paragraph();
      any = false;
      last.clear();
    } else {
      control_internal::AddLine(&p, line, &last, what, lineno);
      any = true;
    }
    if (end == text.size()) break;
    start = end + 1;
  }
  if (any) fn(std::move(p));
}

}  // namespace kiln

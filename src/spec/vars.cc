#include "spec/vars.h"

#include <cstdint>
#include <functional>
#include <set>
#include <vector>

#include "core/strings.h"

namespace kiln {
namespace {

// Args that refer to each other can double in size at each step.
constexpr size_t kMaxArgBytes = 1 << 20;

bool IsNameStart(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// The location of byte `offset` of a scalar starting at `loc`, if the source
// line shows the scalar there (plain or quoted, single line).
SourceLocation At(const SourceLocation& loc, std::string_view text,
                  size_t offset) {
  if (!loc.known() || loc.line <= 0) return loc;
  std::string_view src = loc.file->text;
  size_t start = 0;
  for (int i = 1; i < loc.line && start != std::string_view::npos; ++i) {
    start = src.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  if (start == std::string_view::npos) return loc;
  size_t col = start + static_cast<size_t>(loc.column - 1);
  if (col < src.size() && (src[col] == '"' || src[col] == '\'')) ++col;
  std::string_view prefix = text.substr(0, offset + 2);
  if (src.substr(col, prefix.size()) != prefix) return loc;
  SourceLocation moved = loc;
  moved.column = static_cast<int>(col - start + offset + 1);
  return moved;
}

// Finds ${NAME} references: calls fn(name, begin, end) for each, handling $${.
template <typename Fn>
std::string Expand(std::string_view text, const SourceLocation& loc, Fn&& fn,
                   size_t max_bytes = SIZE_MAX) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$') {
      out += text[i++];
      continue;
    }
    if (text.substr(i, 3) == "$${") {
      out += "${";
      i += 3;
      continue;
    }
    if (i + 1 >= text.size() || text[i + 1] != '{') {
      out += text[i++];
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      throw ErrorAt(At(loc, text, i),
                    "unterminated ${ (write $${ for a literal ${)");
    }
    std::string_view name = text.substr(i + 2, close - i - 2);
    bool valid = !name.empty() && IsNameStart(name[0]);
    for (char c : name) valid = valid && IsNameChar(c);
    if (!valid) {
      throw ErrorAt(At(loc, text, i),
                    "invalid variable reference ${" + std::string(name) +
                        "} (names are letters, digits and _)");
    }
    out += fn(std::string(name), At(loc, text, i));
    if (out.size() > max_bytes) {
      throw ErrorAt(At(loc, text, i), "substituting ${" + std::string(name) +
                                          "} makes this value larger than " +
                                          std::to_string(max_bytes >> 20) +
                                          " MiB");
    }
    i = close + 1;
  }
  return out;
}

}  // namespace

std::string Substitute(std::string_view text,
                       const std::map<std::string, std::string>& vars,
                       const SourceLocation& loc) {
  if (text.find('$') == std::string_view::npos) return std::string(text);
  return Expand(
      text, loc,
      [&](const std::string& name, const SourceLocation& at) {
        auto it = vars.find(name);
        if (it == vars.end()) {
          std::vector<std::string> known;
          for (const auto& [k, v] : vars) known.push_back(k);
          throw ErrorAt(
              at, "unknown variable ${" + name + "}" +
                      (known.empty() ? " (the template declares no args)"
                                     : " (args: " + Join(known, ", ") + ")"));
        }
        return it->second;
      },
      kMaxValueBytes);
}

std::map<std::string, std::string> ResolveArgs(
    const std::map<std::string, std::string>& raw,
    const std::map<std::string, SourceLocation>& locs) {
  std::map<std::string, std::string> done;
  std::vector<std::string> stack;
  std::function<std::string(const std::string&)> resolve =
      [&](const std::string& name) {
        if (auto it = done.find(name); it != done.end()) return it->second;
        for (size_t i = 0; i < stack.size(); ++i) {
          if (stack[i] == name) {
            std::vector<std::string> cycle(stack.begin() + i, stack.end());
            cycle.push_back(name);
            throw ErrorAt(
                locs.at(stack[i]),
                "args refer to each other in a loop: " + Join(cycle, " -> "));
          }
        }
        stack.push_back(name);
        const std::string& text = raw.at(name);
        std::string value =
            Expand(text, locs.at(name),
                   [&](const std::string& ref, const SourceLocation& at) {
                     if (!raw.count(ref))
                       throw ErrorAt(at, "unknown variable ${" + ref +
                                             "} in args." + name);
                     return resolve(ref);
                   });
        stack.pop_back();
        if (value.size() > kMaxArgBytes) {
          throw ErrorAt(locs.at(name),
                        "args." + name + " expands to more than " +
                            std::to_string(kMaxArgBytes) + " bytes");
        }
        done[name] = value;
        return value;
      };
  for (const auto& [name, value] : raw) resolve(name);
  return done;
}

}  // namespace kiln

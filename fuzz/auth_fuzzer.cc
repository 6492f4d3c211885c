// Fuzzes the WWW-Authenticate parser (src/registry/auth.cc): the input is the
// header's value as a registry sends it. It never fails, so a crash, a hang, a
// sanitizer report or a challenge that breaks the documented shape (a
// non-empty lower-case scheme, non-empty lower-case parameter names) is a
// finding.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "registry/auth.h"

namespace {

bool LowerNonEmpty(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (std::tolower(c) != c) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view header(reinterpret_cast<const char*>(data), size);
  for (const auto& c : kiln::ParseWwwAuthenticate(header)) {
    if (!LowerNonEmpty(c.scheme)) __builtin_trap();
    for (const auto& [key, value] : c.params) {
      if (!LowerNonEmpty(key)) __builtin_trap();
    }
  }
  return 0;
}

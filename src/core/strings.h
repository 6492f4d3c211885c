// Small string helpers shared by the engine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

std::vector<std::string> Split(std::string_view s, char sep);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
// Parses a whole decimal string; nullopt on anything else or overflow.
std::optional<uint64_t> ParseUint(std::string_view s);
// A file mode as people write it: "0755", "4755".
std::string OctalMode(uint32_t mode);
// "1.5 MB" style size for people (decimal units, as registries show).
std::string HumanBytes(uint64_t bytes);
// "1000", "512M", "10G", "1.5GB", "2GiB": K, M, G, T are powers of 1000 (as
// HumanBytes prints), Ki, Mi, Gi, Ti of 1024; a trailing B is optional.
std::optional<uint64_t> ParseByteSize(std::string_view text);
// Without leading and trailing white space.
std::string_view Trim(std::string_view s);
// A string quoted for messages: "a\tb" -> "\"a\\tb\"" (control bytes escaped).
std::string Quote(std::string_view s);
// The length of the longest prefix of s that is well-formed UTF-8 (RFC 3629:
// no overlong forms, surrogates or code points past U+10FFFF); s.size() when
// all of it is.
size_t Utf8ValidPrefix(std::string_view s);

}  // namespace kiln

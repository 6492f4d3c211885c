// Base64 (RFC 4648, standard alphabet, padded), through OpenSSL.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln {

std::string Base64Encode(std::string_view data);
// nullopt if `text` (whitespace aside) is not padded base64.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace kiln

#include "disk/guid.h"

#include "core/error.h"
#include "core/strings.h"

namespace kiln {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDashAt(size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

}  // namespace

Guid Guid::Parse(std::string_view text) {
  Guid g;
  bool ok = text.size() == 36;
  size_t n = 0;
  for (size_t i = 0; ok && i < text.size(); ++i) {
    if (IsDashAt(i)) {
      ok = text[i] == '-';
      continue;
    }
    int v = HexValue(text[i]);
    if (v < 0) {
      ok = false;
      break;
    }
    g.bytes_[n / 2] = static_cast<uint8_t>(g.bytes_[n / 2] << 4 | v);
    ++n;
  }
  if (!ok) {
    throw UserError("invalid GUID " + Quote(text) +
                    " (expected 8-4-4-4-12 hex digits, like "
                    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b)");
  }
  return g;
}

Guid Guid::FromDigest(const Digest& digest, std::string_view purpose) {
  Sha256 sha;
  sha.Update(digest.ToString());
  // The NUL keeps ("ab", "c") and ("a", "bc") apart.
  sha.Update("\0", 1);
  sha.Update(purpose);
  std::string hex = sha.Finish().hex();
  Guid g;
  for (size_t i = 0; i < g.bytes_.size(); ++i) {
    g.bytes_[i] = static_cast<uint8_t>(HexValue(hex[2 * i]) << 4 |
                                       HexValue(hex[2 * i + 1]));
  }
  // Shaped like a random (version 4, RFC 4122 variant) GUID, so no tool
  // mistakes it for a time-based one.
  g.bytes_[6] = static_cast<uint8_t>((g.bytes_[6] & 0x0f) | 0x40);
  g.bytes_[8] = static_cast<uint8_t>((g.bytes_[8] & 0x3f) | 0x80);
  return g;
}

std::string Guid::ToString() const {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < bytes_.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes_[i] >> 4];
    out += kHex[bytes_[i] & 0xf];
  }
  return out;
}

std::array<uint8_t, 16> Guid::GptBytes() const {
  const auto& b = bytes_;
  return {b[3], b[2], b[1],  b[0],  b[5],  b[4],  b[7],  b[6],
          b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]};
}

Guid Guid::FromGptBytes(const std::array<uint8_t, 16>& gpt) {
  Guid g;
  g.bytes_ = gpt;
  // The swap of the first three fields is its own inverse.
  g.bytes_ = g.GptBytes();
  return g;
}

}  // namespace kiln

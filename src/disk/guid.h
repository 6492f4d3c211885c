// GUIDs for disks, partitions and file systems. kiln never draws them at
// random: each is derived from the image digest and what it names, so the
// same image gives the same disk, byte for byte.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "digest/digest.h"

namespace kiln {

class Guid {
 public:
  Guid() = default;
  // "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" (either case); throws UserError.
  static Guid Parse(std::string_view text);
  // A version-4-shaped (RFC 4122 variant) GUID from SHA-256(digest, purpose):
  // FromDigest(image, "disk"), FromDigest(image, "esp"), ...
  static Guid FromDigest(const Digest& digest, std::string_view purpose);
  // From the on-disk GPT encoding (the inverse of GptBytes).
  static Guid FromGptBytes(const std::array<uint8_t, 16>& gpt);

  // Lowercase, with dashes.
  std::string ToString() const;
  // The on-disk GPT encoding (first three fields little-endian).
  std::array<uint8_t, 16> GptBytes() const;
  // The 16 bytes in text order (big-endian), as ext4 and mkfs tools take them.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }

  friend bool operator==(const Guid& a, const Guid& b) {
    return a.bytes_ == b.bytes_;
  }

 private:
  std::array<uint8_t, 16> bytes_{};
};

}  // namespace kiln

// Content addresses. kiln uses SHA-256 everywhere; a Digest is always
// "sha256:<64 lowercase hex>". Names of variables say which bytes a digest
// covers: diff_id (uncompressed tar), digest (a blob as stored).
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln {

class Digest {
 public:
  Digest() = default;
  // Parses "sha256:<hex>"; throws UserError naming the text on anything else.
  static Digest Parse(std::string_view text);
  static bool IsValid(std::string_view text);
  static Digest FromHex(std::string_view hex);

  const std::string& hex() const { return hex_; }
  std::string ToString() const { return "sha256:" + hex_; }
  bool empty() const { return hex_.empty(); }
  // First 12 hex digits, for people.
  std::string Short() const { return hex_.substr(0, 12); }

  friend bool operator==(const Digest& a, const Digest& b) {
    return a.hex_ == b.hex_;
  }
  friend bool operator!=(const Digest& a, const Digest& b) {
    return a.hex_ != b.hex_;
  }
  friend bool operator<(const Digest& a, const Digest& b) {
    return a.hex_ < b.hex_;
  }

 private:
  std::string hex_;
};

// Incremental SHA-256 over OpenSSL's EVP (SHA-NI where the CPU has it).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t n);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  uint64_t bytes() const { return bytes_; }
  // Returns the digest; the hasher starts over.
  Digest Finish();

 private:
  EVP_MD_CTX* ctx_;
  uint64_t bytes_ = 0;
};

// SHA-1, only where a format demands it (SPDX file checksums); hex.
class Sha1 {
 public:
  Sha1();
  ~Sha1();
  Sha1(const Sha1&) = delete;
  Sha1& operator=(const Sha1&) = delete;
  void Update(const void* data, size_t n);
  std::string FinishHex();

 private:
  EVP_MD_CTX* ctx_;
};

Digest Sha256Of(std::string_view data);
// Hashes a file with large sequential reads.
Digest Sha256OfFile(const std::string& path, uint64_t* size = nullptr);

}  // namespace kiln

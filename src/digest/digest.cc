#include "digest/digest.h"

#include <fcntl.h>

#include <memory>

#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"

namespace kiln {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

bool Digest::IsValid(std::string_view text) {
  return StartsWith(text, "sha256:") && text.size() == 7 + 64 &&
         IsLowerHex(text.substr(7));
}

Digest Digest::Parse(std::string_view text) {
  if (!IsValid(text)) {
    if (text.find(':') != std::string_view::npos &&
        !StartsWith(text, "sha256:")) {
      throw UserError("unsupported digest algorithm in " + Quote(text) +
                      " (kiln uses sha256)");
    }
    throw UserError("invalid digest " + Quote(text) +
                    " (expected sha256: and 64 lowercase hex digits)");
  }
  Digest d;
  d.hex_ = std::string(text.substr(7));
  return d;
}

Digest Digest::FromHex(std::string_view hex) {
  if (hex.size() != 64 || !IsLowerHex(hex))
    return Parse("sha256:" + std::string(hex));
  Digest d;
  d.hex_ = std::string(hex);
  return d;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
    throw InternalError("OpenSSL SHA-256 init failed");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(const void* data, size_t n) {
  if (n == 0) return;
  EVP_DigestUpdate(ctx_, data, n);
  bytes_ += n;
}

Digest Sha256::Finish() {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  bytes_ = 0;
  static const char kHex[] = "0123456789abcdef";
  std::string hex(64, '0');
  for (int i = 0; i < 32; ++i) {
    hex[2 * i] = kHex[md[i] >> 4];
    hex[2 * i + 1] = kHex[md[i] & 15];
  }
  return Digest::FromHex(hex);
}

Sha1::Sha1() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha1(), nullptr) != 1)
    throw InternalError("OpenSSL SHA-1 init failed");
}

Sha1::~Sha1() { EVP_MD_CTX_free(ctx_); }

void Sha1::Update(const void* data, size_t n) {
  if (n) EVP_DigestUpdate(ctx_, data, n);
}

std::string Sha1::FinishHex() {
  unsigned char md[20];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  EVP_DigestInit_ex(ctx_, EVP_sha1(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string hex(40, '0');
  for (int i = 0; i < 20; ++i) {
    hex[2 * i] = kHex[md[i] >> 4];
    hex[2 * i + 1] = kHex[md[i] & 15];
  }
  return hex;
}

Digest Sha256Of(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

Digest Sha256OfFile(const std::string& path, uint64_t* size) {
  UniqueFd fd = OpenRead(path);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  constexpr size_t kBuf = 1 << 20;
  std::unique_ptr<char[]> buf(new char[kBuf]);
  Sha256 h;
  while (size_t n = ReadFull(fd.get(), buf.get(), kBuf, path)) {
    h.Update(buf.get(), n);
    if (n < kBuf) break;
  }
  if (size) *size = h.bytes();
  return h.Finish();
}

}  // namespace kiln

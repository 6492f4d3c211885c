#include "sign/keys.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>

#include "core/error.h"
#include "digest/digest.h"

namespace kiln {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (!e) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string BioString(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

// Only ECDSA over P-256: the scheme cosign's key-based signatures use.
void RequireP256(EVP_PKEY* key, const std::string& what) {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) {
    throw UserError(what +
                    " is an RSA key; kiln signs and verifies with ECDSA P-256 "
                    "keys (kiln keygen)");
  }
  if (id != EVP_PKEY_EC) {
    throw UserError(
        what + " is not an ECDSA key (kiln keygen makes ECDSA P-256 keys)");
  }
  char curve[64] = {};
  size_t len = 0;
  if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve,
                                      sizeof curve, &len) ||
      std::strcmp(curve, "prime256v1") != 0) {
    throw UserError(what + " is an ECDSA key on curve " + std::string(curve) +
                    ", not P-256");
  }
}

std::string PublicPem(EVP_PKEY* key) {
  Bio b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PUBKEY(b.get(), key))
    throw InternalError("writing a public key: " + OpenSslError());
  return BioString(b.get());
}

std::string KeyFingerprint(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) throw InternalError("encoding a public key: " + OpenSslError());
  std::string hex = Sha256Of(std::string_view(reinterpret_cast<char*>(der),
                                              static_cast<size_t>(n)))
                        .hex();
  OPENSSL_free(der);
  return hex;
}

class FileSigner : public Signer {
 public:
  explicit FileSigner(Pkey key) : key_(std::move(key)) {}
  std::string Sign(std::string_view data) const override {
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (!ctx ||
        EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                           key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len,
                       reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) != 1) {
      throw InternalError("signing: " + OpenSslError());
    }
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                       &len,
                       reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) != 1) {
      throw InternalError("signing: " + OpenSslError());
    }
    sig.resize(len);
    return sig;
  }
  std::string PublicKeyPem() const override { return PublicPem(key_.get()); }

 private:
  Pkey key_;
};

struct PassphraseContext {
  const std::function<std::string()>* ask;
  bool asked = false;
};

int PassphraseCallback(char* buf, int size, int, void* user) {
  auto* ctx = static_cast<PassphraseContext*>(user);
  if (!ctx->ask || !*ctx->ask) return -1;
  std::string p = (*ctx->ask)();
  ctx->asked = !p.empty();  // an empty answer is no passphrase at all
  if (static_cast<int>(p.size()) >= size) return -1;
  std::memcpy(buf, p.data(), p.size());
  // Do not leave the passphrase in the string's memory.
  std::fill(p.begin(), p.end(), '\0');
  return static_cast<int>(p.size());
}

}  // namespace

struct Verifier::Key {
  Pkey pkey;
};

Verifier::Verifier(std::unique_ptr<Key> key, std::string fingerprint)
    : key_(std::move(key)), fingerprint_(std::move(fingerprint)) {}
Verifier::Verifier(Verifier&&) noexcept = default;
Verifier& Verifier::operator=(Verifier&&) noexcept = default;
Verifier::~Verifier() = default;

Verifier Verifier::FromPem(const std::string& pem, const std::string& what) {
  Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey key(PEM_read_bio_PUBKEY(b.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    throw UserError(what +
                    " is not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  RequireP256(key.get(), what);
  std::string fp = KeyFingerprint(key.get());
  auto k = std::make_unique<Key>();
  k->pkey = std::move(key);
  return Verifier(std::move(k), fp);
}

bool Verifier::Verify(std::string_view data, std::string_view signature) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                                   key_->pkey.get()) != 1) {
    throw InternalError("verifying: " + OpenSslError());
  }
  int r = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
      signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
      data.size());
  ERR_clear_error();  // a malformed signature is simply not valid
  return r == 1;
}

KeyPair GenerateKeyPair(const std::optional<std::string>& passphrase) {
  Pkey key(EVP_EC_gen("P-256"));
  if (!key)
    throw InternalError("generating an ECDSA P-256 key: " + OpenSslError());
  KeyPair pair;
  Bio b(BIO_new(BIO_s_mem()));
  int ok = passphrase
               ? PEM_write_bio_PKCS8PrivateKey(
                     b.get(), key.get(), EVP_aes_256_cbc(), passphrase->data(),
                     static_cast<int>(passphrase->size()), nullptr, nullptr)
               : PEM_write_bio_PKCS8PrivateKey(b.get(), key.get(), nullptr,
                                               nullptr, 0, nullptr, nullptr);
  if (!ok) throw InternalError("writing a private key: " + OpenSslError());
  pair.private_pem = BioString(b.get());
  pair.public_pem = PublicPem(key.get());
  return pair;
}

std::unique_ptr<Signer> LoadSigner(
    const std::string& pem, const std::string& what,
    const std::function<std::string()>& passphrase) {
  Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PassphraseContext ctx{&passphrase};
  Pkey key(PEM_read_bio_PrivateKey(b.get(), nullptr, PassphraseCallback, &ctx));
  if (!key) {
    ERR_clear_error();
    if (pem.find("ENCRYPTED") != std::string::npos) {
      throw UserError(
          what + ": wrong passphrase" +
          std::string(ctx.asked ? "" : " (none given: set KILN_PASSWORD)"));
    }
    if (pem.find("SIGSTORE PRIVATE KEY") != std::string::npos) {
      throw UserError(what +
                      " is a cosign-format key; kiln reads PKCS#8 PEM keys "
                      "(kiln keygen, or "
                      "cosign import-key-pair from PEM)");
    }
    throw UserError(what + " is not a PEM private key");
  }
  RequireP256(key.get(), what);
  return std::make_unique<FileSigner>(std::move(key));
}

}  // namespace kiln

// Signing keys: ECDSA P-256 as PEM (private PKCS#8, optionally encrypted with
// a passphrase; public SubjectPublicKeyInfo), the format `cosign verify --key`
// and `openssl dgst -verify` read. Signing goes through the Signer interface
// so a KMS or PKCS#11 key can take the file key's place; a private key never
// leaves its Signer and is never printed.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kiln {

class Signer {
 public:
  virtual ~Signer() = default;
  // ECDSA-SHA256 signature of `data`, DER-encoded.
  virtual std::string Sign(std::string_view data) const = 0;
  virtual std::string PublicKeyPem() const = 0;
};

class Verifier {
 public:
  // Parses a PEM public key; refuses anything but ECDSA P-256, saying what
  // the key is instead ("an RSA key").
  static Verifier FromPem(const std::string& pem, const std::string& what);
  Verifier(Verifier&&) noexcept;
  Verifier& operator=(Verifier&&) noexcept;
  ~Verifier();

  // Whether `signature` (DER) is this key's ECDSA-SHA256 signature of `data`.
  bool Verify(std::string_view data, std::string_view signature) const;
  // SHA-256 of the DER public key, hex: how messages name a key.
  const std::string& Fingerprint() const { return fingerprint_; }

 private:
  struct Key;
  explicit Verifier(std::unique_ptr<Key> key, std::string fingerprint);
  std::unique_ptr<Key> key_;
  std::string fingerprint_;
};

struct KeyPair {
  std::string
      private_pem;  // PKCS#8; encrypted (AES-256-CBC, scrypt) with a passphrase
  std::string public_pem;
};
KeyPair GenerateKeyPair(const std::optional<std::string>& passphrase);

// A Signer from a private key file's PEM. `passphrase` is asked only if the
// key is encrypted. A wrong passphrase is a UserError.
std::unique_ptr<Signer> LoadSigner(
    const std::string& pem, const std::string& what,
    const std::function<std::string()>& passphrase);

}  // namespace kiln

#include "sign/sign.h"

#include <gtest/gtest.h>

#include "core/base64.h"
#include "core/temp_dir.h"
#include "sign/attest.h"
#include "sign/cosign.h"
#include "sign/keys.h"

namespace kiln {
namespace {

TEST(Keys, GenerateSignVerify) {
  KeyPair pair = GenerateKeyPair(std::nullopt);
  EXPECT_EQ(pair.private_pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  EXPECT_EQ(pair.public_pem.rfind("-----BEGIN PUBLIC KEY-----", 0), 0u);
  auto signer = LoadSigner(pair.private_pem, "k", nullptr);
  Verifier v = Verifier::FromPem(pair.public_pem, "k.pub");
  std::string sig = signer->Sign("payload");
  EXPECT_TRUE(v.Verify("payload", sig));
  EXPECT_FALSE(v.Verify("payload!", sig));
  EXPECT_FALSE(v.Verify("payload", "not DER"));
  EXPECT_EQ(v.Fingerprint().size(), 64u);
  EXPECT_EQ(Verifier::FromPem(signer->PublicKeyPem(), "again").Fingerprint(),
            v.Fingerprint());
}

TEST(Keys, EncryptedKeysNeedTheirPassphrase) {
  KeyPair pair = GenerateKeyPair(std::string("correct horse"));
  EXPECT_EQ(pair.private_pem.rfind("-----BEGIN ENCRYPTED PRIVATE KEY-----", 0),
            0u);
  EXPECT_NO_THROW(LoadSigner(pair.private_pem, "k",
                             [] { return std::string("correct horse"); }));
  try {
    LoadSigner(pair.private_pem, "k.key", [] { return std::string("wrong"); });
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_EQ(e.message(), "k.key: wrong passphrase");
    EXPECT_EQ(e.message().find("wrong\""), std::string::npos);
  }
}

TEST(Keys, OnlyEcdsaP256) {
  const char* rsa_pub =
      "-----BEGIN PUBLIC KEY-----\n"
      "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
      "4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n"
      "+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh\n"
      "kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ\n"
      "0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg\n"
      "cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc\n"
      "mwIDAQAB\n"
      "-----END PUBLIC KEY-----\n";
  try {
    Verifier::FromPem(rsa_pub, "rsa.pub");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.message(),
              "rsa.pub is an RSA key; kiln signs and verifies with ECDSA P-256 "
              "keys (kiln keygen)");
  }
  EXPECT_THROW(Verifier::FromPem("not a key", "x.pub"), Error);
}

TEST(Cosign, PayloadIsExactlyCosignsSimpleSigning) {
  Digest d = Sha256Of("image");
  EXPECT_EQ(SimpleSigningPayload("reg.example.com/app", d),
            "{\"critical\":{\"identity\":{\"docker-reference\":\"reg.example."
            "com/app\"},\"image\":"
            "{\"docker-manifest-digest\":\"" +
                d.ToString() +
                "\"},\"type\":\"cosign container image "
                "signature\"},\"optional\":null}");
  SimpleSigning s = ParseSimpleSigning(SimpleSigningPayload("r/a", d));
  EXPECT_EQ(s.docker_reference, "r/a");
  EXPECT_EQ(s.manifest_digest, d.ToString());
  EXPECT_EQ(SignatureTag(d), "sha256-" + d.hex() + ".sig");
  EXPECT_EQ(AttestationTag(d), "sha256-" + d.hex() + ".att");
}

TEST(Cosign, DsseSignsThePreAuthenticationEncoding) {
  EXPECT_EQ(Pae("application/vnd.in-toto+json", "{}"),
            "DSSEv1 28 application/vnd.in-toto+json 2 {}");
  KeyPair pair = GenerateKeyPair(std::nullopt);
  auto signer = LoadSigner(pair.private_pem, "k", nullptr);
  Envelope e = ParseEnvelope(DsseEnvelope("{\"a\":1}", *signer, "kid"), "env");
  EXPECT_EQ(e.payload_type, "application/vnd.in-toto+json");
  EXPECT_EQ(e.payload, "{\"a\":1}");
  ASSERT_EQ(e.signatures.size(), 1u);
  EXPECT_TRUE(Verifier::FromPem(pair.public_pem, "k")
                  .Verify(Pae(e.payload_type, e.payload), e.signatures[0]));
}

class SignTest : public ::testing::Test {
 protected:
  SignTest() {
    KeyPair a = GenerateKeyPair(std::nullopt),
            b = GenerateKeyPair(std::nullopt);
    signer_a_ = LoadSigner(a.private_pem, "a", nullptr);
    signer_b_ = LoadSigner(b.private_pem, "b", nullptr);
    pub_a_ = a.public_pem;
    pub_b_ = b.public_pem;
  }
  std::string Reason(const Digest& d, const std::string& pub,
                     VerifyOptions o = {}) {
    auto where = LayoutAttachments(layout_, "app", true);
    try {
      VerifyImage(*where, d, Verifier::FromPem(pub, "key"), o);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUser);
      return e.message();
    }
    return "verified";
  }
  TempDir dir_;
  Layout layout_ = Layout::Open(dir_.path(), true);
  std::unique_ptr<Signer> signer_a_, signer_b_;
  std::string pub_a_, pub_b_;
  Digest image_ = Sha256Of("image A");
  Digest other_ = Sha256Of("image B");
};

TEST_F(SignTest, SignaturesVerifyAndFailForTheRightReasons) {
  auto where = LayoutAttachments(layout_, "app", true);
  std::string d = image_.ToString();
  EXPECT_EQ(Reason(image_, pub_a_), d + " is not signed (no " +
                                        SignatureTag(image_) + " in " +
                                        dir_.path() + ")");
  SignImage(*where, image_, "reg/app", *signer_a_, {});
  EXPECT_EQ(Reason(image_, pub_a_), "verified");
  std::string fp_a = Verifier::FromPem(pub_a_, "a").Fingerprint(),
              fp_b = Verifier::FromPem(pub_b_, "b").Fingerprint();
  EXPECT_EQ(Reason(image_, pub_b_),
            d + ": no signature verifies with the key " + fp_b.substr(0, 12) +
                ": signed with the key " + fp_a.substr(0, 12) + " (wrong key)");
  VerifyOptions id;
  id.identity = "reg/other";
  EXPECT_EQ(
      Reason(image_, pub_a_, id),
      d + ": the signature is for identity \"reg/app\", not \"reg/other\"");
  // Signing again with the same key changes nothing.
  SignImage(*where, image_, "reg/app", *signer_a_, {});
  EXPECT_EQ(where->Get(SignatureTag(image_))->layers.size(), 1u);
  // Another key appends a second signature; both verify.
  SignImage(*where, image_, "reg/app", *signer_b_, {});
  EXPECT_EQ(where->Get(SignatureTag(image_))->layers.size(), 2u);
  EXPECT_EQ(Reason(image_, pub_a_), "verified");
  EXPECT_EQ(Reason(image_, pub_b_), "verified");
  // A signature manifest copied to another image names the first image.
  auto sig = where->Get(SignatureTag(image_));
  Attachment copy;
  copy.manifest = *sig;
  copy.blobs.emplace_back(sig->config, where->ReadBlob(sig->config));
  where->Put(SignatureTag(other_), copy);
  EXPECT_EQ(Reason(other_, pub_a_),
            other_.ToString() + ": the signature is for " + d +
                ", not this image (" + other_.ToString() + ")");
  VerifyOptions att;
  att.require = {"provenance"};
  EXPECT_EQ(Reason(image_, pub_a_, att),
            d + ": no provenance attestation verifies (no " +
                AttestationTag(image_) + ")");
}

TEST_F(SignTest, AlteredSignaturesAreToldFromOtherKeys) {
  auto where = LayoutAttachments(layout_, "app", true);
  SignImage(*where, image_, "reg/app", *signer_a_, {});
  Manifest sig = *where->Get(SignatureTag(image_));
  std::string der =
      *Base64Decode(sig.layers[0].annotations[cosign::kSignatureAnnotation]);
  der[der.size() - 3] ^= 1;
  sig.layers[0].annotations[cosign::kSignatureAnnotation] = Base64Encode(der);
  Attachment altered;
  altered.manifest = sig;
  altered.blobs.emplace_back(sig.config, where->ReadBlob(sig.config));
  where->Put(SignatureTag(image_), altered);
  std::string fp = Verifier::FromPem(pub_a_, "a").Fingerprint().substr(0, 12);
  EXPECT_EQ(Reason(image_, pub_a_),
            image_.ToString() + ": no signature verifies with the key " + fp +
                ": its signature was altered");
}

TEST_F(SignTest, TamperedPayloadsAreCaught) {
  auto where = LayoutAttachments(layout_, "app", true);
  SignImage(*where, image_, "reg/app", *signer_a_, {});
  Descriptor payload = where->Get(SignatureTag(image_))->layers[0];
  WriteFileAtomic(layout_.BlobPath(payload.digest),
                  SimpleSigningPayload("reg/app", other_));
  EXPECT_NE(Reason(image_, pub_a_)
                .find("does not match its digest (tampered payload)"),
            std::string::npos);
}

TEST_F(SignTest, AttestationsAreSignedStatementsAboutTheImage) {
  auto where = LayoutAttachments(layout_, "app", true);
  std::string statement =
      Statement("reg/app", image_, kSlsaPredicate, "{\"buildDefinition\":{}}");
  SignResult r = SignImage(*where, image_, "reg/app", *signer_a_,
                           {{kSlsaPredicate, statement}});
  EXPECT_EQ(r.attestations, std::vector<std::string>{kSlsaPredicate});
  VerifyOptions o;
  o.require = {"provenance"};
  EXPECT_EQ(Reason(image_, pub_a_, o), "verified");
  o.require = {"sbom"};
  EXPECT_EQ(Reason(image_, pub_a_, o),
            image_.ToString() + ": no sbom attestation verifies (" +
                AttestationTag(image_) + " holds none)");
  // Attesting again with the same key replaces, not duplicates.
  SignImage(*where, image_, "reg/app", *signer_a_,
            {{kSlsaPredicate, statement}});
  EXPECT_EQ(where->Get(AttestationTag(image_))->layers.size(), 1u);
  // A statement about another image does not count for this one.
  Digest third = Sha256Of("image C");
  SignImage(*where, third, "reg/app", *signer_a_,
            {{kSlsaPredicate, statement}});
  o.require = {"provenance"};
  EXPECT_EQ(Reason(third, pub_a_, o),
            third.ToString() +
                ": no provenance attestation verifies (attestation " +
                std::string(kSlsaPredicate) + " is about another image, not " +
                third.ToString() + ")");
}

}  // namespace
}  // namespace kiln

// The formats cosign reads and writes, kept to exactly (cosign's
// specs/SIGNATURE_SPEC.md; the DSSE and in-toto specifications):
//  - a "simple signing" payload naming the manifest digest and the identity,
//    signed with ECDSA-SHA256, the signature base64 in the layer annotation
//    dev.cosignproject.cosign/signature of an OCI manifest tagged
//    sha256-<hex>.sig beside the image; another signature appends a layer;
//  - attestations: DSSE envelopes of in-toto statements, one layer each, in a
//    manifest tagged sha256-<hex>.att.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "digest/digest.h"
#include "oci/model.h"
#include "sign/keys.h"

namespace kiln {

namespace cosign {
inline constexpr char kSimpleSigningMediaType[] =
    "application/vnd.dev.cosign.simplesigning.v1+json";
inline constexpr char kSignatureAnnotation[] =
    "dev.cosignproject.cosign/signature";
inline constexpr char kDsseMediaType[] =
    "application/vnd.dsse.envelope.v1+json";
inline constexpr char kInTotoPayloadType[] = "application/vnd.in-toto+json";
inline constexpr char kPredicateTypeAnnotation[] = "predicateType";
inline constexpr char kSignatureType[] = "cosign container image signature";
}  // namespace cosign

std::string SignatureTag(const Digest& image);    // "sha256-<hex>.sig"
std::string AttestationTag(const Digest& image);  // "sha256-<hex>.att"

// {"critical":{"identity":{"docker-reference":REF},"image":{"docker-manifest-digest":D},
//  "type":"cosign container image signature"},"optional":null}
std::string SimpleSigningPayload(const std::string& docker_reference,
                                 const Digest& image);

struct SimpleSigning {
  std::string docker_reference;
  std::string manifest_digest;
  std::string type;
};
// Throws UserError if the payload is not a simple signing document.
SimpleSigning ParseSimpleSigning(std::string_view payload);

// DSSE: the pre-authentication encoding the signature covers, and envelopes.
std::string Pae(std::string_view payload_type, std::string_view payload);
std::string DsseEnvelope(std::string_view payload, const Signer& signer,
                         const std::string& keyid);
struct Envelope {
  std::string payload_type;
  std::string payload;                  // decoded
  std::vector<std::string> signatures;  // decoded DER
};
Envelope ParseEnvelope(std::string_view json, const std::string& what);

// A manifest of attached layers (signatures or attestations) and the blobs
// it needs: the config blob and each layer's content.
struct Attachment {
  Manifest manifest;
  std::vector<std::pair<Descriptor, std::string>> blobs;  // config first
  std::string Bytes() const { return CanonicalJson(manifest.ToJson()); }
};
// Adds a layer to an attachment manifest (a new one if `existing` is empty),
// as cosign does when a second key signs.
Attachment AppendLayer(const std::optional<Manifest>& existing,
                       const Descriptor& layer, const std::string& content);

}  // namespace kiln

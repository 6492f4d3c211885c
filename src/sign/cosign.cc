#include "sign/cosign.h"

#include "core/base64.h"
#include "core/error.h"
#include "core/strings.h"

namespace kiln {

std::string SignatureTag(const Digest& image) {
  return "sha256-" + image.hex() + ".sig";
}
std::string AttestationTag(const Digest& image) {
  return "sha256-" + image.hex() + ".att";
}

std::string SimpleSigningPayload(const std::string& docker_reference,
                                 const Digest& image) {
  // Key order is cosign's (Go struct order), which here is also sorted order.
  nlohmann::json j = {
      {"critical",
       {{"identity", {{"docker-reference", docker_reference}}},
        {"image", {{"docker-manifest-digest", image.ToString()}}},
        {"type", cosign::kSignatureType}}},
      {"optional", nullptr}};
  return CanonicalJson(j);
}

SimpleSigning ParseSimpleSigning(std::string_view payload) {
  nlohmann::json j = ParseJson(payload, "signature payload");
  SimpleSigning s;
  try {
    const auto& critical = j.at("critical");
    s.docker_reference =
        critical.at("identity").at("docker-reference").get<std::string>();
    // containers/image writes "docker-manifest-digest"; older cosign used
    // "Docker-manifest-digest".
    const auto& image = critical.at("image");
    s.manifest_digest =
        image.contains("docker-manifest-digest")
            ? image["docker-manifest-digest"].get<std::string>()
            : image.at("Docker-manifest-digest").get<std::string>();
    s.type = critical.at("type").get<std::string>();
  } catch (const nlohmann::json::exception&) {
    throw UserError("signature payload is not a simple signing document");
  }
  return s;
}

std::string Pae(std::string_view type, std::string_view payload) {
  // "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
  return "DSSEv1 " + std::to_string(type.size()) + " " + std::string(type) +
         " " + std::to_string(payload.size()) + " " + std::string(payload);
}

std::string DsseEnvelope(std::string_view payload, const Signer& signer,
                         const std::string& keyid) {
  std::string sig = signer.Sign(Pae(cosign::kInTotoPayloadType, payload));
  nlohmann::json j = {
      {"payloadType", cosign::kInTotoPayloadType},
      {"payload", Base64Encode(payload)},
      {"signatures", nlohmann::json::array(
                         {{{"keyid", keyid}, {"sig", Base64Encode(sig)}}})}};
  return CanonicalJson(j);
}

Envelope ParseEnvelope(std::string_view json, const std::string& what) {
  nlohmann::json j = ParseJson(json, what);
  Envelope e;
  try {
    e.payload_type = j.at("payloadType").get<std::string>();
    auto payload = Base64Decode(j.at("payload").get<std::string>());
    if (!payload) throw UserError(what + ": the DSSE payload is not base64");
    e.payload = *payload;
    for (const auto& s : j.at("signatures")) {
      auto sig = Base64Decode(s.at("sig").get<std::string>());
      if (sig) e.signatures.push_back(*sig);
    }
  } catch (const nlohmann::json::exception&) {
    throw UserError(what + " is not a DSSE envelope");
  }
  return e;
}

Attachment AppendLayer(const std::optional<Manifest>& existing,
                       const Descriptor& layer, const std::string& content) {
  Attachment a;
  if (existing) a.manifest = *existing;
  a.manifest.layers.push_back(layer);
  // cosign's attachment images carry a minimal image config listing the
  // layers as diff_ids, as any image config does.
  nlohmann::json ids = nlohmann::json::array();
  for (const auto& l : a.manifest.layers) ids.push_back(l.digest.ToString());
  nlohmann::json history =
      nlohmann::json::array({{{"created", "0001-01-01T00:00:00Z"}}});
  std::string config =
      CanonicalJson({{"architecture", ""},
                     {"config", nlohmann::json::object()},
                     {"created", "0001-01-01T00:00:00Z"},
                     {"history", history},
                     {"os", ""},
                     {"rootfs", {{"type", "layers"}, {"diff_ids", ids}}}});
  a.manifest.config = {media::kConfig,
                       Sha256Of(config),
                       static_cast<int64_t>(config.size()),
                       "",
                       {},
                       std::nullopt};
  a.blobs.emplace_back(a.manifest.config, config);
  a.blobs.emplace_back(layer, content);
  return a;
}

}  // namespace kiln

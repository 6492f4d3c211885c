#include "sign/sign.h"

#include <algorithm>
#include <set>

#include "core/strings.h"
#include "registry/auth.h"
#include "sign/attest.h"

namespace kiln {
namespace {

constexpr uint64_t kMaxAttachmentBlob = 64 << 20;

class LayoutStore : public AttachmentStore {
 public:
  LayoutStore(Layout layout, std::string name, bool is_store)
      : layout_(std::move(layout)),
        name_(std::move(name)),
        is_store_(is_store) {}

  std::optional<Manifest> Get(const std::string& tag) override {
    for (const auto& d : layout_.ReadIndex().manifests) {
      auto it = d.annotations.find(annotation::kRefName);
      if (it == d.annotations.end()) continue;
      // In the store the tag names the image by digest: any NAME will do.
      if (it->second == tag || (is_store_ && EndsWith(it->second, ":" + tag))) {
        return Manifest::Parse(layout_.ReadBlob(d), Describe() + " " + tag);
      }
    }
    return std::nullopt;
  }
  std::string ReadBlob(const Descriptor& d) override {
    return layout_.ReadBlob(d, kMaxAttachmentBlob);
  }
  void Put(const std::string& tag, const Attachment& a) override {
    for (const auto& [desc, content] : a.blobs) {
      if (!layout_.HasBlob(desc.digest))
        layout_.PutBlob(content, desc.media_type);
    }
    Descriptor m = layout_.PutBlob(a.Bytes(), media::kManifest);
    std::string ref = is_store_ ? name_ + ":" + tag : tag;
    layout_.UpdateIndex([&](Index& index) {
      std::vector<Descriptor> kept;
      for (const auto& d : index.manifests) {
        auto it = d.annotations.find(annotation::kRefName);
        bool same = it != d.annotations.end() &&
                    (it->second == ref ||
                     (is_store_ && EndsWith(it->second, ":" + tag)));
        if (!same) kept.push_back(d);
      }
      m.annotations[annotation::kRefName] = ref;
      kept.push_back(m);
      index.manifests = std::move(kept);
    });
  }
  std::string Describe() const override { return layout_.dir(); }

 private:
  Layout layout_;
  std::string name_;
  bool is_store_;
};

class RegistryStore : public AttachmentStore {
 public:
  RegistryStore(RegistryClient& client, std::string repo)
      : client_(client), repo_(std::move(repo)) {}
  std::optional<Manifest> Get(const std::string& tag) override {
    auto m = client_.GetManifest(repo_, tag);
    if (!m) return std::nullopt;
    return Manifest::Parse(m->bytes, Describe() + ":" + tag);
  }
  std::string ReadBlob(const Descriptor& d) override {
    return client_.ReadBlob(repo_, d, kMaxAttachmentBlob);
  }
  void Put(const std::string& tag, const Attachment& a) override {
    client_.WillPush(repo_);
    for (const auto& [desc, content] : a.blobs)
      client_.UploadBytes(repo_, content, desc.media_type);
    client_.PutManifest(repo_, tag, a.Bytes(), media::kManifest);
  }
  std::string Describe() const override {
    return "docker://" + client_.host() + "/" + repo_;
  }

 private:
  RegistryClient& client_;
  std::string repo_;
};

std::string KeyId(const Signer& signer) {
  return Verifier::FromPem(signer.PublicKeyPem(), "the signing key")
      .Fingerprint();
}

bool Requires(const VerifyOptions& o, const std::string& type) {
  for (const auto& r : o.require) {
    if (r == "sbom" && (type == kSpdxPredicate || type == kCycloneDxPredicate))
      return true;
    if (r == "spdx" && type == kSpdxPredicate) return true;
    if (r == "cyclonedx" && type == kCycloneDxPredicate) return true;
    if (r == "provenance" && type == kSlsaPredicate) return true;
  }
  return false;
}

}  // namespace

std::unique_ptr<AttachmentStore> LayoutAttachments(const Layout& layout,
                                                   const std::string& name,
                                                   bool is_store) {
  return std::make_unique<LayoutStore>(layout, name, is_store);
}

std::unique_ptr<AttachmentStore> RegistryAttachments(RegistryClient& client,
                                                     const std::string& repo) {
  return std::make_unique<RegistryStore>(client, repo);
}

SignResult SignImage(
    AttachmentStore& where, const Digest& image, const std::string& identity,
    const Signer& signer,
    const std::vector<std::pair<std::string, std::string>>& statements) {
  SignResult result;
  result.identity = identity;
  result.signature_tag = SignatureTag(image);
  std::string payload = SimpleSigningPayload(identity, image);
  Descriptor layer{cosign::kSimpleSigningMediaType,
                   Sha256Of(payload),
                   static_cast<int64_t>(payload.size()),
                   "",
                   {},
                   std::nullopt};
  layer.annotations[cosign::kSignatureAnnotation] =
      Base64Encode(signer.Sign(payload));
  where.Put(result.signature_tag,
            AppendLayer(where.Get(result.signature_tag), layer, payload));

  if (statements.empty()) return result;
  std::string keyid = KeyId(signer);
  std::optional<Manifest> att = where.Get(AttestationTag(image));
  if (att) {
    // The same key attesting the same predicate again replaces its envelope.
    std::vector<Descriptor> kept;
    for (const auto& l : att->layers) {
      auto type = l.annotations.find(cosign::kPredicateTypeAnnotation);
      auto key = l.annotations.find("dev.kiln.keyid");
      bool replaced =
          type != l.annotations.end() && key != l.annotations.end() &&
          key->second == keyid &&
          std::any_of(statements.begin(), statements.end(),
                      [&](const auto& s) { return s.first == type->second; });
      if (!replaced) kept.push_back(l);
    }
    att->layers = kept;
    if (att->layers.empty()) att.reset();
  }
  Attachment a;
  std::vector<std::pair<Descriptor, std::string>> blobs;
  for (const auto& [type, statement] : statements) {
    std::string envelope = DsseEnvelope(statement, signer, keyid);
    Descriptor d{cosign::kDsseMediaType,
                 Sha256Of(envelope),
                 static_cast<int64_t>(envelope.size()),
                 "",
                 {},
                 std::nullopt};
    d.annotations[cosign::kSignatureAnnotation] = "";
    d.annotations[cosign::kPredicateTypeAnnotation] = type;
    d.annotations["dev.kiln.keyid"] = keyid;
    a = AppendLayer(att, d, envelope);
    att = a.manifest;
    blobs.emplace_back(d, envelope);
    result.attestations.push_back(type);
  }
  a.blobs.resize(1);  // the config of the final manifest
  for (auto& b : blobs) a.blobs.push_back(std::move(b));
  where.Put(AttestationTag(image), a);
  return result;
}

std::vector<std::string> CopyAttachments(AttachmentStore& from,
                                         AttachmentStore& to,
                                         const Digest& image) {
  std::vector<std::string> copied;
  for (const std::string& tag : {SignatureTag(image), AttestationTag(image)}) {
    std::optional<Manifest> m = from.Get(tag);
    if (!m) continue;
    Attachment a;
    a.manifest = *m;
    a.blobs.emplace_back(m->config, from.ReadBlob(m->config));
    for (const auto& l : m->layers) a.blobs.emplace_back(l, from.ReadBlob(l));
    to.Put(tag, a);
    copied.push_back(tag);
  }
  return copied;
}

VerifyResult VerifyImage(AttachmentStore& where, const Digest& image,
                         const Verifier& key, const VerifyOptions& options) {
  VerifyResult result;
  std::string key_name = "the key " + key.Fingerprint().substr(0, 12);
  std::optional<Manifest> sig = where.Get(SignatureTag(image));
  if (!sig || sig->layers.empty()) {
    throw UserError(image.ToString() + " is not signed (no " +
                    SignatureTag(image) + " in " + where.Describe() + ")");
  }
  // Each layer is one signature; the image verifies if one verifies fully.
  // Otherwise the most telling reason is reported.
  std::string reason;
  int reason_rank = -1;
  auto note = [&](int rank, const std::string& why) {
    if (rank > reason_rank) reason_rank = rank, reason = why;
  };
  for (const auto& layer : sig->layers) {
    if (layer.media_type != cosign::kSimpleSigningMediaType) continue;
    std::string payload;
    try {
      payload = where.ReadBlob(layer);
    } catch (const Error& e) {
      note(3,
           "a signature's payload does not match its digest (tampered "
           "payload): " +
               e.message());
      continue;
    }
    auto encoded = layer.annotations.find(cosign::kSignatureAnnotation);
    auto der = encoded == layer.annotations.end()
                   ? std::nullopt
                   : Base64Decode(encoded->second);
    if (!der || der->empty()) {
      note(1, "a signature layer carries no readable signature");
      continue;
    }
    if (!key.Verify(payload, *der)) {
      note(2, "no signature verifies with " + key_name +
                  " (signed with another key, or a signature was altered)");
      continue;
    }
    SimpleSigning s = ParseSimpleSigning(payload);
    if (s.type != cosign::kSignatureType) {
      note(4, "the signed payload has type " + Quote(s.type) +
                  ", not a cosign container image signature");
      continue;
    }
    if (s.manifest_digest != image.ToString()) {
      note(5, "the signature is for " + s.manifest_digest +
                  ", not this image (" + image.ToString() + ")");
      continue;
    }
    if (options.identity && s.docker_reference != *options.identity) {
      note(5, "the signature is for identity " + Quote(s.docker_reference) +
                  ", not " + Quote(*options.identity));
      continue;
    }
    ++result.signatures;
    result.identity = s.docker_reference;
  }
  if (result.signatures == 0) {
    throw UserError(image.ToString() + ": " +
                    (reason.empty() ? "no cosign signature layers" : reason));
  }

  if (options.require.empty()) return result;
  std::optional<Manifest> att = where.Get(AttestationTag(image));
  std::set<std::string> verified;
  std::string att_reason;
  if (att) {
    for (const auto& layer : att->layers) {
      auto type = layer.annotations.find(cosign::kPredicateTypeAnnotation);
      if (layer.media_type != cosign::kDsseMediaType ||
          type == layer.annotations.end())
        continue;
      if (!Requires(options, type->second)) continue;
      std::string what = "attestation " + type->second;
      try {
        Envelope e = ParseEnvelope(where.ReadBlob(layer), what);
        bool ok =
            std::any_of(e.signatures.begin(), e.signatures.end(),
                        [&](const std::string& s) {
                          return key.Verify(Pae(e.payload_type, e.payload), s);
                        });
        if (!ok) {
          att_reason = what + " is not signed by " + key_name;
          continue;
        }
        auto statement = ParseJson(e.payload, what);
        if (statement.value("predicateType", "") != type->second) {
          att_reason = what + ": the statement's predicate type is " +
                       statement.value("predicateType", "");
          continue;
        }
        bool subject = false;
        for (const auto& s : statement["subject"])
          subject |= s["digest"].value("sha256", "") == image.hex();
        if (!subject) {
          att_reason =
              what + " is about another image, not " + image.ToString();
          continue;
        }
        verified.insert(type->second);
      } catch (const Error& e) {
        att_reason = what + ": " + e.message();
      }
    }
  }
  for (const auto& r : options.require) {
    bool have = (r == "sbom" && (verified.count(kSpdxPredicate) ||
                                 verified.count(kCycloneDxPredicate))) ||
                (r == "spdx" && verified.count(kSpdxPredicate)) ||
                (r == "cyclonedx" && verified.count(kCycloneDxPredicate)) ||
                (r == "provenance" && verified.count(kSlsaPredicate));
    if (r != "sbom" && r != "spdx" && r != "cyclonedx" && r != "provenance") {
      throw UserError("--require " + r +
                      ": kiln knows sbom, spdx, cyclonedx and provenance");
    }
    if (!have) {
      throw UserError(image.ToString() + ": no " + r + " attestation verifies" +
                      (att_reason.empty()
                           ? (att ? "" : " (no " + AttestationTag(image) + ")")
                           : " (" + att_reason + ")"));
    }
  }
  result.attestations.assign(verified.begin(), verified.end());
  return result;
}

}  // namespace kiln

#include "sign/sign.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "core/base64.h"
#include "core/fs.h"
#include "core/strings.h"
#include "sign/attest.h"

namespace kiln {
namespace {

constexpr uint64_t kMaxAttachmentBlob = 64 << 20;
// Which key made a signature (its public key's SHA-256), so a verifier can
// tell "another key" from "altered".
constexpr char kKeyIdAnnotation[] = "dev.kiln.keyid";

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
        // A damaged attachment is the signature's problem (exit 1), not the
        // disk's.
        try {
          return Manifest::Parse(layout_.ReadBlob(d), Describe() + " " + tag);
        } catch (const Error& e) {
          throw UserError(
              tag + " in " + Describe() +
              " does not match its digest (tampered): " + e.message());
        }
      }
    }
    return std::nullopt;
  }
  std::string ReadBlob(const Descriptor& d) override {
    try {
      return layout_.ReadBlob(d, kMaxAttachmentBlob);
    } catch (const Error& e) {
      throw UserError(e.message());  // a verification failure, not the disk's
    }
  }
  void Put(const std::string& tag, const Attachment& a) override {
    // In a store, kiln store gc must not take the blobs before the index
    // names them.
    std::optional<FileLock> guard;
    if (is_store_ && PathExists(layout_.dir() + "/kiln"))
      guard.emplace(layout_.dir() + "/kiln/gc.lock", FileLock::Mode::kShared);
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
  std::string keyid = KeyId(signer);
  std::optional<Manifest> existing = where.Get(result.signature_tag);
  // The same key signing the same payload again changes nothing (as cosign).
  bool already = false;
  if (existing) {
    Verifier mine = Verifier::FromPem(signer.PublicKeyPem(), "the signing key");
    for (const auto& l : existing->layers) {
      auto sig = l.annotations.find(cosign::kSignatureAnnotation);
      auto der =
          sig == l.annotations.end() ? std::nullopt : Base64Decode(sig->second);
      if (l.digest == Sha256Of(payload) && der && mine.Verify(payload, *der))
        already = true;
    }
  }
  if (!already) {
    Descriptor layer{cosign::kSimpleSigningMediaType,
                     Sha256Of(payload),
                     static_cast<int64_t>(payload.size()),
                     "",
                     {},
                     std::nullopt};
    layer.annotations[cosign::kSignatureAnnotation] =
        Base64Encode(signer.Sign(payload));
    layer.annotations[kKeyIdAnnotation] = keyid;
    where.Put(result.signature_tag, AppendLayer(existing, layer, payload));
  }

  if (statements.empty()) return result;
  std::optional<Manifest> att = where.Get(AttestationTag(image));
  if (att) {
    // The same key attesting the same predicate again replaces its envelope.
    std::vector<Descriptor> kept;
    for (const auto& l : att->layers) {
      auto type = l.annotations.find(cosign::kPredicateTypeAnnotation);
      auto key = l.annotations.find(kKeyIdAnnotation);
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
    d.annotations[kKeyIdAnnotation] = keyid;
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
  std::set<std::string> other_signers;  // key ids of signatures not by `key`
  bool unknown_signers = false;         // signatures without a key id
  for (const auto& layer : sig->layers) {
    if (layer.media_type != cosign::kSimpleSigningMediaType) continue;
    std::string payload;
    try {
      payload = where.ReadBlob(layer);
    } catch (const Error& e) {
      note(9,
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
      auto by = layer.annotations.find(kKeyIdAnnotation);
      if (by == layer.annotations.end()) {
        unknown_signers = true;
      } else if (by->second == key.Fingerprint()) {
        note(8, "no signature verifies with " + key_name +
                    ": its signature was altered");
      } else {
        other_signers.insert(by->second.substr(0, 12));
      }
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
  if (result.signatures == 0 && reason_rank < 2 &&
      (!other_signers.empty() || unknown_signers)) {
    reason = "no signature verifies with " + key_name;
    if (other_signers.empty()) {
      reason += " (signed with another key, or a signature was altered)";
    } else {
      reason +=
          ": signed with " +
          std::string(other_signers.size() == 1 ? "the key " : "the keys ") +
          Join({other_signers.begin(), other_signers.end()}, ", ") +
          " (wrong key)";
    }
  }
  if (result.signatures == 0) {
    throw UserError(image.ToString() + ": " +
                    (reason.empty() ? "no cosign signature layers" : reason));
  }

  if (options.require.empty()) return result;
  std::optional<Manifest> att = where.Get(AttestationTag(image));
  std::set<std::string> verified;
  std::map<std::string, std::string> att_reasons;  // predicate type → why not
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
          att_reasons[type->second] = what + " is not signed by " + key_name;
          continue;
        }
        auto statement = ParseJson(e.payload, what);
        if (statement.value("predicateType", "") != type->second) {
          att_reasons[type->second] = what +
                                      ": the statement's predicate type is " +
                                      statement.value("predicateType", "");
          continue;
        }
        bool subject = false;
        for (const auto& s : statement["subject"])
          subject |= s["digest"].value("sha256", "") == image.hex();
        if (!subject) {
          att_reasons[type->second] =
              what + " is about another image, not " + image.ToString();
          continue;
        }
        verified.insert(type->second);
      } catch (const Error& e) {
        att_reasons[type->second] = what + ": " + e.message();
      }
    }
  }
  for (const auto& r : options.require) {
    std::vector<std::string> types;
    if (r == "sbom" || r == "spdx") types.push_back(kSpdxPredicate);
    if (r == "sbom" || r == "cyclonedx") types.push_back(kCycloneDxPredicate);
    if (r == "provenance") types.push_back(kSlsaPredicate);
    if (types.empty()) {
      throw UserError("--require " + r +
                      ": kiln knows sbom, spdx, cyclonedx and provenance");
    }
    if (std::any_of(types.begin(), types.end(),
                    [&](const auto& t) { return verified.count(t) > 0; }))
      continue;
    std::string why = att ? AttestationTag(image) + " holds none"
                          : "no " + AttestationTag(image);
    for (const auto& t : types) {
      auto it = att_reasons.find(t);
      if (it != att_reasons.end()) {
        why = it->second;
        break;
      }
    }
    throw UserError(image.ToString() + ": no " + r + " attestation verifies (" +
                    why + ")");
  }
  result.attestations.assign(verified.begin(), verified.end());
  return result;
}

}  // namespace kiln

// Signing and verifying images where they live: the store, an oci: layout or
// a registry repository all hold an image's signature manifest under the tag
// sha256-<hex>.sig and its attestations under sha256-<hex>.att.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "registry/client.h"
#include "sign/cosign.h"
#include "sign/keys.h"
#include "store/layout.h"

namespace kiln {

// Where an image's attachments are read and written.
class AttachmentStore {
 public:
  virtual ~AttachmentStore() = default;
  // The attachment manifest under `tag`, if there is one.
  virtual std::optional<Manifest> Get(const std::string& tag) = 0;
  // A layer's content, verified against its digest.
  virtual std::string ReadBlob(const Descriptor& d) = 0;
  virtual void Put(const std::string& tag, const Attachment& attachment) = 0;
  virtual std::string Describe() const = 0;
};

// In a layout. In the store, entries are named "NAME:TAG"; `name` is the
// image's NAME (empty for a plain oci: layout, where the ref is the tag).
std::unique_ptr<AttachmentStore> LayoutAttachments(const Layout& layout,
                                                   const std::string& name,
                                                   bool is_store);
std::unique_ptr<AttachmentStore> RegistryAttachments(RegistryClient& client,
                                                     const std::string& repo);

struct SignResult {
  std::string identity;
  std::string signature_tag;
  std::vector<std::string> attestations;  // predicate types attached
};

// Signs `image` for `identity` (the docker-reference), appending to the
// signatures already there, and attaches `statements` as DSSE envelopes
// signed by the same key (replacing ones of the same predicate type by it).
SignResult SignImage(
    AttachmentStore& where, const Digest& image, const std::string& identity,
    const Signer& signer,
    const std::vector<std::pair<std::string, std::string>>& statements);

struct VerifyOptions {
  std::vector<std::string>
      require;  // "sbom", "spdx", "cyclonedx", "provenance"
  std::optional<std::string> identity;
};

struct VerifyResult {
  size_t signatures = 0;                  // layers that verified
  std::vector<std::string> attestations;  // predicate types that verified
  std::string identity;                   // what the verified signature names
};

// Copies an image's signature and attestation manifests (and their blobs),
// if it has them, from one place to another. Returns the tags copied.
std::vector<std::string> CopyAttachments(AttachmentStore& from,
                                         AttachmentStore& to,
                                         const Digest& image);

// Checks the image's signatures (and the required attestations) with `key`.
// Throws a UserError with the precise reason when anything does not hold.
VerifyResult VerifyImage(AttachmentStore& where, const Digest& image,
                         const Verifier& key, const VerifyOptions& options);

}  // namespace kiln

// Moving images between the store and registries: push (blobs the registry
// lacks, mounted from another repository when kiln knows one that has them,
// in parallel; then manifests, children before indexes; then tags) and pull
// (every blob verified before it enters the store). What is pushed is the
// store's bytes: manifest digests are the same on both sides.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ref/reference.h"
#include "registry/client.h"
#include "spec/template.h"
#include "store/store.h"

namespace kiln {

// Progress of a transfer; called from worker threads.
class TransferObserver {
 public:
  virtual ~TransferObserver() = default;
  virtual void Planned(size_t blobs, uint64_t bytes) {}
  virtual void BlobProgress(const Digest& digest, uint64_t done,
                            uint64_t size) {}
  // how: "uploaded", "downloaded", "exists", "mounted"
  virtual void BlobDone(const Digest& digest, uint64_t size,
                        const std::string& how) {}
};

struct TransferOptions {
  RegistryOptions registry;
  int jobs = 4;  // blobs in flight
  TransferObserver* observer = nullptr;
};

struct TransferResult {
  std::string source;
  std::string destination;
  Digest digest;  // of the top manifest or index
  std::vector<std::string> tags;
  size_t blobs = 0;
  size_t transferred = 0;  // uploaded or downloaded
  size_t skipped = 0;      // already there
  size_t mounted = 0;
  uint64_t bytes = 0;  // sent or received over the network
  uint64_t requests = 0;
  uint64_t retries = 0;
  bool unchanged = false;  // the destination already held exactly this
};

// A tag that names a version ("1.4.2", "v2", "1.0.0-rc.1") is immutable in the
// store and in registries; others ("latest", "stable", "dev") may move.
bool IsVersionTag(const std::string& tag);

struct PushOptions {
  TransferOptions transfer;
  std::vector<std::string> also_tags;  // floating tags that follow this push
};

// Pushes a store or oci: image (or index) to docker://HOST/REPO[:TAG]. The
// tag defaults to the source's; pushing a version tag that holds other content
// fails (exit 1) before anything is sent.
TransferResult Push(const Store& store, const Reference& source,
                    const Reference& dest, const PushOptions& options);

struct PullOptions {
  TransferOptions transfer;
  const Platform* platform = nullptr;  // only this platform of an index
  // Called with the pulled digest before the image is named in the store;
  // throwing refuses it (kiln pull --verify-key).
  std::function<void(const Digest&)> before_tag;
};

// Pulls docker://… into the store as `name_tag` (none if empty). With a
// platform, only that image of an index is fetched, and `digest` in the
// result is its manifest's.
TransferResult Pull(const Store& store, const Reference& source,
                    const std::string& name_tag, const PullOptions& options);

// A base image from a registry, made available in the store.
struct FetchedBase {
  Digest pinned;        // what the reference resolves to (index or manifest)
  Descriptor manifest;  // the platform's image manifest, in the store
  bool pinned_by_digest = false;
};
// Uses what the store has when the reference is pinned by digest; otherwise
// resolves the tag and pulls only the platform's image.
FetchedBase FetchBase(const Store& store, const Reference& ref,
                      const Platform& platform, const PullOptions& options);

}  // namespace kiln

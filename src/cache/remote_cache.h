// The layer cache shared through an OCI registry (--cache-to, --cache-from):
// many CI runners, one registry, no new server. Each cached layer is a small
// OCI artifact tagged "kc-<key hex>" in a cache repository: its layers are the
// compressed layer blob and the sealed cache entry (digests, entry list,
// packages). A tag per key, not one shared index, so runners pushing at once
// never overwrite each other (registries have no compare-and-swap).
// Everything fetched is verified by digest before it enters the store; a
// remote cache that cannot be reached or serves something damaged is a
// warning and a miss, never a failed build.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cache/layer_cache.h"
#include "registry/client.h"
#include "store/store.h"

namespace kiln {

inline constexpr char kRemoteCacheArtifactType[] =
    "application/vnd.kiln.layer-cache.v1+json";
inline constexpr char kRemoteCacheEntryMediaType[] =
    "application/vnd.kiln.layer-cache-entry.v1+json";

// "kc-<64 hex>": the tag of a layer key's artifact.
std::string RemoteCacheTag(const Digest& key);

struct RemoteCacheCounts {
  size_t hits = 0, misses = 0;     // --cache-from lookups
  size_t pushed = 0, present = 0;  // --cache-to: new artifacts, already there
  uint64_t bytes_down = 0, bytes_up = 0;
};

class RemoteCache {
 public:
  // `repo` of `client`'s registry holds the artifacts. `warn` gets notes on
  // what was skipped.
  RemoteCache(RegistryClient& client, std::string repo, const Store& store,
              std::function<void(const std::string&)> warn);

  // On a local miss: the layer from the registry, downloaded and verified
  // into the store and the local cache; nullopt if the registry has none (or
  // cannot be used: then it is not asked again in this build).
  std::optional<CachedLayer> Fetch(const Digest& key, const LayerCache& local);

  // After a build: each key's layer and entry, unless the registry has them.
  // Throws on failure (the image is built and stored by then).
  void Push(const std::vector<Digest>& keys, const LayerCache& local);

  const RemoteCacheCounts& counts() const { return counts_; }
  std::string Describe() const;  // "docker://host/repo"

 private:
  RegistryClient& client_;
  std::string repo_;
  const Store& store_;
  std::function<void(const std::string&)> warn_;
  bool disabled_ = false;
  RemoteCacheCounts counts_;
};

}  // namespace kiln

// The build pipeline: template -> planned layers -> deterministic tar ->
// compressed blobs in the store -> config and manifest -> tag -> outputs.
// Everything the template can get wrong is checked while planning, before
// the first byte is written.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cache/layer_cache.h"
#include "disk/disk.h"
#include "oci/model.h"
#include "ref/reference.h"
#include "registry/client.h"
#include "spec/template.h"
#include "store/store.h"

namespace kiln {

inline constexpr char kKilnVersion[] = "0.1.0";

struct BuildOptions {
  LoadOptions load;
  int64_t build_date = 0;  // SOURCE_DATE_EPOCH: every mtime and `created`
  std::optional<Compression> compression;  // overrides the template's
  int compression_level = 0;               // 0: the algorithm's default
  int threads = 0;                         // 0: every CPU this process may use
  std::vector<Reference> outputs;          // copies besides the store
  bool replace = false;      // let NAME:VERSION move to new content
  bool locked = false;       // refuse bases not pinned by digest
  bool disk = true;          // build the template's disk image, if it has one
  RegistryOptions registry;  // for docker:// bases
  // A remote cache to ask on a local miss (--cache-from): it stores what it
  // finds in the local cache and returns it.
  std::function<std::optional<CachedLayer>(const Digest& key,
                                           const LayerCache& local)>
      cache_from;
};

struct LayerResult {
  std::string name;
  Descriptor blob;  // the compressed layer as stored
  Digest diff_id;   // SHA-256 of the uncompressed tar
  uint64_t uncompressed_size = 0;
  size_t entries = 0;
  bool from_base = false;
  bool cached = false;              // reused from the layer cache
  std::optional<Digest> cache_key;  // the template's layers: their cache key
};

struct DiskResult {
  Descriptor manifest;  // the disk artifact's
  Descriptor blob;      // the raw or qcow2 file
  DiskInfo info;
  bool cached = false;  // the store already had it for this image
};

struct BuildResult {
  std::string reference;  // "hello:1.4.2"
  Descriptor manifest;
  Digest config_digest;
  std::string base;  // "scratch", or the base reference @ digest
  std::vector<LayerResult> layers;
  std::vector<std::string> outputs;
  bool tag_moved = true;  // false: the tag already held this exact image
  std::vector<Digest>
      layer_keys;  // the cache key of each of the template's layers
  std::optional<DiskResult> disk;
};

// Progress and notes from a build; the front end decides how to show them.
class BuildObserver {
 public:
  virtual ~BuildObserver() = default;
  virtual void LayerStarted(size_t index, size_t count, const std::string& name,
                            size_t entries, uint64_t bytes) {}
  virtual void LayerProgress(size_t index, size_t entries_done,
                             uint64_t bytes_done) {}
  virtual void LayerFinished(size_t index, const LayerResult& result) {}
  virtual void Warning(const std::string& message) {}
  // The disk image's stages: "reading the image", "making the ext4 file
  // system", ...
  virtual void DiskStage(const std::string& stage) {}
  // Whether a layer came from the cache, and if not, what changed since the
  // last build of it ("file bin/hello: sha256:… -> sha256:…"); for a hit,
  // where it came from if not the local cache.
  virtual void LayerCache(size_t index, const std::string& name, bool hit,
                          const std::vector<std::string>& why) {}
  // Whether LayerCache wants the reasons for a miss (working them out reads
  // the last build's key parts).
  virtual bool Explains() const { return false; }
};

BuildResult Build(const BuildOptions& options, const Store& store,
                  BuildObserver* observer = nullptr);

}  // namespace kiln

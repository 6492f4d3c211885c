// The layer cache: layers built before, by the key of everything that decided
// their bytes. An entry names the blob in the store (compressed layer), its
// diff_id, and the layer's entries without content (what later layers need of
// the tree below them), with the little content account files carry. Entries
// are files in the store's kiln/cache/layers/, checked on read: a damaged one
// is a miss and gets rebuilt.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "digest/digest.h"
#include "oci/model.h"
#include "rootfs/entry.h"
#include "store/store.h"

namespace kiln {

// What decided a layer, part by part ("file bin/hello" -> its digest), so a
// miss can say what changed. The key is the digest of all of it.
struct KeyParts {
  std::vector<std::pair<std::string, std::string>> parts;
  void Add(std::string name, std::string value) {
    parts.emplace_back(std::move(name), std::move(value));
  }
  // Replaces the value of the part `name` (which must be there).
  void Set(const std::string& name, std::string value);
  Digest Key() const;
  std::string ToJson() const;
  static KeyParts Parse(std::string_view json);
};
// What changed between two sets of parts, for --explain:
// "file bin/hello: sha256:ab… -> sha256:cd…", "file new.txt: added".
std::vector<std::string> Changes(const KeyParts& before, const KeyParts& now);

// A Debian package a layer holds, as the SBOM and the build's notes need it.
struct CachedPackage {
  std::string name, version, architecture, sha256, license;
  bool scripts = false;  // has maintainer scripts (not run)
  std::string source;    // the Debian source package
};

struct CachedLayer {
  Descriptor blob;  // as stored (compressed)
  Digest diff_id;
  uint64_t uncompressed_size = 0;
  std::vector<Entry>
      entries;  // no content, but account files' (loaded on request)
  std::vector<CachedPackage> packages;
  size_t entry_count = 0;
};

class LayerCache {
 public:
  explicit LayerCache(const Store& store);

  // A usable entry: well-formed and its blob in the store. `with_entries`
  // loads the entry list too (needed only when a later layer is rebuilt).
  std::optional<CachedLayer> Get(const Digest& key, bool with_entries) const;
  void Put(const Digest& key, const CachedLayer& layer) const;
  // The raw entry file (for pushing to a remote cache) and storing one.
  std::optional<std::string> Raw(const Digest& key) const;
  void PutRaw(const Digest& key, const std::string& raw) const;
  // The layer blob a raw entry for `key` describes; nullopt if the entry is
  // damaged or is another key's.
  static std::optional<Descriptor> BlobOf(const std::string& raw,
                                          const Digest& key);

  // The file tree a base image makes, by its manifest digest.
  std::optional<std::vector<Entry>> GetTree(const Digest& image) const;
  void PutTree(const Digest& image, const std::vector<Entry>& entries) const;

  // The parts of the last build of a layer (by a scope naming template and
  // layer), for --explain.
  std::optional<KeyParts> Previous(const std::string& scope) const;
  // `parts_json` is KeyParts::ToJson().
  void Remember(const std::string& scope, const std::string& parts_json) const;

  const std::string& dir() const { return dir_; }

 private:
  std::string Path(const Digest& key) const;
  const Store& store_;
  std::string dir_;
};

}  // namespace kiln

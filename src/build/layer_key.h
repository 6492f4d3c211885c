// Layer cache keys: everything that decides a layer's bytes — the layer's
// spec with host paths left out, its inputs by digest (context files through
// the stat cache, tarballs and packages by their pinned SHA-256), the build
// date, the compression, kiln's encoding version, and the key of the tree
// below it (the previous layer's key, or the base image's digest).
#pragma once

#include <string>

#include "cache/layer_cache.h"
#include "cache/stat_cache.h"
#include "rootfs/context_fs.h"
#include "spec/template.h"

namespace kiln {

// Bumped whenever kiln would write different bytes for the same inputs, or
// refuse inputs it once took (3: setuid files in tarballs need allowSetuid,
// unpacked sizes are bounded), so no cached layer escapes the new rules.
inline constexpr int kLayerEncodingVersion = 3;

struct KeyContext {
  ContextFs* fs = nullptr;
  StatCache* stat = nullptr;
  std::string
      below;  // the key of the layer below, or "base:sha256:…" / "scratch"
  int64_t build_date = 0;
  std::string compression;  // "gzip/6"
  std::string accounts;     // digest of the template's accounts (owner names
                            // resolve through them)
  int threads = 0;          // for hashing context files
};

KeyParts LayerKeyParts(const LayerSpec& spec, const KeyContext& context);
KeyParts AccountsKeyParts(const AccountsSpec& accounts,
                          const KeyContext& context);
// The accounts spec's digest (canonical JSON).
std::string AccountsDigest(const AccountsSpec& accounts);

}  // namespace kiln

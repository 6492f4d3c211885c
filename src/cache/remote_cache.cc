#include "cache/remote_cache.h"

#include <set>

#include "core/error.h"
#include "core/strings.h"
#include "oci/model.h"

namespace kiln {

std::string RemoteCacheTag(const Digest& key) { return "kc-" + key.hex(); }

RemoteCache::RemoteCache(RegistryClient& client, std::string repo,
                         const Store& store,
                         std::function<void(const std::string&)> warn)
    : client_(client),
      repo_(std::move(repo)),
      store_(store),
      warn_(std::move(warn)) {}

std::string RemoteCache::Describe() const {
  return "docker://" + client_.host() + "/" + repo_;
}

namespace {

constexpr char kKeyAnnotation[] = "dev.kiln.cache-key";

// Why an artifact under a key's tag cannot be that key's layer; "" if it can.
std::string Unusable(const RegistryClient::FetchedManifest& fetched,
                     const Digest& key, const std::string& what,
                     Manifest* out) {
  try {
    *out = Manifest::Parse(fetched.bytes, what);
  } catch (const Error& e) {
    return e.message();
  }
  if (out->artifact_type != kRemoteCacheArtifactType ||
      out->layers.size() != 2 ||
      out->layers[1].media_type != kRemoteCacheEntryMediaType)
    return "not a kiln layer-cache artifact (of this kiln version)";
  auto named = out->annotations.find(kKeyAnnotation);
  if (named == out->annotations.end() || named->second != key.ToString())
    return "it is another key's artifact";
  return "";
}

}  // namespace

std::optional<CachedLayer> RemoteCache::Fetch(const Digest& key,
                                              const LayerCache& local) {
  if (disabled_) return std::nullopt;
  std::string what = Describe() + ":" + RemoteCacheTag(key);
  // A damaged or foreign artifact is a miss for its key; a registry that
  // cannot be used is not asked again. Either way the layer is built.
  auto ignore = [&](const std::string& why) -> std::optional<CachedLayer> {
    ++counts_.misses;
    if (warn_) warn_(what + ": " + why + "; the layer is built instead");
    return std::nullopt;
  };
  try {
    auto fetched = client_.GetManifest(repo_, RemoteCacheTag(key));
    if (!fetched) {
      ++counts_.misses;
      return std::nullopt;
    }
    Manifest m;
    if (std::string why = Unusable(*fetched, key, what, &m); !why.empty())
      return ignore(why);
    std::string raw;
    try {
      raw = client_.ReadBlob(repo_, m.layers[1], 1 << 30);
    } catch (const Error& e) {
      return ignore(e.message());
    }
    auto blob = LayerCache::BlobOf(raw, key);
    if (!blob || blob->digest != m.layers[0].digest ||
        blob->size != m.layers[0].size) {
      return ignore(
          "its cache entry is damaged, another key's, or does not describe "
          "its layer");
    }
    if (!store_.layout().HasBlob(blob->digest)) {
      try {
        client_.DownloadBlob(repo_, *blob, store_.layout());
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::kUser || !e.retryable())
          return ignore(e.message());
        throw;
      }
      counts_.bytes_down += static_cast<uint64_t>(blob->size);
    }
    local.PutRaw(key, raw);
    store_.RecordBlobSources(client_.host(), repo_, {blob->digest});
    auto hit = local.Get(key, false);
    if (hit) ++counts_.hits;
    return hit;
  } catch (const Error& e) {
    // A cache is a shortcut: without it the build is slower, not wrong.
    disabled_ = true;
    if (warn_) {
      warn_(Describe() + ": " + e.message() +
            "; building without the remote cache");
    }
    return std::nullopt;
  }
}

void RemoteCache::Push(const std::vector<Digest>& keys,
                       const LayerCache& local) {
  client_.WillPush(repo_);
  std::set<std::string> done;
  std::optional<Descriptor> empty;
  for (const Digest& key : keys) {
    if (!done.insert(key.hex()).second) continue;
    std::string tag = RemoteCacheTag(key);
    if (auto there = client_.GetManifest(repo_, tag)) {
      Manifest m;
      if (Unusable(*there, key, Describe() + ":" + tag, &m).empty()) {
        ++counts_.present;
        continue;
      }
      // A damaged or foreign artifact under this key's tag: replaced.
    }
    auto raw = local.Raw(key);
    auto blob = raw ? LayerCache::BlobOf(*raw, key) : std::nullopt;
    if (!blob || !store_.layout().HasBlob(blob->digest)) {
      if (warn_)
        warn_("layer cache entry " + key.Short() +
              " is gone from the store (gc?); not pushed to " + Describe());
      continue;
    }
    auto size = client_.BlobSize(repo_, blob->digest);
    if (!size || (*size >= 0 && *size != blob->size)) {
      bool mounted = false;
      for (const auto& from :
           store_.BlobSources(client_.host(), blob->digest)) {
        if (from != repo_ && client_.MountBlob(repo_, blob->digest, from)) {
          mounted = true;
          break;
        }
      }
      if (!mounted) {
        client_.UploadBlob(repo_, *blob,
                           store_.layout().BlobPath(blob->digest));
        counts_.bytes_up += static_cast<uint64_t>(blob->size);
      }
    }
    if (!empty) empty = client_.UploadBytes(repo_, "{}", media::kEmpty);
    Manifest m;
    m.artifact_type = kRemoteCacheArtifactType;
    m.config = *empty;
    m.layers = {*blob,
                client_.UploadBytes(repo_, *raw, kRemoteCacheEntryMediaType)};
    m.annotations[kKeyAnnotation] = key.ToString();
    client_.PutManifest(repo_, tag, CanonicalJson(m.ToJson()),
                        media::kManifest);
    store_.RecordBlobSources(client_.host(), repo_, {blob->digest});
    ++counts_.pushed;
  }
}

}  // namespace kiln

#include "registry/transfer.h"

#include <algorithm>
#include <future>
#include <mutex>
#include <regex>
#include <set>

#include "core/strings.h"
#include "core/thread_pool.h"
#include "image/image.h"

namespace kiln {
namespace {

constexpr uint64_t kMaxManifestBytes = 4 << 20;

// A manifest or index and the manifests below it, children first.
struct Node {
  Descriptor descriptor;
  std::string bytes;
};

void Collect(const Layout& layout, const Descriptor& d,
             std::vector<Node>* manifests, std::vector<Descriptor>* blobs,
             std::set<std::string>* seen, int depth) {
  if (depth > 4)
    throw UserError("image indexes nested too deep at " + d.digest.ToString());
  std::string bytes = layout.ReadBlob(d, kMaxManifestBytes);
  std::string what = d.digest.ToString();
  if (IsIndexType(d.media_type)) {
    for (const auto& child : Index::Parse(bytes, what).manifests)
      Collect(layout, child, manifests, blobs, seen, depth + 1);
  } else if (IsManifestType(d.media_type)) {
    Manifest m = Manifest::Parse(bytes, what);
    for (const Descriptor* b : {&m.config}) {
      if (seen->insert(b->digest.hex()).second) blobs->push_back(*b);
    }
    for (const auto& l : m.layers) {
      if (seen->insert(l.digest.hex()).second) blobs->push_back(l);
    }
  } else {
    throw UserError(what + ": cannot push media type " + Quote(d.media_type));
  }
  manifests->push_back({d, std::move(bytes)});
}

// Runs fn over items with `jobs` in flight; the first error is rethrown once
// every started task has ended.
template <typename T, typename Fn>
void Parallel(const std::vector<T>& items, int jobs, Fn fn) {
  ThreadPool pool(
      std::max(1, std::min<int>(jobs, static_cast<int>(items.size()))));
  std::vector<std::future<void>> done;
  for (const auto& item : items)
    done.push_back(pool.Submit([&fn, &item] { fn(item); }));
  std::exception_ptr first;
  for (auto& f : done) {
    try {
      f.get();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

RegistryClient Client(const Reference& ref, const TransferOptions& o) {
  return RegistryClient(ref.registry, o.registry);
}

void Finish(TransferResult* r, RegistryClient& client) {
  r->requests = client.counters().requests;
  r->retries = client.counters().retries;
}

}  // namespace

bool IsVersionTag(const std::string& tag) {
  // A whole semantic version, as kiln tags images ("+" written "_"), with or
  // without a "v": 1.4.2, v1.4.2, 1.0.0-rc.1. "1.4" and "1" float.
  std::string v = tag[0] == 'v' ? tag.substr(1) : tag;
  std::replace(v.begin(), v.end(), '_', '+');
  return IsSemver(v);
}

TransferResult Push(const Store& store, const Reference& source,
                    const Reference& dest, const PushOptions& options) {
  if (dest.kind != Reference::Kind::kRegistry)
    throw UserError(dest.ToString() +
                    ": kiln push publishes to docker://HOST/REPO[:TAG]");
  Located at = Locate(source, store);
  TransferResult result;
  result.source = at.display;
  result.digest = at.descriptor.digest;
  // docker://host/repo without a tag publishes under the source's tag.
  std::string tag = dest.digest ? "" : (dest.tag.empty() ? at.tag : dest.tag);
  if (dest.digest && *dest.digest != at.descriptor.digest) {
    throw UserError(dest.ToString() + ": the source is " +
                    at.descriptor.digest.ToString());
  }
  std::vector<std::string> also_tags = options.also_tags;
  if (auto it = at.descriptor.annotations.find(kPublishTagsAnnotation);
      it != at.descriptor.annotations.end()) {
    for (const auto& t : Split(it->second, ',')) {
      if (!t.empty() &&
          std::find(also_tags.begin(), also_tags.end(), t) == also_tags.end())
        also_tags.push_back(t);
    }
  }
  for (const auto& t : also_tags) {
    if (!IsTag(t))
      throw UserError("--also-tag " + Quote(t) + " is not a valid tag");
  }
  result.destination =
      "docker://" + dest.registry + "/" + dest.name +
      (tag.empty() ? "@" + at.descriptor.digest.ToString() : ":" + tag);

  RegistryClient client = Client(dest, options.transfer);
  client.WillPush(dest.name);
  // A version tag that holds other content is refused before anything moves,
  // whether it is the push's tag or one of --also-tag / publish.tags.
  std::vector<std::string> all_tags = also_tags;
  if (!tag.empty()) all_tags.insert(all_tags.begin(), tag);
  auto check_versions = [&](const std::string& when) {
    for (const auto& t : all_tags) {
      if (!IsVersionTag(t) && t != tag) continue;
      auto current = client.ManifestDigest(dest.name, t);
      if (current && *current != at.descriptor.digest && IsVersionTag(t)) {
        throw UserError("docker://" + dest.registry + "/" + dest.name + ":" +
                        t + " " + when + " " + current->ToString() +
                        "; version tags are immutable and this image is " +
                        at.descriptor.digest.ToString() +
                        ". Publish a new version");
      }
      if (t == tag && current && *current == at.descriptor.digest)
        result.unchanged = true;
    }
  };
  check_versions("already holds");

  std::vector<Node> manifests;
  std::vector<Descriptor> blobs;
  std::set<std::string> seen;
  Collect(at.layout, at.descriptor, &manifests, &blobs, &seen, 0);
  result.blobs = blobs.size();
  uint64_t total = 0;
  for (const auto& b : blobs) total += static_cast<uint64_t>(b.size);
  if (options.transfer.observer)
    options.transfer.observer->Planned(blobs.size(), total);

  std::mutex mu;
  Parallel(blobs, options.transfer.jobs, [&](const Descriptor& b) {
    TransferObserver* obs = options.transfer.observer;
    std::string how;
    auto size = client.BlobSize(dest.name, b.digest);
    if (size && (*size == b.size || *size < 0)) {
      how = "exists";
    } else {
      for (const auto& from : store.BlobSources(dest.registry, b.digest)) {
        if (from != dest.name && client.MountBlob(dest.name, b.digest, from)) {
          how = "mounted";
          break;
        }
      }
      if (how.empty()) {
        if (!at.layout.HasBlob(b.digest))
          throw EnvError(at.display + ": blob " + b.digest.ToString() +
                         " is missing");
        client.UploadBlob(dest.name, b, at.layout.BlobPath(b.digest),
                          [&](uint64_t done) {
                            if (obs)
                              obs->BlobProgress(b.digest, done,
                                                static_cast<uint64_t>(b.size));
                          });
        how = "uploaded";
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    if (how == "exists") ++result.skipped;
    if (how == "mounted") ++result.mounted;
    if (how == "uploaded") ++result.transferred;
    if (obs) obs->BlobDone(b.digest, static_cast<uint64_t>(b.size), how);
  });

  // Children by digest, then the top by tag (or digest), then floating tags.
  for (size_t i = 0; i + 1 < manifests.size(); ++i) {
    const Node& n = manifests[i];
    if (!client.ManifestDigest(dest.name, n.descriptor.digest.ToString())) {
      client.PutManifest(dest.name, n.descriptor.digest.ToString(), n.bytes,
                         n.descriptor.media_type);
    }
  }
  const Node& top = manifests.back();
  // Check again just before writing: another pusher may have been faster.
  check_versions("was published while this push ran, with");
  if (tag.empty()) {
    client.PutManifest(dest.name, top.descriptor.digest.ToString(), top.bytes,
                       top.descriptor.media_type);
  }
  for (const auto& t : all_tags) {
    auto current = client.ManifestDigest(dest.name, t);
    if (!current || *current != top.descriptor.digest) {
      client.PutManifest(dest.name, t, top.bytes, top.descriptor.media_type);
    }
    result.tags.push_back(t);
  }
  std::vector<Digest> known;
  for (const auto& b : blobs) known.push_back(b.digest);
  store.RecordBlobSources(dest.registry, dest.name, known);
  result.bytes = client.counters().bytes_sent;
  Finish(&result, client);
  return result;
}

TransferResult Pull(const Store& store, const Reference& source,
                    const std::string& name_tag, const PullOptions& options) {
  if (source.kind != Reference::Kind::kRegistry)
    throw UserError(source.ToString() +
                    ": kiln pull reads docker://HOST/REPO[:TAG|@DIGEST]");
  RegistryClient client = Client(source, options.transfer);
  std::string reference = source.digest        ? source.digest->ToString()
                          : source.tag.empty() ? "latest"
                                               : source.tag;
  TransferResult result;
  result.source = source.ToString();
  result.destination = name_tag;
  auto top = client.GetManifest(source.name, reference);
  if (!top)
    throw UserError(source.ToString() + ": no such image in the registry");
  result.digest = top->digest;

  // Every manifest to fetch, children first; blobs of the image manifests.
  std::vector<Node> manifests;
  std::vector<Descriptor> blobs;
  std::set<std::string> seen;
  std::optional<Descriptor>
      chosen;  // with a platform: the image picked from an index
  std::function<void(const Descriptor&, std::string, int)> walk =
      [&](const Descriptor& d, std::string bytes, int depth) {
        if (depth > 4)
          throw UserError(source.ToString() +
                          ": image indexes nested too deep");
        std::string what = source.ToString() + " " + d.digest.ToString();
        if (IsIndexType(d.media_type)) {
          Index index = Index::Parse(bytes, what);
          std::vector<Descriptor> children;
          for (const auto& c : index.manifests) {
            if (!options.platform ||
                (c.platform && c.platform->os == options.platform->os &&
                 c.platform->architecture == options.platform->architecture &&
                 (options.platform->variant.empty() ||
                  c.platform->variant == options.platform->variant))) {
              children.push_back(c);
            }
          }
          if (children.empty()) {
            throw UserError(source.ToString() + " has no image for " +
                            (options.platform ? options.platform->ToString()
                                              : "any platform"));
          }
          for (const auto& c : children) {
            auto m = client.GetManifest(source.name, c.digest.ToString());
            if (!m)
              throw EnvError(source.ToString() +
                             ": the registry lost manifest " +
                             c.digest.ToString());
            Descriptor cd = c;
            cd.media_type = m->media_type;
            walk(cd, std::move(m->bytes), depth + 1);
            if (options.platform && !chosen)
              chosen = cd;  // only the first match is kept
            if (options.platform) break;
          }
        } else {
          Manifest m = Manifest::Parse(bytes, what);
          for (const auto& b : std::vector<Descriptor>{m.config}) {
            if (seen.insert(b.digest.hex()).second) blobs.push_back(b);
          }
          for (const auto& l : m.layers) {
            if (seen.insert(l.digest.hex()).second) blobs.push_back(l);
          }
        }
        manifests.push_back({d, std::move(bytes)});
      };
  Descriptor top_desc;
  top_desc.media_type = top->media_type;
  top_desc.digest = top->digest;
  top_desc.size = static_cast<int64_t>(top->bytes.size());
  walk(top_desc, top->bytes, 0);
  result.blobs = blobs.size();
  uint64_t total = 0;
  for (const auto& b : blobs) total += static_cast<uint64_t>(b.size);
  if (options.transfer.observer)
    options.transfer.observer->Planned(blobs.size(), total);

  FileLock guard = store.LockShared();
  std::mutex mu;
  Parallel(blobs, options.transfer.jobs, [&](const Descriptor& b) {
    TransferObserver* obs = options.transfer.observer;
    std::string how = "exists";
    if (!store.layout().HasBlob(b.digest)) {
      client.DownloadBlob(source.name, b, store.layout(), [&](uint64_t done) {
        if (obs)
          obs->BlobProgress(b.digest, done, static_cast<uint64_t>(b.size));
      });
      how = "downloaded";
    }
    std::lock_guard<std::mutex> lock(mu);
    if (how == "downloaded") ++result.transferred;
    if (how == "exists") ++result.skipped;
    if (obs) obs->BlobDone(b.digest, static_cast<uint64_t>(b.size), how);
  });
  // A refused image gets no manifest and no name in the store.
  if (options.before_tag) options.before_tag(top->digest);
  // Manifests after their blobs, so a manifest in the store is always whole.
  for (const auto& n : manifests) {
    Descriptor put = store.layout().PutBlob(n.bytes, n.descriptor.media_type);
    if (put.digest != n.descriptor.digest)
      throw InternalError("manifest digest changed while storing it");
  }
  Descriptor named = chosen ? *chosen : manifests.back().descriptor;
  result.digest = named.digest;
  if (!name_tag.empty()) {
    size_t colon = name_tag.rfind(':');
    std::string tag =
        colon == std::string::npos ? "" : name_tag.substr(colon + 1);
    // The store mirrors the registry: floating tags follow it, versions do not
    // move.
    store.Tag(name_tag, named, !IsVersionTag(tag));
    result.tags.push_back(name_tag);
  }
  std::vector<Digest> known;
  for (const auto& b : blobs) known.push_back(b.digest);
  store.RecordBlobSources(source.registry, source.name, known);
  result.bytes = client.counters().bytes_received;
  Finish(&result, client);
  return result;
}

namespace {

// A pinned base already in the store, without asking the registry.
std::optional<Descriptor> LocalBase(const Store& store, const Digest& pinned,
                                    const Platform& platform) {
  const Layout& layout = store.layout();
  if (!layout.HasBlob(pinned)) return std::nullopt;
  try {
    std::string bytes = ReadFile(layout.BlobPath(pinned), kMaxManifestBytes);
    if (Sha256Of(bytes) != pinned) return std::nullopt;
    auto j = ParseJson(bytes, pinned.ToString());
    std::string type = j.is_object()
                           ? j.value("mediaType", std::string(media::kManifest))
                           : "";
    Descriptor d{type, pinned, static_cast<int64_t>(bytes.size()),
                 "",   {},     std::nullopt};
    if (IsIndexType(type)) {
      std::optional<Descriptor> child;
      for (const auto& c : Index::Parse(bytes, pinned.ToString()).manifests) {
        if (c.platform && c.platform->os == platform.os &&
            c.platform->architecture == platform.architecture &&
            (platform.variant.empty() ||
             c.platform->variant == platform.variant)) {
          child = c;
          break;
        }
      }
      if (!child || !layout.HasBlob(child->digest)) return std::nullopt;
      d = *child;
    }
    Manifest m = Manifest::Parse(layout.ReadBlob(d), d.digest.ToString());
    if (!layout.HasBlob(m.config.digest)) return std::nullopt;
    for (const auto& l : m.layers) {
      if (!layout.HasBlob(l.digest)) return std::nullopt;
    }
    return d;
  } catch (const Error&) {
    return std::nullopt;  // anything odd: ask the registry
  }
}

}  // namespace

FetchedBase FetchBase(const Store& store, const Reference& ref,
                      const Platform& platform, const PullOptions& options) {
  FetchedBase base;
  base.pinned_by_digest = ref.digest.has_value();
  if (ref.digest) {
    base.pinned = *ref.digest;
    if (auto local = LocalBase(store, base.pinned, platform)) {
      base.manifest = *local;
      return base;
    }
  }
  PullOptions o = options;
  o.platform = &platform;
  Reference pinned = ref;
  if (!ref.digest) {
    RegistryClient client(ref.registry, options.transfer.registry);
    auto d =
        client.ManifestDigest(ref.name, ref.tag.empty() ? "latest" : ref.tag);
    if (!d) throw UserError(ref.ToString() + ": no such image in the registry");
    pinned.digest = *d;
  }
  base.pinned = *pinned.digest;
  pinned.tag.clear();
  // Named by digest in the store, so it is kept and never moves.
  TransferResult r = Pull(store, pinned,
                          "docker://" + ref.registry + "/" + ref.name + "@" +
                              base.pinned.ToString(),
                          o);
  base.manifest = store.Resolve(ParseReference("base@" + r.digest.ToString()));
  return base;
}

}  // namespace kiln

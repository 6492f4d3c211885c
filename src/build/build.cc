#include "build/build.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <future>
#include <set>

#include "build/layer_key.h"
#include "build/record.h"
#include "cache/layer_cache.h"
#include "cache/stat_cache.h"
#include "compress/layer_encoder.h"
#include "core/strings.h"
#include "core/thread_pool.h"
#include "disk/artifact.h"
#include "image/export.h"
#include "image/image.h"
#include "packages/install.h"
#include "packages/lock.h"
#include "registry/transfer.h"
#include "rootfs/context_fs.h"
#include "rootfs/plan.h"
#include "rootfs/spool.h"
#include "tar/tar_writer.h"

namespace kiln {
namespace {

const std::set<std::string> kAccountPaths = {"etc/passwd", "etc/group",
                                             "etc/shadow", "etc/gshadow"};

std::optional<Image> OpenBase(const Template& t, const Store& store,
                              const BuildOptions& options,
                              BuildObserver* observer, std::string* pinned) {
  if (t.base == "scratch") return std::nullopt;
  const SourceLocation& loc = t.locs.At("base");
  Reference ref;
  try {
    ref = ParseReference(t.base);
  } catch (const Error& e) {
    throw ErrorAt(loc, "base: " + e.message());
  }
  if (ref.kind != Reference::Kind::kStore &&
      ref.kind != Reference::Kind::kOciLayout &&
      ref.kind != Reference::Kind::kRegistry) {
    throw ErrorAt(loc,
                  "base must be scratch, a store NAME:TAG, oci:DIR[:TAG] or "
                  "docker://HOST/REPO@sha256:...");
  }
  if (ref.kind == Reference::Kind::kRegistry) {
    if (!ref.digest && options.locked) {
      throw ErrorAt(loc, "base " + Quote(t.base) +
                             " is not pinned by digest, and --locked builds "
                             "only pinned bases");
    }
    PullOptions pull;
    pull.transfer.registry = options.registry;
    FetchedBase fetched = WithContext("base " + t.base, [&] {
      return FetchBase(store, ref, t.platform, pull);
    });
    if (!fetched.pinned_by_digest && observer) {
      observer->Warning("base " + t.base + " is not pinned: it resolved to " +
                        fetched.pinned.ToString() + "; pin it as docker://" +
                        ref.registry + "/" + ref.name + "@" +
                        fetched.pinned.ToString() +
                        " for a reproducible build");
    }
    *pinned = fetched.pinned.ToString();
    ref = ParseReference("base@" + fetched.manifest.digest.ToString());
  }
  // A layout path is relative to the template, never to the working directory.
  if (ref.kind == Reference::Kind::kOciLayout && ref.path[0] != '/')
    ref.path = t.dir + "/" + ref.path;
  try {
    Image image = OpenImage(ref, store, &t.platform);
    const ImageConfig& c = image.config;
    if (c.os != t.platform.os || c.architecture != t.platform.architecture ||
        (!t.platform.variant.empty() && c.variant != t.platform.variant)) {
      throw UserError("it is " + c.os + "/" + c.architecture +
                      (c.variant.empty() ? "" : "/" + c.variant) +
                      ", the template builds " + t.platform.ToString());
    }
    for (const auto& l : image.manifest.layers) {
      if (LayerCompressionOf(l.media_type) == LayerCompression::kUnknown) {
        throw UserError("layer " + l.digest.ToString() +
                        " has unsupported media type " + Quote(l.media_type));
      }
    }
    return image;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUser) throw;
    throw ErrorAt(loc, "base " + Quote(t.base) + ": " + e.message());
  }
}

// Base layers are reused byte for byte; only Docker's media type names are
// mapped to the OCI ones for the same bytes.
Descriptor BaseLayerDescriptor(const Descriptor& d) {
  Descriptor out;
  out.digest = d.digest;
  out.size = d.size;
  switch (LayerCompressionOf(d.media_type)) {
    case LayerCompression::kGzip:
      out.media_type = media::kLayerGzip;
      break;
    case LayerCompression::kZstd:
      out.media_type = media::kLayerZstd;
      break;
    default:
      out.media_type = media::kLayerTar;
      break;
  }
  return out;
}

RuntimeConfig MergeConfig(RuntimeConfig c, const ConfigSpec& spec) {
  for (const auto& [key, value] : spec.env) {
    std::string line = key + "=" + value;
    auto it = std::find_if(
        c.env.begin(), c.env.end(),
        [&](const std::string& e) { return StartsWith(e, key + "="); });
    if (it != c.env.end()) {
      *it = line;
    } else {
      c.env.push_back(line);
    }
  }
  if (spec.entrypoint) {
    c.entrypoint = spec.entrypoint;
    c.cmd.reset();  // a new entrypoint drops the base's cmd, as in a Dockerfile
  }
  if (spec.cmd) c.cmd = spec.cmd;
  if (spec.workdir) c.working_dir = *spec.workdir;
  if (spec.user) c.user = *spec.user;
  if (spec.stop_signal) c.stop_signal = *spec.stop_signal;
  for (const auto& [k, v] : spec.labels) c.labels[k] = v;
  auto add_sorted = [](std::vector<std::string>& into,
                       const std::vector<std::string>& from) {
    for (const auto& x : from) {
      if (std::find(into.begin(), into.end(), x) == into.end())
        into.push_back(x);
    }
    std::sort(into.begin(), into.end());
  };
  add_sorted(c.exposed_ports, spec.exposed_ports);
  add_sorted(c.volumes, spec.volumes);
  return c;
}

LayerResult WriteLayer(const LayerPlan& plan, size_t index,
                       const BuildOptions& options, Compression compression,
                       const Store& store, BuildObserver* observer) {
  auto blob = store.layout().NewBlob();
  CompressionOptions copts;
  copts.algorithm = compression;
  copts.level = options.compression_level;
  copts.threads = options.threads;
  LayerEncoder encoder(copts, *blob);
  CountingSink counted(encoder);  // for progress
  TarWriter tar(counted, options.build_date);
  size_t done = 0;
  uint64_t reported = 0;
  for (const auto& e : plan.entries) {
    tar.Add(e);
    ++done;
    if (observer &&
        (counted.count - reported >= (8 << 20) || done % 512 == 0)) {
      observer->LayerProgress(index, done, counted.count);
      reported = counted.count;
    }
  }
  tar.Finish();
  LayerResult r;
  r.name = plan.name;
  r.diff_id = encoder.Finish();
  r.uncompressed_size = encoder.uncompressed_bytes();
  r.blob = blob->Commit(LayerMediaType(compression));
  r.entries = plan.entries.size();
  if (observer) observer->LayerProgress(index, done, counted.count);
  return r;
}

// One layer of the build: its spec (the accounts layer's is made when
// planned), its cache key, and either a cache hit or a plan to write.
struct Step {
  LayerSpec spec;
  bool accounts = false;
  KeyParts parts;
  std::string parts_json;  // what the key is the digest of
  Digest key;
  std::optional<CachedLayer> hit;
  std::optional<LayerPlan> plan;
  LayerResult result;
};

std::vector<CachedPackage> PackagesOf(const LayerPlan& plan) {
  std::vector<CachedPackage> out;
  for (const auto& p : plan.packages) {
    out.push_back({p.name, p.version, p.architecture, p.sha256, p.license,
                   !p.scripts.empty(), p.source});
  }
  return out;
}

// The tree a base image makes, read once and then kept in the cache.
Tree BaseTree(const Image& base, const LayerCache& cache) {
  Tree tree;
  if (auto entries = cache.GetTree(base.descriptor.digest)) {
    for (auto& e : *entries) tree.Put(std::move(e));
    return tree;
  }
  FlattenOptions f;
  f.capture = kAccountPaths;
  tree = WithContext("reading base " + base.display,
                     [&] { return Flatten(base, f); });
  std::vector<Entry> entries;
  for (const auto& [path, e] : tree.entries()) entries.push_back(e);
  cache.PutTree(base.descriptor.digest, entries);
  return tree;
}

// The lock a build uses: kiln.lock beside the template. A lock that no longer
// matches the template is an error; a missing one is made now, unless
// --locked says it must exist.
LockFile LockFor(const Template& t, const BuildOptions& options,
                 HttpTransport& http, const std::string& cache,
                 BuildObserver* observer) {
  std::string path = LockPathFor(options.load.path);
  std::string again = "run kiln lock " + options.load.path;
  if (!PathExists(path)) {
    if (options.locked)
      throw UserError(path +
                      ": no lock file, and --locked builds only from one (" +
                      again + ")");
    LockFile lock = MakeLock(t.packages, http, cache);
    WriteFileAtomic(path, lock.ToJson());
    if (observer)
      observer->Warning("wrote " + path + " (" +
                        std::to_string(lock.packages.size()) + " packages)");
    return lock;
  }
  LockFile lock = LockFile::Parse(ReadFile(path, 64 << 20), path);
  if (lock.request != RequestDigest(t.packages)) {
    throw UserError(path +
                    " no longer matches the template's packages (repositories, "
                    "keyrings, include or exclude changed): " +
                    again);
  }
  return lock;
}

BuildRecord MakeRecord(const Template& t, const BuildOptions& options,
                       Compression compression, const BuildResult& result,
                       const std::vector<Step>& steps) {
  BuildRecord r;
  r.kiln_version = kKilnVersion;
  r.image = t.Reference();
  r.version = t.version;
  for (const auto& s : t.source_refs) r.templates.push_back({s.name, s.sha256});
  r.args = t.args;
  for (const auto& [k, v] : t.sets) r.sets[k] = v;
  r.build_date = options.build_date;
  r.platform = t.platform.ToString();
  r.compression = CompressionName(compression);
  r.compression_level = options.compression_level;
  r.base = t.base;
  size_t at = result.base.find('@');
  r.base_digest = at == std::string::npos ? "" : result.base.substr(at + 1);
  for (const auto& s : steps) {
    for (const auto& tb : s.spec.tarballs)
      r.inputs.push_back({"tarball:" + tb.src, tb.sha256});
    // Where each .deb came from is the lock's, not the cached layer's.
    std::map<std::string, std::string> download;
    for (const auto& p : s.spec.packages) download[p.name] = p.url;
    for (const auto& p : s.plan ? PackagesOf(*s.plan) : s.hit->packages) {
      r.packages.push_back({p.name, p.version, p.architecture, p.sha256,
                            p.license, p.source, download[p.name]});
    }
  }
  for (const auto& l : result.layers)
    r.layers.push_back({l.name, l.blob.digest, l.diff_id, l.from_base});
  return r;
}

// The template's disk image for `image` (built, not yet named): the store's
// copy if it already has one for this image, else made from the flattened
// tree and moved into the store as a blob and an artifact manifest.
DiskResult MakeDisk(const DiskSpec& spec, const Image& image, const Template& t,
                    const BuildOptions& options, const Store& store,
                    BuildObserver* observer,
                    const std::function<void()>& before_writing) {
  DiskResult result;
  if (auto stored = FindDisk(store.layout(), image.descriptor.digest);
      stored && store.layout().HasBlob(stored->blob.digest)) {
    result.manifest = stored->descriptor;
    result.manifest.annotations.clear();
    result.blob = stored->blob;
    result.info = stored->info;
    result.cached = true;
    return result;
  }
  auto stage = [&](const std::string& what) {
    if (observer) observer->DiskStage(what);
  };
  stage("reading the image's file system");
  FlattenOptions flatten;
  flatten.spool = Spool::Create(store.tmp_dir());
  Tree tree = Flatten(image, flatten);
  DiskBuildOptions o;
  o.image = image.descriptor.digest;
  o.name = t.name;
  o.version = t.version;
  o.build_date = options.build_date;
  o.scratch_dir = store.tmp_dir();
  o.threads = options.threads;
  PlanDisk(spec, tree, o);
  before_writing();
  stage(std::string("making the ") + DiskFilesystemName(spec.filesystem) +
        " disk image");
  MakeDirs(store.tmp_dir());
  std::string out = TempPathBeside(store.tmp_dir() + "/disk");
  DiskInfo info;
  try {
    info = BuildDisk(spec, tree, o, out);
    stage("storing the disk image");
    result.blob = store.layout().AdoptFile(out, DiskMediaType(spec.format));
  } catch (...) {
    ::unlink(out.c_str());
    throw;
  }
  result.info = info;
  Descriptor empty = store.layout().PutBlob("{}", media::kEmpty);
  std::string title = t.name + "-" + t.Tag() + "." +
                      (spec.format == DiskFormat::kQcow2 ? "qcow2" : "raw");
  Manifest m = DiskManifest(image.descriptor, result.blob, empty, info,
                            Rfc3339(options.build_date), title);
  result.manifest =
      store.layout().PutBlob(CanonicalJson(m.ToJson()), media::kManifest);
  return result;
}

}  // namespace

BuildResult Build(const BuildOptions& options, const Store& store,
                  BuildObserver* observer) {
  Template t = LoadTemplate(options.load);
  Compression compression = options.compression.value_or(t.compression);
  if (!ValidLevel(compression, options.compression_level)) {
    throw UserError(
        "--compression-level " + std::to_string(options.compression_level) +
        ": " + CompressionName(compression) + " levels are 1 to " +
        std::to_string(compression == Compression::kZstd ? kMaxZstdLevel
                                                         : kMaxGzipLevel));
  }
  if (options.build_date < 0)
    throw UserError("the build date (SOURCE_DATE_EPOCH) cannot be negative");
  for (const auto& out : options.outputs) {
    if (out.kind == Reference::Kind::kRegistry) {
      throw UserError("--output " + out.ToString() +
                      ": registries are published to with kiln push");
    }
  }
  FileLock gc_guard = store.LockShared();

  // 1. The base, and Debian packages (as kiln.lock pins them) as the lowest
  //    layers of the template's own.
  std::string pinned;  // a registry base's resolved digest
  std::optional<Image> base = OpenBase(t, store, options, observer, &pinned);
  if (base && pinned.empty()) pinned = base->descriptor.digest.ToString();
  if (!t.packages.empty()) {
    auto http = NewCurlTransport(options.registry.tls);
    std::string cache = store.path() + "/kiln/cache";
    LockFile lock = LockFor(t, options, *http, cache + "/apt", observer);
    std::vector<LayerSpec> layers =
        PackageLayers(t.packages, lock, *http, cache + "/debs", 4);
    t.layers.insert(t.layers.begin(), layers.begin(), layers.end());
  }

  // 2. Each layer's cache key; a hit is used as it is, a miss is planned
  //    (every check happens in planning, before anything is written). The
  //    tree below a layer is only made when some layer has to be planned.
  LayerCache cache(store);
  StatCache stat(store.path() + "/kiln/cache/stat");
  std::unique_ptr<ContextFs> fs = NewHostFs();
  std::shared_ptr<Spool> spool;
  std::vector<Step> steps;
  for (const auto& spec : t.layers) {
    steps.emplace_back();
    steps.back().spec = spec;
  }
  if (!t.accounts.empty()) {
    steps.emplace_back();
    steps.back().accounts = true;
  }
  if (steps.empty() && !base) {
    throw ErrorAt(
        t.locs.entry,
        "the template has no layers and no base: the image would be empty");
  }
  KeyContext kc;
  kc.fs = fs.get();
  kc.stat = &stat;
  kc.below = base ? "base:" + base->descriptor.digest.ToString() : "scratch";
  kc.build_date = options.build_date;
  kc.compression =
      std::string(CompressionName(compression)) + "/" +
      std::to_string(EffectiveLevel(compression, options.compression_level));
  kc.accounts = AccountsDigest(t.accounts);
  kc.threads = options.threads;
  std::optional<Tree> lower;
  size_t applied = 0;
  // The tree below step i: the base, then every earlier layer's entries.
  auto tree_below = [&](size_t i) -> Tree& {
    if (!lower) {
      lower.emplace();
      if (base) *lower = BaseTree(*base, cache);
    }
    for (; applied < i; ++applied) {
      Step& s = steps[applied];
      if (s.plan) {
        lower->ApplyLayer(s.plan->entries);
      } else {
        auto full = cache.Get(s.key, true);
        if (!full)
          throw InternalError("cache entry " + s.key.ToString() +
                              " vanished during the build");
        lower->ApplyLayer(full->entries);
      }
    }
    return *lower;
  };
  std::string scope = AbsolutePath(options.load.path);
  // Each layer's own parts (a walk of its files, hashing what changed) at
  // once; the chain of keys ("below") is filled in as the steps are taken.
  // (Declared before the pool: its tasks use it until the pool is joined.)
  const KeyContext own = kc;  // the loop below moves kc.below on
  ThreadPool keying(std::min<int>(
      DefaultThreads(), std::max<int>(1, static_cast<int>(steps.size()))));
  std::vector<std::future<void>> keyed(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].accounts) continue;
    keyed[i] = keying.Submit(
        [&, i] { steps[i].parts = LayerKeyParts(steps[i].spec, own); });
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    Step& s = steps[i];
    std::string name = s.accounts ? "accounts" : s.spec.name;
    if (s.accounts) {
      s.parts = AccountsKeyParts(t.accounts, kc);
    } else {
      keyed[i].get();
      s.parts.Set("below", kc.below);
    }
    s.parts_json = s.parts.ToJson();
    s.key = Sha256Of(s.parts_json);
    s.hit = cache.Get(s.key, false);
    bool remote = false;
    if (!s.hit && options.cache_from) {
      s.hit = options.cache_from(s.key, cache);
      remote = s.hit.has_value();
    }
    if (!s.hit) {
      if (!spool) spool = Spool::Create(store.tmp_dir());
      Tree& below = tree_below(i);
      if (s.accounts) {
        s.spec = AccountsLayerSpec(
            MergeAccounts(AccountFiles::FromTree(below), t.accounts), below);
        OwnerResolver owners(AccountFiles{}, AccountsSpec{});
        s.plan =
            PlanLayer(s.spec, PlanInputs{fs.get(), &below, &owners, spool});
      } else {
        OwnerResolver owners(AccountFiles::FromTree(below), t.accounts);
        s.plan =
            PlanLayer(s.spec, PlanInputs{fs.get(), &below, &owners, spool});
        if (s.plan->entries.empty())
          throw ErrorAt(s.spec.locs.entry,
                        "layer " + Quote(s.spec.name) + " adds nothing");
      }
      s.plan->name = name;
    }
    if (observer) {
      std::vector<std::string> why;
      if (!s.hit && observer->Explains()) {
        std::optional<KeyParts> before = cache.Previous(scope + "\n" + name);
        why = before ? Changes(*before, s.parts)
                     : std::vector<std::string>{"not built before"};
      }
      if (!s.hit && observer->Explains() && why.empty())
        why.push_back("the cache entry is gone (gc, or damaged)");
      if (remote) why.push_back("downloaded from the remote cache");
      observer->LayerCache(i, name, s.hit.has_value(), why);
    }
    kc.below = s.key.ToString();
  }

  std::vector<std::string> scripted;
  for (const auto& s : steps) {
    for (const auto& p : s.plan ? PackagesOf(*s.plan) : s.hit->packages) {
      if (p.scripts) scripted.push_back(p.name);
    }
  }
  if (!scripted.empty() && observer) {
    observer->Warning((scripted.size() == 1 ? std::string("1 package has")
                                            : std::to_string(scripted.size()) +
                                                  " packages have") +
                      " maintainer scripts, which kiln does not run: " +
                      Join(scripted, ", "));
  }

  // The disk's needs (a kernel, a boot loader, the size) are checked before
  // any layer is written; contents the cache holds only as metadata are
  // checked again before the disk is made.
  if (t.disk && options.disk &&
      std::any_of(steps.begin(), steps.end(),
                  [](const Step& s) { return !s.hit; })) {
    DiskBuildOptions o;
    o.name = t.name;
    o.build_date = options.build_date;
    WithContext("planning the disk image",
                [&] { PlanDisk(*t.disk, tree_below(steps.size()), o); });
  }

  // 3. Write the layers that missed, two at a time (each compresses on
  //    every core; more at once only helps small layers).
  std::vector<size_t> misses;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!steps[i].hit) misses.push_back(i);
  }
  {
    BuildOptions writing = options;
    if (misses.size() > 1 && writing.threads == 0)
      writing.threads = std::max(1, DefaultThreads() / 2);
    ThreadPool pool(std::min<int>(2, std::max<size_t>(1, misses.size())));
    std::vector<std::future<void>> done;
    for (size_t i : misses) {
      done.push_back(pool.Submit([&, i] {
        Step& s = steps[i];
        if (observer)
          observer->LayerStarted(i, steps.size(), s.plan->name,
                                 s.plan->entries.size(), s.plan->content_bytes);
        s.result = WithContext("writing layer " + Quote(s.plan->name), [&] {
          return WriteLayer(*s.plan, i, writing, compression, store, observer);
        });
        CachedLayer c{
            s.result.blob,   s.result.diff_id,    s.result.uncompressed_size,
            s.plan->entries, PackagesOf(*s.plan), s.result.entries};
        cache.Put(s.key, c);
        if (observer) observer->LayerFinished(i, s.result);
      }));
    }
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
  for (auto& s : steps) {
    if (!s.hit) continue;
    s.result.name = s.accounts ? "accounts" : s.spec.name;
    s.result.blob = s.hit->blob;
    s.result.diff_id = s.hit->diff_id;
    s.result.uncompressed_size = s.hit->uncompressed_size;
    s.result.entries = s.hit->entry_count;
    s.result.cached = true;
  }
  // Only a build that got this far leaves its traces in the caches.
  for (const auto& s : steps)
    cache.Remember(scope + "\n" + s.result.name, s.parts_json);
  stat.Save();

  // 4. Config and manifest.
  BuildResult result;
  result.reference = t.Reference();
  result.base = !base                                   ? "scratch"
                : t.base.find('@') != std::string::npos ? t.base
                                                        : t.base + "@" + pinned;
  ImageConfig config;
  Manifest manifest;
  if (base) {
    config = base->config;
    for (size_t i = 0; i < base->manifest.layers.size(); ++i) {
      Descriptor d = BaseLayerDescriptor(base->manifest.layers[i]);
      store.layout().CopyBlobFrom(base->layout, base->manifest.layers[i]);
      manifest.layers.push_back(d);
      LayerResult r;
      r.name = "base";
      r.blob = d;
      r.diff_id = base->config.diff_ids[i];
      r.from_base = true;
      result.layers.push_back(r);
    }
  }
  std::string created = Rfc3339(options.build_date);
  for (const auto& s : steps) {
    manifest.layers.push_back(s.result.blob);
    config.diff_ids.push_back(s.result.diff_id);
    config.history.push_back(
        {created, "kiln: layer " + s.result.name, "", false});
    result.layers.push_back(s.result);
    result.layers.back().cache_key = s.key;
  }
  config.created = created;
  config.os = t.platform.os;
  config.architecture = t.platform.architecture;
  config.variant = t.platform.variant;
  config.config = MergeConfig(config.config, t.config);
  manifest.config =
      store.layout().PutBlob(CanonicalJson(config.ToJson()), media::kConfig);
  result.config_digest = manifest.config.digest;
  manifest.annotations = t.annotations;
  manifest.annotations[annotation::kVersion] = t.version;
  manifest.annotations[annotation::kCreated] = created;
  manifest.annotations[annotation::kTitle] = t.name;
  if (t.disk) manifest.annotations[kDiskSpecAnnotation] = DiskSpecJson(*t.disk);
  if (base) {
    manifest.annotations[annotation::kBaseDigest] = pinned;
    manifest.annotations[annotation::kBaseName] =
        t.base;  // as written: no host paths
  }
  result.manifest = store.layout().PutBlob(CanonicalJson(manifest.ToJson()),
                                           media::kManifest);
  result.manifest.platform = t.platform;
  result.layer_keys.clear();
  for (const auto& s : steps) result.layer_keys.push_back(s.key);

  // 5. Name it, then write the copies. Publishing hints and the build record
  //    live on the store's entry, not in the image.
  Descriptor entry = result.manifest;
  if (!t.publish_tags.empty())
    entry.annotations[kPublishTagsAnnotation] = Join(t.publish_tags, ",");
  BuildRecord record = MakeRecord(t, options, compression, result, steps);
  entry.annotations[kBuildRecordAnnotation] =
      store.layout()
          .PutBlob(record.ToJson(), kBuildRecordMediaType)
          .digest.ToString();
  // The disk before the tag: a template whose disk cannot be made names
  // nothing.
  if (t.disk && options.disk) {
    Image image{result.reference, t.name,
                t.Tag(),          store.layout(),
                result.manifest,  manifest,
                config,           store.layout().ReadBlob(manifest.config)};
    result.disk = WithContext("making the disk image", [&] {
      // A version that holds other content is refused once the disk's
      // plan holds, before the disk is made (Tag throws the same error).
      return MakeDisk(*t.disk, image, t, options, store, observer, [&] {
        if (auto held = store.layout().FindRef(result.reference);
            held && held->digest != result.manifest.digest && !options.replace)
          store.Tag(result.reference, entry, false);
      });
    });
  }
  result.tag_moved = store.Tag(result.reference, entry, options.replace);
  if (result.disk)
    TagDisk(store.layout(), t.name, result.manifest.digest,
            result.disk->manifest);
  if (!options.outputs.empty()) {
    Reference self;
    self.name = t.name;
    self.tag = t.Tag();
    Image image = OpenImage(self, store);
    for (const auto& out : options.outputs)
      result.outputs.push_back(ExportImage(image, out, store));
  }
  return result;
}

}  // namespace kiln

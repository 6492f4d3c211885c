#include "build/build.h"

#include <algorithm>
#include <set>

#include "build/record.h"
#include "compress/layer_encoder.h"
#include "core/strings.h"
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
                       const std::vector<LayerPlan>& plans) {
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
  for (const auto& plan : plans) {
    for (const auto& [src, sha] : plan.inputs)
      r.inputs.push_back({"tarball:" + src, sha});
    for (const auto& p : plan.packages)
      r.packages.push_back({p.name, p.version, p.architecture, p.sha256,
                            p.license, p.source, p.download});
  }
  for (const auto& l : result.layers)
    r.layers.push_back({l.name, l.blob.digest, l.diff_id, l.from_base});
  return r;
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

  // 1. The base, and the tree its layers make.
  std::string pinned;  // a registry base's resolved digest
  std::optional<Image> base = OpenBase(t, store, options, observer, &pinned);
  if (base && pinned.empty()) pinned = base->descriptor.digest.ToString();
  Tree lower;
  if (base) {
    FlattenOptions f;
    f.capture = kAccountPaths;
    lower = WithContext("reading base " + base->display,
                        [&] { return Flatten(*base, f); });
  }

  // 2. Debian packages, as kiln.lock pins them, become the lowest layers.
  if (!t.packages.empty()) {
    auto http = NewCurlTransport(options.registry.tls);
    std::string cache = store.path() + "/kiln/cache";
    LockFile lock = LockFor(t, options, *http, cache + "/apt", observer);
    std::vector<LayerSpec> layers =
        PackageLayers(t.packages, lock, *http, cache + "/debs", 4);
    t.layers.insert(t.layers.begin(), layers.begin(), layers.end());
  }

  // 3. Plan every layer: all checks happen here, nothing is written yet.
  std::unique_ptr<ContextFs> fs = NewHostFs();
  auto spool = Spool::Create(store.tmp_dir());
  std::vector<LayerPlan> plans;
  for (const auto& spec : t.layers) {
    OwnerResolver owners(AccountFiles::FromTree(lower), t.accounts);
    PlanInputs in{fs.get(), &lower, &owners, spool};
    LayerPlan plan = PlanLayer(spec, in);
    if (plan.entries.empty())
      throw ErrorAt(spec.locs.entry,
                    "layer " + Quote(spec.name) + " adds nothing");
    lower.ApplyLayer(plan.entries);
    plans.push_back(std::move(plan));
  }
  if (!t.accounts.empty()) {
    AccountsOutput accounts =
        MergeAccounts(AccountFiles::FromTree(lower), t.accounts);
    LayerSpec spec = AccountsLayerSpec(accounts, lower);
    OwnerResolver owners(AccountFiles{}, AccountsSpec{});
    PlanInputs in{fs.get(), &lower, &owners, spool};
    LayerPlan plan = PlanLayer(spec, in);
    lower.ApplyLayer(plan.entries);
    plans.push_back(std::move(plan));
  }
  std::vector<std::string> scripted;
  for (const auto& plan : plans) {
    for (const auto& p : plan.packages) {
      if (!p.scripts.empty()) scripted.push_back(p.name);
    }
  }
  if (!scripted.empty() && observer) {
    observer->Warning((scripted.size() == 1 ? std::string("1 package has")
                                            : std::to_string(scripted.size()) +
                                                  " packages have") +
                      " maintainer scripts, which kiln does not run: " +
                      Join(scripted, ", "));
  }
  if (plans.empty() && !base)
    throw ErrorAt(
        t.locs.entry,
        "the template has no layers and no base: the image would be empty");

  // 3. Write the layers.
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
  for (size_t i = 0; i < plans.size(); ++i) {
    const LayerPlan& plan = plans[i];
    if (observer)
      observer->LayerStarted(i, plans.size(), plan.name, plan.entries.size(),
                             plan.content_bytes);
    LayerResult r = WithContext("writing layer " + Quote(plan.name), [&] {
      return WriteLayer(plan, i, options, compression, store, observer);
    });
    if (observer) observer->LayerFinished(i, r);
    manifest.layers.push_back(r.blob);
    config.diff_ids.push_back(r.diff_id);
    config.history.push_back({created, "kiln: layer " + plan.name, "", false});
    result.layers.push_back(std::move(r));
  }

  // 4. Config and manifest.
  config.created = created;
  config.os = t.platform.os;
  config.architecture = t.platform.architecture;
  config.variant = t.platform.variant;
  config.config = MergeConfig(config.config, t.config);
  std::string config_json = CanonicalJson(config.ToJson());
  manifest.config = store.layout().PutBlob(config_json, media::kConfig);
  result.config_digest = manifest.config.digest;
  manifest.annotations = t.annotations;
  manifest.annotations[annotation::kVersion] = t.version;
  manifest.annotations[annotation::kCreated] = created;
  manifest.annotations[annotation::kTitle] = t.name;
  if (base) {
    manifest.annotations[annotation::kBaseDigest] = pinned;
    manifest.annotations[annotation::kBaseName] =
        t.base;  // as written: no host paths
  }
  result.manifest = store.layout().PutBlob(CanonicalJson(manifest.ToJson()),
                                           media::kManifest);
  result.manifest.platform = t.platform;

  // 5. Name it, then write the copies.
  // Publishing hints and the build record live on the store's entry, not in
  // the image.
  Descriptor entry = result.manifest;
  if (!t.publish_tags.empty())
    entry.annotations[kPublishTagsAnnotation] = Join(t.publish_tags, ",");
  BuildRecord record = MakeRecord(t, options, compression, result, plans);
  entry.annotations[kBuildRecordAnnotation] =
      store.layout()
          .PutBlob(record.ToJson(), kBuildRecordMediaType)
          .digest.ToString();
  result.tag_moved = store.Tag(result.reference, entry, options.replace);
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

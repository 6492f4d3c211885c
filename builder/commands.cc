#include "commands.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "build/build.h"
#include "cache/gc.h"
#include "cache/remote_cache.h"
#include "core/fs.h"
#include "core/strings.h"
#include "disk/artifact.h"
#include "image/compare.h"
#include "image/export.h"
#include "image/inspect.h"
#include "progress.h"
#include "report.h"
#include "store/store.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

Store OpenStore(const Globals& g) {
  return Store::Open(g.store.empty() ? Store::DefaultPath() : g.store);
}

// Invalid UTF-8 (a file name from a foreign layer) is shown replaced, not
// fatal.
void PrintJson(const json& j) {
  std::printf("%s\n",
              j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
}

std::string ModeString(const Entry& e) {
  char type = '-';
  switch (e.type) {
    case EntryType::kDir:
      type = 'd';
      break;
    case EntryType::kSymlink:
      type = 'l';
      break;
    case EntryType::kHardlink:
      type = 'h';
      break;
    case EntryType::kChar:
      type = 'c';
      break;
    case EntryType::kBlock:
      type = 'b';
      break;
    case EntryType::kFifo:
      type = 'p';
      break;
    case EntryType::kFile:
      break;
  }
  std::string s(1, type);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (e.mode & (0400 >> i)) ? rwx[i] : '-';
  if (e.mode & 04000) s[3] = (e.mode & 0100) ? 's' : 'S';
  if (e.mode & 02000) s[6] = (e.mode & 0010) ? 's' : 'S';
  if (e.mode & 01000) s[9] = (e.mode & 0001) ? 't' : 'T';
  return s;
}

std::string OctalMode(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

// Where stock templates are: $KILN_TEMPLATE_PATH, then beside the binary
// (installed: ../share/kiln/templates; a source build: ../templates).
std::vector<std::string> TemplatePath() {
  std::vector<std::string> dirs;
  if (const char* p = std::getenv("KILN_TEMPLATE_PATH"); p && *p) {
    for (auto& d : Split(p, ':')) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    std::string bin = Dirname(exe);
    for (const char* rel : {"/../share/kiln/templates", "/../templates"}) {
      if (PathExists(bin + rel)) dirs.push_back(AbsolutePath(bin + rel));
    }
  }
  if (PathExists(KILN_SOURCE_TEMPLATES))
    dirs.push_back(AbsolutePath(KILN_SOURCE_TEMPLATES));
  std::vector<std::string> unique;
  for (const auto& d : dirs) {
    if (std::find(unique.begin(), unique.end(), d) == unique.end())
      unique.push_back(d);
  }
  return unique;
}

// The largest mtime a ustar header holds (11 octal digits): year 2242.
constexpr uint64_t kMaxBuildDate = 077777777777ULL;

}  // namespace

int64_t BuildDate(const std::optional<std::string>& flag) {
  std::string text;
  std::string from;
  if (flag) {
    text = *flag;
    from = "--source-date-epoch";
  } else if (const char* env = std::getenv("SOURCE_DATE_EPOCH"); env && *env) {
    text = env;
    from = "SOURCE_DATE_EPOCH";
  } else {
    return 0;
  }
  auto v = ParseUint(text);
  if (!v) {
    throw UserError(
        from + " must be a Unix timestamp in seconds (a whole number), not " +
        Quote(text));
  }
  if (*v > kMaxBuildDate) {
    throw UserError(from + " " + text + " is after " +
                    std::to_string(kMaxBuildDate) +
                    " (2242-03-16), the last time a tar header can hold");
  }
  return static_cast<int64_t>(*v);
}

namespace {

json DiskJson(const DiskResult& d) {
  json j = json::parse(d.info.ToJson());
  j["digest"] = d.manifest.digest.ToString();
  j["blob"] = d.blob.digest.ToString();
  j["size"] = d.blob.size;
  j["cached"] = d.cached;
  return j;
}

json LayerJson(const LayerResult& l) {
  return {{"name", l.name},
          {"digest", l.blob.digest.ToString()},
          {"size", l.blob.size},
          {"mediaType", l.blob.media_type},
          {"diffId", l.diff_id.ToString()},
          {"fromBase", l.from_base},
          {"entries", l.entries},
          {"uncompressedSize", l.uncompressed_size},
          {"cached", l.cached},
          {"cacheKey", l.cache_key ? l.cache_key->ToString() : ""}};
}

}  // namespace

LoadOptions MakeLoadOptions(const BuildArgs& args) {
  LoadOptions load;
  load.path = args.template_path;
  load.context = args.context;
  load.template_path = TemplatePath();
  for (const auto& s : args.sets) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UserError("--set " + Quote(s) + ": expected KEY=VALUE");
    load.sets.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  return load;
}

namespace {

json RemoteCacheJson(const RemoteCache* from, const RemoteCache* to) {
  json j = json::object();
  if (from) {
    const auto& c = from->counts();
    j["from"] = {{"repository", from->Describe()},
                 {"hits", c.hits},
                 {"misses", c.misses},
                 {"bytesDownloaded", c.bytes_down}};
  }
  if (to) {
    const auto& c = to->counts();
    j["to"] = {{"repository", to->Describe()},
               {"pushed", c.pushed},
               {"present", c.present},
               {"bytesUploaded", c.bytes_up}};
  }
  return j;
}

}  // namespace

int RunBuild(const Globals& g, const BuildArgs& args,
             const RegistryArgs& registry) {
  BuildOptions options;
  options.load = MakeLoadOptions(args);
  options.build_date = BuildDate(args.source_date_epoch);
  if (args.compression) {
    Compression c;
    if (!ParseCompression(*args.compression, &c)) {
      throw UserError("--compression must be gzip or zstd, not " +
                      Quote(*args.compression));
    }
    options.compression = c;
  }
  options.compression_level = args.compression_level;
  if (args.jobs < 0)
    throw UserError("--jobs must be 0 (every CPU) or a positive number");
  options.threads = args.jobs;
  options.replace = args.replace;
  options.locked = args.locked;
  options.disk = !args.no_disk;
  options.registry = MakeRegistryOptions(registry);
  std::vector<Reference> outputs;
  for (const auto& o : args.outputs) outputs.push_back(ParseReference(o));
  // Signed builds write their copies after signing, so the copies carry it.
  if (args.sign_key.empty()) options.outputs = outputs;

  Store store = OpenStore(g);
  ProgressPrinter printer(ProgressPrinter::Detect(g.quiet || g.json),
                          args.explain);
  auto warn = [&](const std::string& m) { printer.Warning(m); };
  std::unique_ptr<RegistryClient> from_client, to_client;
  std::unique_ptr<RemoteCache> from, to;
  auto remote = [&](const std::string& flag, const std::string& text,
                    std::unique_ptr<RegistryClient>* client) {
    Reference ref = ParseReference(text);
    if (ref.kind != Reference::Kind::kRegistry || !ref.tag.empty() ||
        ref.digest) {
      throw UserError(flag + " " + Quote(text) +
                      ": expected docker://HOST/REPO (a repository, without "
                      "tag or digest)");
    }
    *client = std::make_unique<RegistryClient>(ref.registry, options.registry);
    return std::make_unique<RemoteCache>(**client, ref.name, store, warn);
  };
  if (!args.cache_from.empty()) {
    from = remote("--cache-from", args.cache_from, &from_client);
    options.cache_from = [&](const Digest& key, const LayerCache& local) {
      return from->Fetch(key, local);
    };
  }
  if (!args.cache_to.empty())
    to = remote("--cache-to", args.cache_to, &to_client);
  BuildResult r = Build(options, store, &printer);
  if (to) {
    WithContext("pushing layers to the remote cache " + to->Describe() +
                    " (the image is built: " + r.reference + ")",
                [&] { to->Push(r.layer_keys, LayerCache(store)); });
  }
  if (!args.sign_key.empty()) {
    SignAfterBuild(store, r.reference, args.sign_key, args.identity);
    for (const auto& out : outputs)
      r.outputs.push_back(ExportWithAttachments(store, r.reference, out));
  }
  if (g.json) {
    json layers = json::array();
    for (const auto& l : r.layers) layers.push_back(LayerJson(l));
    json j = {{"reference", r.reference},
              {"digest", r.manifest.digest.ToString()},
              {"size", r.manifest.size},
              {"config", r.config_digest.ToString()},
              {"base", r.base},
              {"layers", layers},
              {"outputs", r.outputs},
              {"store", store.path()},
              {"tagMoved", r.tag_moved},
              {"cache", RemoteCacheJson(from.get(), to.get())}};
    if (r.disk) j["disk"] = DiskJson(*r.disk);
    PrintJson(j);
    return 0;
  }
  for (const auto& o : r.outputs) std::fprintf(stderr, "wrote %s\n", o.c_str());
  if (!g.quiet && from) {
    const auto& c = from->counts();
    std::fprintf(stderr, "cache: %zu layer%s from %s (%s), %zu not there\n",
                 c.hits, c.hits == 1 ? "" : "s", from->Describe().c_str(),
                 HumanBytes(c.bytes_down).c_str(), c.misses);
  }
  if (!g.quiet && to) {
    const auto& c = to->counts();
    std::fprintf(stderr,
                 "cache: %zu layer%s pushed to %s (%s), %zu already there\n",
                 c.pushed, c.pushed == 1 ? "" : "s", to->Describe().c_str(),
                 HumanBytes(c.bytes_up).c_str(), c.present);
  }
  if (!g.quiet && r.disk) {
    const DiskInfo& d = r.disk->info;
    std::fprintf(stderr, "disk: %s %s, %s (%s file)%s\n",
                 DiskFormatName(d.format), DiskFilesystemName(d.filesystem),
                 HumanBytes(d.virtual_size).c_str(),
                 HumanBytes(static_cast<uint64_t>(r.disk->blob.size)).c_str(),
                 r.disk->cached ? ", already in the store" : "");
  }
  std::printf("%s %s\n", r.reference.c_str(),
              r.manifest.digest.ToString().c_str());
  if (r.disk) {
    std::printf("%s:%s %s\n",
                r.reference.substr(0, r.reference.rfind(':')).c_str(),
                DiskTag(r.manifest.digest).c_str(),
                r.disk->manifest.digest.ToString().c_str());
  }
  return 0;
}

int RunImages(const Globals& g) {
  Store store = OpenStore(g);
  auto images = ListImages(store);
  if (g.json) {
    json list = json::array();
    for (const auto& i : images) {
      list.push_back({{"name", i.name},
                      {"digest", i.manifest.digest.ToString()},
                      {"size", i.size},
                      {"created", i.created},
                      {"platform", i.platform},
                      {"signed", i.signed_},
                      {"mediaType", i.manifest.media_type}});
    }
    PrintJson(list);
    return 0;
  }
  std::printf("%-40s %-19s %-10s %-20s %s\n", "NAME", "DIGEST", "SIZE",
              "CREATED", "SIGNED");
  for (const auto& i : images) {
    std::printf("%-40s %-19s %-10s %-20s %s\n", i.name.c_str(),
                ("sha256:" + i.manifest.digest.Short()).c_str(),
                HumanBytes(i.size).c_str(), i.created.c_str(),
                i.signed_ ? "yes" : "-");
  }
  return 0;
}

namespace {

// Partitions sit on MiB boundaries: say so in MiB.
std::string Mebibytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB",
                static_cast<double>(bytes) / (1 << 20));
  return buf;
}

void PrintDisk(const StoredDisk& disk) {
  const DiskInfo& d = disk.info;
  std::printf("Disk:       %s\n", disk.descriptor.digest.ToString().c_str());
  std::printf("  %s, %s (%s file %s), GPT %s\n", DiskFormatName(d.format),
              Mebibytes(d.virtual_size).c_str(),
              HumanBytes(static_cast<uint64_t>(disk.blob.size)).c_str(),
              disk.blob.digest.ToString().c_str(), d.disk_guid.c_str());
  if (d.boot != DiskBoot::kNone) {
    std::printf("  boot %s: /%s (%s)\n", DiskBootName(d.boot), d.kernel.c_str(),
                d.kernel_release.c_str());
    std::printf("  cmdline %s\n", d.cmdline.c_str());
    if (!d.modules.empty())
      std::printf("  initramfs modules %s\n", Join(d.modules, " ").c_str());
  }
  std::printf("  #  %-10s %-10s %-8s %-36s %s\n", "start", "size", "fs",
              "fs uuid", "name");
  for (const auto& p : d.partitions) {
    std::printf("  %d  %-10s %-10s %-8s %-36s %s\n", p.number,
                Mebibytes(p.offset).c_str(), Mebibytes(p.size).c_str(),
                p.filesystem.c_str(),
                p.fs_uuid.empty() ? "-" : p.fs_uuid.c_str(), p.name.c_str());
  }
}

}  // namespace

int RunInspect(const Globals& g, const std::string& ref_text, bool files) {
  Store store = OpenStore(g);
  ImageInfo info = InspectImage(ParseReference(ref_text), store, files);
  const Image& image = info.image;
  if (g.json) {
    json layers = json::array();
    for (const auto& l : info.layers) {
      json j = {{"digest", l.blob.digest.ToString()},
                {"size", l.blob.size},
                {"mediaType", l.blob.media_type},
                {"diffId", l.diff_id.ToString()},
                {"createdBy", l.created_by}};
      if (files) {
        json list = json::array();
        for (const auto& e : l.files) {
          json f = {{"path", "/" + e.path},
                    {"type", EntryTypeName(e.type)},
                    {"mode", OctalMode(e.mode)},
                    {"uid", e.uid},
                    {"gid", e.gid},
                    {"size", e.size}};
          if (!e.link.empty()) f["link"] = e.link;
          list.push_back(f);
        }
        j["files"] = list;
      }
      layers.push_back(j);
    }
    json j = {{"reference", image.display},
              {"digest", image.descriptor.digest.ToString()},
              {"mediaType", image.descriptor.media_type},
              {"size", info.total_size},
              {"manifest", image.manifest.ToJson()},
              {"config", image.config.ToJson()},
              {"layers", layers}};
    if (info.disk) {
      json d = json::parse(info.disk->info.ToJson());
      d["digest"] = info.disk->descriptor.digest.ToString();
      d["blob"] = info.disk->blob.digest.ToString();
      d["size"] = info.disk->blob.size;
      d["reference"] = info.disk->ref_name;
      j["disk"] = d;
    }
    PrintJson(j);
    return 0;
  }
  const ImageConfig& c = image.config;
  std::printf("Reference:  %s\n", image.display.c_str());
  std::printf("Digest:     %s\n", image.descriptor.digest.ToString().c_str());
  std::printf("Platform:   %s/%s%s\n", c.os.c_str(), c.architecture.c_str(),
              c.variant.empty() ? "" : ("/" + c.variant).c_str());
  std::printf("Created:    %s\n", c.created.c_str());
  std::printf("Size:       %s\n", HumanBytes(info.total_size).c_str());
  std::printf(
      "Config:     %s (%s)\n", image.manifest.config.digest.ToString().c_str(),
      HumanBytes(static_cast<uint64_t>(image.manifest.config.size)).c_str());
  if (c.config.entrypoint)
    std::printf("Entrypoint: %s\n", json(*c.config.entrypoint).dump().c_str());
  if (c.config.cmd)
    std::printf("Cmd:        %s\n", json(*c.config.cmd).dump().c_str());
  if (!c.config.user.empty())
    std::printf("User:       %s\n", c.config.user.c_str());
  if (!c.config.working_dir.empty())
    std::printf("WorkingDir: %s\n", c.config.working_dir.c_str());
  for (const auto& e : c.config.env) std::printf("Env:        %s\n", e.c_str());
  for (const auto& p : c.config.exposed_ports)
    std::printf("Port:       %s\n", p.c_str());
  for (const auto& [k, v] : c.config.labels)
    std::printf("Label:      %s=%s\n", k.c_str(), v.c_str());
  for (const auto& [k, v] : image.manifest.annotations)
    std::printf("Annotation: %s=%s\n", k.c_str(), v.c_str());
  std::printf("Layers:\n");
  for (size_t i = 0; i < info.layers.size(); ++i) {
    const LayerInfo& l = info.layers[i];
    std::printf("  %zu  %s  %10s  %s\n      diff_id %s\n", i + 1,
                l.blob.digest.ToString().c_str(),
                HumanBytes(static_cast<uint64_t>(l.blob.size)).c_str(),
                l.created_by.c_str(), l.diff_id.ToString().c_str());
    for (const auto& e : l.files) {
      std::printf(
          "      %s %5u:%-5u %10llu  /%s%s\n", ModeString(e).c_str(), e.uid,
          e.gid, static_cast<unsigned long long>(e.size), e.path.c_str(),
          e.link.empty()
              ? ""
              : ((e.type == EntryType::kHardlink ? " link to /" : " -> ") +
                 e.link)
                    .c_str());
    }
  }
  if (info.disk) PrintDisk(*info.disk);
  return 0;
}

int RunDiff(const Globals& g, const std::string& a, const std::string& b,
            bool layers) {
  Store store = OpenStore(g);
  Image ia = OpenImage(ParseReference(a), store);
  Image ib = OpenImage(ParseReference(b), store);
  CompareOptions options;
  options.layers = layers;
  options.disk = layers;
  ImageComparison c = CompareImages(ia, ib, options);
  const auto& changes = c.files;
  if (g.json) {
    json list = json::array();
    for (const auto& change : changes) list.push_back(PathChangeJson(change));
    json j = {{"identical", changes.empty()}, {"changes", list}};
    if (layers) j["report"] = ComparisonJson(c, false);
    PrintJson(j);
    return 0;
  }
  if (layers) {
    PrintComparison(c, ia.display, ib.display, false);
    if (!changes.empty()) std::printf("files:\n");
  }
  for (const auto& change : changes)
    std::printf("%s\n", PathChangeLine(change).c_str());
  if (changes.empty() && !g.quiet) std::fprintf(stderr, "no differences\n");
  return 0;
}

int RunExport(const Globals& g, const std::string& ref, const std::string& dest,
              bool replace) {
  Store store = OpenStore(g);
  Reference to = ParseReference(dest);
  Image image = OpenImage(ParseReference(ref), store);  // for the summary
  std::string written = ExportWithAttachments(store, ref, to, replace);
  if (g.json) {
    PrintJson({{"source", image.display},
               {"digest", image.descriptor.digest.ToString()},
               {"destination", written}});
  } else {
    std::printf("%s\n", written.c_str());
  }
  return 0;
}

int RunFsck(const Globals& g) {
  Store store = OpenStore(g);
  FsckReport r = store.Fsck();
  if (g.json) {
    PrintJson({{"ok", r.ok()},
               {"blobsChecked", r.blobs_checked},
               {"bytesChecked", r.bytes_checked},
               {"corrupt", r.corrupt},
               {"missing", r.missing},
               {"leftovers", r.leftovers}});
  } else {
    for (const auto& c : r.corrupt) std::printf("corrupt: %s\n", c.c_str());
    for (const auto& m : r.missing) std::printf("missing: %s\n", m.c_str());
    for (const auto& l : r.leftovers)
      std::printf("leftover temp file: %s\n", l.c_str());
    std::printf("%s: %zu blobs, %s checked, %zu corrupt, %zu missing\n",
                store.path().c_str(), r.blobs_checked,
                HumanBytes(r.bytes_checked).c_str(), r.corrupt.size(),
                r.missing.size());
  }
  // A damaged store is an environment fault.
  return r.ok() ? 0 : 2;
}

int RunGc(const Globals& g, const GcArgs& args) {
  GcOptions o;
  o.keep_days = args.keep_days;
  o.dry_run = args.dry_run;
  std::optional<uint64_t> cap = ParseByteSize(args.max_cache_size);
  if (!cap) {
    throw UserError("--max-cache-size " + Quote(args.max_cache_size) +
                    ": expected a size such as 10G, 512M or 1000000");
  }
  o.max_cache_bytes = *cap;
  Store store = OpenStore(g);
  GcReport r = CollectGarbage(store, o);
  if (g.json) {
    PrintJson({{"dryRun", args.dry_run},
               {"images", r.images},
               {"blobsKept", r.blobs_kept},
               {"bytesKept", r.bytes_kept},
               {"blobsRemoved", r.blobs_removed},
               {"bytesRemoved", r.bytes_removed},
               {"cacheEntriesKept", r.cache_entries_kept},
               {"cacheEntriesRemoved", r.cache_entries_removed},
               {"cacheBytes", r.cache_bytes},
               {"maxCacheBytes", o.max_cache_bytes},
               {"filesRemoved", r.files_removed},
               {"fileBytesRemoved", r.file_bytes_removed}});
    return 0;
  }
  const char* verb = args.dry_run ? "would remove" : "removed";
  std::printf(
      "%s: %s %zu blobs (%s), %zu cache entries and %zu other files (%s)\n"
      "kept %zu blobs (%s) for %zu store entries and %zu cache entries "
      "(cache %s of %s)\n",
      store.path().c_str(), verb, r.blobs_removed,
      HumanBytes(r.bytes_removed).c_str(), r.cache_entries_removed,
      r.files_removed, HumanBytes(r.file_bytes_removed).c_str(), r.blobs_kept,
      HumanBytes(r.bytes_kept).c_str(), r.images, r.cache_entries_kept,
      HumanBytes(r.cache_bytes).c_str(), HumanBytes(o.max_cache_bytes).c_str());
  return 0;
}

}  // namespace kiln::cli

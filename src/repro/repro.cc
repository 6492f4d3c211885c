#include "repro/repro.h"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/spawn.h"
#include "core/strings.h"
#include "core/temp_dir.h"
#include "disk/artifact.h"
#include "image/export.h"
#include "image/image.h"
#include "oci/model.h"
#include "registry/transfer.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// What the builds take from the caller's environment: the tools' search
// path, where stock templates are, and how to reach registries and mirrors.
const char* const kPassedEnv[] = {
    "PATH",          "KILN_TEMPLATE_PATH", "KILN_REGISTRY_CREDS",
    "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR",
    "http_proxy",    "https_proxy",        "no_proxy",
    "all_proxy",     "HTTP_PROXY",         "HTTPS_PROXY",
    "NO_PROXY",      "ALL_PROXY",          "SSL_CERT_FILE",
    "SSL_CERT_DIR",  "CURL_CA_BUNDLE",     "KILN_RETRY_BACKOFF_MS",
};

// The second build's noise: variables other tools read and kiln must not
// (compressor and tar defaults, build flags, who and where the user is).
const char* const kNoiseEnv[] = {
    "GZIP=-9",
    "ZSTD_CLEVEL=19",
    "ZSTD_NBTHREADS=3",
    "XZ_DEFAULTS=-9e",
    "TAR_OPTIONS=--format=gnu --owner=nobody",
    "MKE2FS_CONFIG=/nonexistent",
    "MAKEFLAGS=-j7",
    "CFLAGS=-O0 -g",
    "USER=kiln-repro",
    "LOGNAME=kiln-repro",
    "SHELL=/bin/false",
    "TERM=dumb",
    "COLUMNS=41",
    "LANGUAGE=tr_TR:fr_FR",
    "KILN_REPRO_NOISE=1",
};

constexpr int64_t kFirstMtime = 981173106;    // 2001-02-03T04:05:06Z
constexpr int64_t kSecondMtime = 2145916799;  // 2037-12-31T23:59:59Z
constexpr int64_t kSecondAtime = 1234567890;  // 2009-02-13T23:31:30Z
constexpr char kSecondTz[] = "Pacific/Kiritimati";
constexpr char kSecondHostname[] = "kiln-repro-elsewhere";

std::string Clean(const std::string& path) {
  std::string p = AbsolutePath(path);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

bool Inside(const std::string& path, const std::string& folder) {
  return path == folder || folder == "/" || StartsWith(path, folder + "/");
}

std::string CommonFolder(const std::vector<std::string>& folders) {
  std::string common = folders.front();
  for (const auto& f : folders) {
    while (!Inside(f, common)) common = Dirname(common);
  }
  return common;
}

std::string Relative(const std::string& path, const std::string& folder) {
  if (path == folder) return "";
  return path.substr(folder == "/" ? 1 : folder.size() + 1);
}

// How a build's copy of the sources is made.
struct CopyStyle {
  bool reverse = false;  // created in reverse name order
  int64_t mtime = 0;
  int64_t atime = 0;
  bool private_modes = false;  // as if made under umask 077
};

struct SourceEntry {
  std::string rel;  // "" for the folder itself
  fs::file_type type;
  unsigned mode;
};

void SetTimes(const std::string& path, int64_t mtime, int64_t atime) {
  struct timespec ts[2] = {{static_cast<time_t>(atime), 0},
                           {static_cast<time_t>(mtime), 0}};
  if (::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    throw SystemError("setting the times of " + path, errno);
}

// Copies `from` to `to` entry by entry in the style's order, then gives each
// copy its mode and times. `skip`: folders not to copy (the work folder).
void CopyFolder(const std::string& from, const std::string& to,
                const CopyStyle& style, const std::set<std::string>& skip) {
  std::vector<SourceEntry> entries;
  std::error_code ec;
  auto status = fs::symlink_status(from, ec);
  if (ec) throw EnvError("reading " + from + ": " + ec.message());
  entries.push_back({"", fs::file_type::directory,
                     static_cast<unsigned>(status.permissions())});
  fs::recursive_directory_iterator it(from, ec), end;
  if (ec) throw EnvError("reading " + from + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw EnvError("reading " + from + ": " + ec.message());
    std::string path = it->path().string();
    if (skip.count(path)) {
      it.disable_recursion_pending();
      continue;
    }
    auto st = it->symlink_status();
    entries.push_back({Relative(path, from), st.type(),
                       static_cast<unsigned>(st.permissions())});
  }
  if (ec) throw EnvError("reading " + from + ": " + ec.message());
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.rel < b.rel; });
  if (style.reverse) std::reverse(entries.begin(), entries.end());
  MakeDirs(to);
  for (const auto& e : entries) {
    std::string src = e.rel.empty() ? from : from + "/" + e.rel;
    std::string dst = e.rel.empty() ? to : to + "/" + e.rel;
    MakeDirs(Dirname(dst));
    switch (e.type) {
      case fs::file_type::directory:
        fs::create_directory(dst, ec);
        break;
      case fs::file_type::regular:
        fs::copy_file(src, dst, ec);
        break;
      case fs::file_type::symlink:
        fs::create_symlink(fs::read_symlink(src, ec), dst, ec);
        break;
      case fs::file_type::fifo:
        if (::mkfifo(dst.c_str(), 0600) != 0)
          ec = std::error_code(errno, std::generic_category());
        break;
      default:
        continue;  // sockets and devices are no template's sources
    }
    if (ec) throw EnvError("copying " + src + ": " + ec.message());
  }
  for (const auto& e : entries) {
    std::string dst = e.rel.empty() ? to : to + "/" + e.rel;
    if (e.type == fs::file_type::symlink) {
      SetTimes(dst, style.mtime, style.atime);
      continue;
    }
    if (e.type != fs::file_type::directory &&
        e.type != fs::file_type::regular && e.type != fs::file_type::fifo)
      continue;
    unsigned mode = e.mode & 07777;
    if (style.private_modes) mode = (mode & ~077u) | 0600;
    if (e.type == fs::file_type::directory) mode |= 0700;
    if (::chmod(dst.c_str(), mode) != 0)
      throw SystemError("setting the mode of " + dst, errno);
    SetTimes(dst, style.mtime, style.atime);
  }
}

// Gives a folder and everything below to `uid`:`gid`.
void ChownTree(const std::string& root, uid_t uid, gid_t gid) {
  auto own = [&](const std::string& p) {
    if (::lchown(p.c_str(), uid, gid) != 0)
      throw SystemError("giving " + p + " to uid " + std::to_string(uid),
                        errno);
  };
  own(root);
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; it != end;
       it.increment(ec)) {
    if (ec) break;
    own(it->path().string());
  }
  if (ec) throw EnvError("reading " + root + ": " + ec.message());
}

// Whether users other than the owner can reach `path`: every folder above
// it searchable, the file readable (and executable).
bool OthersCanRead(const std::string& path, bool exec, std::string* blocked) {
  std::string p = Clean(path);
  std::vector<std::string> chain;
  for (std::string at = p; at != "/"; at = Dirname(at)) chain.push_back(at);
  for (const auto& at : chain) {
    struct stat st;
    if (::stat(at.c_str(), &st) != 0) {
      *blocked = at;
      return false;
    }
    mode_t need = at == p ? (S_IROTH | (exec ? S_IXOTH : 0)) : S_IXOTH;
    if (S_ISDIR(st.st_mode) && at == p) need = S_IROTH | S_IXOTH;
    if ((st.st_mode & need) != need) {
      *blocked = at;
      return false;
    }
  }
  return true;
}

std::string UserName(uid_t uid) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found)
    return found->pw_name;
  return "uid " + std::to_string(uid);
}

// The user a second build runs as when kiln is root: nobody.
std::pair<uid_t, gid_t> Nobody() {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r("nobody", &pw, buf.data(), buf.size(), &found) == 0 && found)
    return {found->pw_uid, found->pw_gid};
  return {65534, 65534};
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

// One build's conditions.
struct Conditions {
  std::string dir;      // the build's folder: store, home, tmp, copies
  std::string sources;  // where the copy plan's root is copied to
  CopyStyle copy;
  bool relative_template = false;  // run in the template's folder
  std::string tz;
  std::string locale;
  unsigned umask = 022;
  std::optional<int> cpu;
  int jobs = 0;
  std::optional<std::string> hostname;
  std::optional<std::pair<uid_t, gid_t>> user;   // run as
  std::optional<std::pair<uid_t, gid_t>> owner;  // of its folder
  bool date_from_env = false;
  bool noise = false;
};

std::map<std::string, std::string> PassedEnvironment(
    const std::vector<std::string>& environment) {
  std::map<std::string, std::string> in, out;
  for (const auto& kv : environment) {
    size_t eq = kv.find('=');
    if (eq != std::string::npos) in[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const char* name : kPassedEnv) {
    auto it = in.find(name);
    if (it != in.end()) out[name] = it->second;
  }
  if (!out.count("PATH"))
    out["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  // HOME differs in each build: the registry credentials stay where they are.
  auto home = in.find("HOME");
  if (!out.count("DOCKER_CONFIG") && home != in.end() &&
      PathExists(home->second + "/.docker"))
    out["DOCKER_CONFIG"] = home->second + "/.docker";
  return out;
}

// The template's base as a reference; nullopt for scratch, and for a base
// that is not one (the build reports it at its line).
std::optional<Reference> BaseReference(const Template& t) {
  if (t.base == "scratch") return std::nullopt;
  try {
    return ParseReference(t.base);
  } catch (const Error&) {
    return std::nullopt;
  }
}

struct Prepared {
  ReproBuild build;
  SpawnOptions spawn;
};

// Copies the sources, seeds the store with a store base, and works out the
// command line and environment of one build.
Prepared Prepare(const ReproOptions& options, const Template& t,
                 const SourceCopyPlan& plan, const Conditions& c,
                 const std::set<std::string>& skip, const Store& store,
                 const std::string& logs, const std::string& label) {
  Prepared p;
  for (const auto& folder : plan.folders) {
    std::string rel = Relative(folder, plan.root);
    CopyFolder(folder, rel.empty() ? c.sources : c.sources + "/" + rel, c.copy,
               skip);
  }
  auto moved = [&](const std::string& path) {
    std::string rel = Relative(Clean(path), plan.root);
    return rel.empty() ? c.sources : c.sources + "/" + rel;
  };
  std::string template_copy = moved(options.load.path);
  std::string home = c.dir + "/home", tmp = c.dir + "/tmp";
  MakeDirs(home);
  MakeDirs(tmp);
  p.build.store = c.dir + "/store";
  Store fresh = Store::Open(p.build.store);
  // A store base is an input like the sources: the same image in each.
  std::optional<Reference> base = BaseReference(t);
  if (base && base->kind == Reference::Kind::kStore) {
    WithContext("the base " + t.base + ", copied into each build's store", [&] {
      Image image = OpenImage(*base, store, &t.platform);
      // Named by a tag (one named by digest is found by it).
      Reference to = *base;
      to.digest.reset();
      if (to.tag.empty()) to.tag = "repro-base";
      ExportImage(image, to, fresh);
    });
  }
  if (c.owner) ChownTree(c.dir, c.owner->first, c.owner->second);

  std::vector<std::string>& argv = p.build.argv;
  argv = {options.kiln, "--store", p.build.store, "build"};
  argv.push_back(c.relative_template ? Basename(template_copy) : template_copy);
  argv.push_back("--json");
  if (!c.date_from_env) {
    argv.push_back("--source-date-epoch");
    argv.push_back(std::to_string(options.build_date));
  }
  argv.push_back("--jobs");
  argv.push_back(std::to_string(c.jobs));
  if (options.load.context) {
    argv.push_back("--context");
    argv.push_back(moved(*options.load.context));
  }
  for (const auto& [k, v] : options.load.sets) {
    argv.push_back("--set");
    argv.push_back(k + "=" + v);
  }
  if (options.locked) argv.push_back("--locked");
  for (const auto& f : options.registry_flags) argv.push_back(f);

  auto env = PassedEnvironment(options.environment);
  env["HOME"] = home;
  env["TMPDIR"] = tmp;
  env["TZ"] = c.tz;
  env["LANG"] = c.locale;
  env["LC_ALL"] = c.locale;
  if (c.date_from_env)
    env["SOURCE_DATE_EPOCH"] = std::to_string(options.build_date);
  if (c.noise) {
    for (const char* kv : kNoiseEnv) {
      std::string s = kv;
      env[s.substr(0, s.find('='))] = s.substr(s.find('=') + 1);
    }
  }
  SpawnOptions& s = p.spawn;
  s.argv = argv;
  for (const auto& [k, v] : env) s.env.push_back(k + "=" + v);
  s.cwd = c.relative_template ? Dirname(template_copy) : "/";
  s.umask = c.umask;
  s.cpu = c.cpu;
  s.hostname = c.hostname;
  if (c.user) {
    s.uid = c.user->first;
    s.gid = c.user->second;
  }
  s.stdout_path = logs + "/" + label + ".out";
  s.stderr_path = logs + "/" + label + ".err";
  return p;
}

// The image a build made, from its --json.
void ReadBuildOutput(const std::string& path, ReproBuild* b) {
  nlohmann::json j = ParseJson(ReadFile(path), "the output of " + path);
  try {
    b->reference = j.at("reference").get<std::string>();
    b->digest = Digest::Parse(j.at("digest").get<std::string>());
    if (j.contains("disk"))
      b->disk = Digest::Parse(j["disk"].at("digest").get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    throw InternalError(path + ": not a build result: " + e.what());
  }
}

// The image to compare a rebuild with; a registry image is pulled (with its
// disk image, if the registry has one) into `scratch` first.
Image OpenAgainst(const Reference& ref, const Store& store,
                  const Platform& platform, const RegistryOptions& registry,
                  const std::string& scratch,
                  std::optional<Store>* scratch_store) {
  switch (ref.kind) {
    case Reference::Kind::kStore:
    case Reference::Kind::kOciLayout:
      return OpenImage(ref, store, &platform);
    case Reference::Kind::kRegistry: {
      scratch_store->emplace(Store::Open(scratch));
      const Store& into = **scratch_store;
      PullOptions pull;
      pull.transfer.registry = registry;
      pull.platform = &platform;
      TransferResult r = Pull(into, ref, "against:image", pull);
      RegistryClient client(ref.registry, registry);
      std::string disk_tag = DiskTag(r.digest);
      if (client.ManifestDigest(ref.name, disk_tag)) {
        Reference disk = ref;
        disk.digest.reset();
        disk.tag = disk_tag;
        PullOptions disk_pull = pull;
        disk_pull.platform = nullptr;
        disk_pull.before_tag = [&](const Digest& d) {
          std::string what = disk.ToString();
          auto m = client.GetManifest(ref.name, d.ToString());
          if (!m) throw EnvError(what + ": the registry lost its manifest");
          CheckDiskManifest(Manifest::Parse(m->bytes, what), what, r.digest);
        };
        Pull(into, disk, "against:" + disk_tag, disk_pull);
      }
      return OpenImage(ParseReference("against:image"), into, &platform);
    }
    default:
      throw UserError("--against " + ref.ToString() +
                      ": expected an image in the store (NAME:TAG), "
                      "oci:DIR[:REF] or docker://HOST/REPO[:TAG|@DIGEST]");
  }
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// The two builds' conditions. What this process may not vary (the user and
// host name need root, CPUs need more than one) goes to `skipped`.
void ChooseConditions(const ReproOptions& options, const Template& t,
                      const SourceCopyPlan& plan, const std::string& work,
                      Conditions* first, Conditions* second,
                      std::vector<SkippedVariation>* skipped) {
  first->dir = work + "/1";
  first->sources = first->dir + "/src";
  first->copy = {false, kFirstMtime, kFirstMtime, false};
  first->relative_template = true;
  first->tz = "UTC";
  first->locale = "C";
  first->umask = 022;
  first->jobs = 1;
  second->dir = work + "/2";
  second->sources = second->dir + "/a/much/deeper/build/path/src";
  second->copy = {true, kSecondMtime, kSecondAtime, true};
  second->tz = kSecondTz;
  second->locale = "C.UTF-8";
  second->umask = 077;
  second->jobs = 0;
  second->date_from_env = true;
  second->noise = true;

  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) == 0 &&
      CPU_COUNT(&allowed) > 1) {
    for (int i = 0; i < CPU_SETSIZE && !first->cpu; ++i) {
      if (CPU_ISSET(i, &allowed)) first->cpu = i;
    }
  } else {
    skipped->push_back({"CPUs", "this process may use only one CPU"});
  }

  if (CanSetHostname()) {
    second->hostname = kSecondHostname;
  } else {
    skipped->push_back(
        {"hostname",
         "no permission to make a UTS namespace, which needs root"});
  }

  if (::geteuid() != 0) {
    skipped->push_back({"file owners", "only root can give files away"});
    skipped->push_back({"user", "not root"});
    return;
  }
  second->owner = Nobody();
  // Running as nobody, the build must reach what is not copied for it.
  std::vector<std::pair<std::string, bool>> needed = {
      {options.temp_parent, true}, {options.kiln, true}};
  for (const auto& source : t.sources) {
    bool copied = false;
    for (const auto& f : plan.folders) copied |= Inside(Clean(source), f);
    if (!copied) needed.push_back({source, false});
  }
  std::string why, blocked;
  if (t.disk && (t.disk->filesystem == DiskFilesystem::kErofs ||
                 t.disk->filesystem == DiskFilesystem::kSquashfs)) {
    why = std::string("kiln makes ") + DiskFilesystemName(t.disk->filesystem) +
          " disks with owners other than root only as root";
  }
  for (const auto& [path, exec] : needed) {
    if (why.empty() && !OthersCanRead(path, exec, &blocked))
      why = "nobody cannot read " + blocked;
  }
  if (why.empty()) {
    second->user = second->owner;
  } else {
    skipped->push_back({"user", why});
  }
}

// How the two builds' conditions differ, as reported. With one build (a
// rebuild to compare with an image), only `second` is given.
std::vector<Variation> Describe(const ReproOptions& options,
                                const Conditions& first,
                                const Conditions& second, bool twice) {
  std::vector<Variation> out;
  auto vary = [&](std::string name, std::string a, std::string b) {
    if (!twice) a.clear();
    out.push_back({std::move(name), std::move(a), std::move(b)});
  };
  uid_t me = ::geteuid();
  vary("build path", first.sources, second.sources);
  vary("working directory", "the template's folder", "/");
  vary("file order", "created in name order", "created in reverse name order");
  vary("file times", Rfc3339(kFirstMtime), Rfc3339(kSecondMtime));
  vary("file modes", "as in the sources", "without group and other bits");
  if (second.owner)
    vary("file owners", UserName(me), UserName(second.owner->first));
  vary("time zone", first.tz, second.tz);
  vary("locale", first.locale, second.locale);
  vary("umask", OctalMode(first.umask), OctalMode(second.umask));
  std::vector<std::string> noise;
  for (const char* kv : kNoiseEnv) {
    std::string s = kv;
    noise.push_back(s.substr(0, s.find('=')));
  }
  vary("environment", "only what kiln needs", "plus " + Join(noise, ", "));
  vary("build date from",
       "--source-date-epoch " + std::to_string(options.build_date),
       "SOURCE_DATE_EPOCH=" + std::to_string(options.build_date));
  if (first.cpu) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    ::sched_getaffinity(0, sizeof allowed, &allowed);
    vary("CPUs",
         "1 (--jobs 1, pinned to CPU " + std::to_string(*first.cpu) + ")",
         std::to_string(CPU_COUNT(&allowed)) + " (--jobs 0)");
  }
  vary("HOME", first.dir + "/home", second.dir + "/home");
  vary("TMPDIR", first.dir + "/tmp", second.dir + "/tmp");
  if (second.hostname) vary("hostname", HostName(), *second.hostname);
  if (second.user) vary("user", UserName(me), UserName(second.user->first));
  return out;
}

// Runs the builds at once, each after the next full second (so their wall
// clocks differ), and waits for all; returns how much later the last
// started than the first.
double RunBuilds(std::vector<Prepared>& builds) {
  using Clock = std::chrono::steady_clock;
  std::vector<std::thread> waiters;
  std::vector<Clock::time_point> started(builds.size());
  try {
    for (size_t i = 0; i < builds.size(); ++i) {
      if (i > 0) {
        std::this_thread::sleep_until(std::chrono::ceil<std::chrono::seconds>(
                                          std::chrono::system_clock::now()) +
                                      std::chrono::milliseconds(50));
      }
      started[i] = Clock::now();
      pid_t pid = Spawn(builds[i].spawn);
      waiters.emplace_back([&builds, &started, i, pid] {
        builds[i].build.exit_code = WaitFor(pid);
        builds[i].build.seconds = Seconds(Clock::now() - started[i]);
      });
    }
  } catch (...) {
    for (auto& w : waiters) w.join();
    throw;
  }
  for (auto& w : waiters) w.join();
  return Seconds(started.back() - started.front());
}

}  // namespace

SourceCopyPlan PlanSourceCopy(const Template& t, const LoadOptions& load) {
  std::vector<std::string> folders = {Clean(t.dir)};
  if (load.context) folders.push_back(Clean(*load.context));
  // A template extended by a relative path is read from beside the one
  // naming it, and its sources from its own folder: both are copied.
  bool copied = true;
  for (size_t i = 1; i < t.sources.size() && i < t.source_refs.size(); ++i) {
    const std::string& name = t.source_refs[i].name;
    bool slash = name.find('/') != std::string::npos;
    bool is_path = slash || EndsWith(name, ".yaml") || EndsWith(name, ".yml");
    std::string dir = Dirname(Clean(t.sources[i]));
    std::string before = Dirname(Clean(t.sources[i - 1]));
    bool relative = is_path && (slash ? name[0] != '/' : dir == before);
    copied = copied && relative;
    if (copied) folders.push_back(dir);
  }
  // A relative oci: base is read from beside the template.
  std::optional<Reference> base = BaseReference(t);
  if (base && base->kind == Reference::Kind::kOciLayout &&
      !base->path.empty() && base->path[0] != '/')
    folders.push_back(Clean(t.dir + "/" + base->path));
  std::sort(folders.begin(), folders.end());
  SourceCopyPlan plan;
  for (const auto& f : folders) {
    if (std::none_of(plan.folders.begin(), plan.folders.end(),
                     [&](const std::string& kept) { return Inside(f, kept); }))
      plan.folders.push_back(f);
  }
  plan.root = CommonFolder(plan.folders);
  return plan;
}

ReproResult Repro(const ReproOptions& options, const Store& store) {
  Template t = LoadTemplate(options.load);
  SourceCopyPlan plan = PlanSourceCopy(t, options.load);
  ReproResult result;
  bool twice = !options.against;

  // The folder every build's files go in, removed at the end unless kept.
  TempDir work(Clean(options.temp_parent), "kiln-repro-");
  if (::chmod(work.path().c_str(), 0755) != 0)  // builds may run as nobody
    throw SystemError("setting the mode of " + work.path(), errno);
  if (options.keep) {
    work.Keep();
    result.kept = work.path();
  }
  // Nothing of the work folder or the store is copied into itself.
  std::set<std::string> skip = {work.path(), Clean(store.path())};

  std::optional<Store> against_store;
  std::optional<Image> against;
  if (options.against) {
    against = OpenAgainst(*options.against, store, t.platform, options.registry,
                          work.path() + "/against", &against_store);
    result.against = options.against->ToString();
    result.against_digest = against->descriptor.digest;
    if (auto disk = FindDisk(against->layout, against->descriptor.digest))
      result.against_disk = disk->descriptor.digest;
  }

  Conditions first, second;
  ChooseConditions(options, t, plan, work.path(), &first, &second,
                   &result.skipped);
  result.varied = Describe(options, first, second, twice);

  std::string logs = work.path() + "/logs";
  MakeDirs(logs);
  std::vector<Prepared> prepared;
  if (twice)
    prepared.push_back(
        Prepare(options, t, plan, first, skip, store, logs, "1"));
  prepared.push_back(Prepare(options, t, plan, second, skip, store, logs,
                             twice ? "2" : "rebuild"));
  double later = RunBuilds(prepared);
  if (twice) {
    char text[32];
    std::snprintf(text, sizeof text, "+%.1f s", later);
    result.varied.push_back({"start time", "+0.0 s", text});
  }
  for (size_t i = 0; i < prepared.size(); ++i) {
    ReproBuild& b = prepared[i].build;
    if (b.exit_code != 0) {
      b.errors = ReadFile(prepared[i].spawn.stderr_path);
      if (!result.failed) result.failed = i;
    } else {
      ReadBuildOutput(prepared[i].spawn.stdout_path, &b);
    }
    result.builds.push_back(b);
  }
  if (result.failed) return result;

  // The verdict: the digests, and where they differ, the images compared.
  const ReproBuild& last = result.builds.back();
  auto built = [](const ReproBuild& b) {
    return OpenImage(ParseReference(b.reference), Store::Open(b.store));
  };
  if (twice) {
    const ReproBuild& b1 = result.builds.front();
    result.label_a = "build 1";
    result.label_b = "build 2";
    result.reproducible = b1.digest == last.digest && b1.disk == last.disk;
    if (!result.reproducible)
      result.comparison = CompareImages(built(b1), built(last));
  } else {
    result.label_a = result.against;
    result.label_b = "rebuild";
    // A disk is compared when both have one (a registry may hold none).
    result.reproducible = result.against_digest == last.digest &&
                          (!result.against_disk || !last.disk ||
                           *result.against_disk == *last.disk);
    if (!result.reproducible)
      result.comparison = CompareImages(*against, built(last));
  }
  return result;
}

}  // namespace kiln

#include "packages/lock.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/base64.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/process.h"
#include "core/strings.h"
#include "core/temp_dir.h"
#include "digest/digest.h"
#include "oci/model.h"
#include "packages/fetch.h"
#include "tar/tar_reader.h"

namespace kiln {

using nlohmann::json;

namespace {

constexpr char kFormat[] = "kiln-lock";

// "Sat, 04 Dec 2026 08:00:00 UTC" (Release dates are always UTC).
std::optional<int64_t> ParseRfc2822(const std::string& text) {
  struct tm tm = {};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!end) return std::nullopt;
  return static_cast<int64_t>(::timegm(&tm));
}

// The binary OpenPGP packets of an ASCII-armored keyring (RFC 4880 section 6:
// armor headers, a blank line, base64, an optional "=" checksum line), for
// each key block it holds.
std::string Dearmor(const std::string& text, const std::string& what) {
  std::string out;
  enum { kOutside, kHeaders, kBody } state = kOutside;
  std::string body;
  for (auto line : Split(text, '\n')) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
      line.pop_back();
    if (state == kOutside) {
      if (StartsWith(line, "-----BEGIN PGP PUBLIC KEY BLOCK-----"))
        state = kHeaders;
    } else if (state == kHeaders) {
      if (line.empty()) state = kBody;
    } else if (StartsWith(line, "-----END PGP PUBLIC KEY BLOCK-----")) {
      auto packets = Base64Decode(body);
      if (!packets || packets->empty())
        throw UserError("keyring " + what +
                        ": the armored key block is not "
                        "base64");
      out += *packets;
      body.clear();
      state = kOutside;
    } else if (!StartsWith(line, "=")) {
      body += line;
    }
  }
  if (out.empty() || state != kOutside)
    throw UserError("keyring " + what +
                    ": no complete armored public key block");
  return out;
}

// The signed text of InRelease, as gpgv verified it against the keyring.
std::string VerifiedRelease(const std::string& inrelease,
                            const RepositorySpec& repo,
                            const std::string& work) {
  if (!PathExists(repo.keyring)) {
    throw ErrorAt(repo.locs.At("keyring"),
                  "keyring " + repo.keyring + " does not exist");
  }
  if (!OnPath("gpgv"))
    throw EnvError("gpgv is not installed (apt-get install gpgv)");
  // apt takes ASCII-armored keyrings (.asc) too; gpgv wants them binary.
  std::string keyring = repo.keyring;
  std::string text = ReadFile(repo.keyring, 64 << 20);
  if (StartsWith(text, "-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
    keyring = work + "/keyring.gpg";
    WriteFileAtomic(keyring, Dearmor(text, repo.keyring));
  }
  std::string in = work + "/InRelease";
  WriteFileAtomic(in, inrelease);
  MakeDirs(work + "/gnupg");
  ::chmod((work + "/gnupg").c_str(), 0700);
  ProcessResult r = RunProcess({"gpgv", "--homedir", work + "/gnupg",
                                "--keyring", keyring, "--output", "-", in},
                               "", 60);
  if (r.exit_code != 0) {
    std::string why =
        r.err.empty() ? "exit " + std::to_string(r.exit_code) : r.err;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    throw UserError("repository " + repo.name + ": " + repo.url + "/dists/" +
                    repo.suite + "/InRelease is not signed by a key in " +
                    repo.keyring + ": " + why);
  }
  return r.out;
}

struct ReleaseFile {
  std::string path;
  uint64_t size;
  std::string sha256;
};

std::vector<ReleaseFile> Sums(const Paragraph& release) {
  std::vector<ReleaseFile> out;
  for (const auto& line : Split(release.Get("SHA256"), '\n')) {
    auto parts = Split(line, ' ');
    parts.erase(std::remove(parts.begin(), parts.end(), ""), parts.end());
    if (parts.size() != 3) continue;
    out.push_back({parts[2], ParseUint(parts[1]).value_or(0), parts[0]});
  }
  return out;
}

// An index file, from the cache if its digest is there, else downloaded and
// checked against the Release's size and SHA-256.
std::string FetchIndex(HttpTransport& http, const std::string& url,
                       const ReleaseFile& f, const std::string& cache_dir) {
  std::string cached = cache_dir + "/" + f.sha256;
  if (PathExists(cached) && Sha256OfFile(cached).hex() == f.sha256) {
    Touch(cached);  // kiln store gc keeps what was used lately
    return cached;
  }
  MakeDirs(cache_dir);
  std::string body;
  StringSink sink(&body);
  FetchOptions o;
  o.max_bytes = f.size;
  if (!Fetch(
          http, url, sink, [&] { body.clear(); }, o))
    throw EnvError(url + ": not found, though the Release lists it");
  if (body.size() != f.size || Sha256Of(body).hex() != f.sha256) {
    throw EnvError(url +
                   ": content does not match the SHA-256 the signed Release "
                   "gives (a mirror in the middle of an "
                   "update, or tampering)");
  }
  WriteFileAtomic(cached, body);
  return cached;
}

}  // namespace

std::string LockPathFor(const std::string& template_path) {
  std::string dir = Dirname(template_path);
  std::string base = Basename(template_path);
  size_t dot = base.rfind('.');
  std::string stem =
      dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
  return (dir == "." && template_path.find('/') == std::string::npos
              ? ""
              : dir + "/") +
         stem + ".lock";
}

std::string RequestDigest(const PackagesSpec& spec) {
  json repos = json::array();
  for (const auto& r : spec.repositories) {
    repos.push_back({{"name", r.name},
                     {"url", r.url},
                     {"suite", r.suite},
                     {"components", r.components},
                     {"architecture", r.architecture},
                     {"keyring", r.keyring_as_written}});
  }
  // The order of include and exclude does not matter.
  std::vector<std::string> include;
  for (const auto& i : spec.include)
    include.push_back(i.version.empty() ? i.name : i.name + "=" + i.version);
  std::sort(include.begin(), include.end());
  std::vector<std::string> exclude = spec.exclude;
  std::sort(exclude.begin(), exclude.end());
  std::vector<std::string> prune = spec.prune;
  std::sort(prune.begin(), prune.end());
  return Sha256Of(CanonicalJson({{"repositories", repos},
                                 {"include", include},
                                 {"exclude", exclude},
                                 {"prune", prune}}))
      .ToString();
}

std::string LockFile::ToJson() const {
  json repos = json::array();
  for (const auto& r : repositories) {
    repos.push_back({{"name", r.name},
                     {"url", r.url},
                     {"suite", r.suite},
                     {"components", r.components},
                     {"architecture", r.architecture},
                     {"release", r.release}});
  }
  json pkgs = json::array();
  for (const auto& p : packages) {
    pkgs.push_back({{"name", p.name},
                    {"version", p.version},
                    {"architecture", p.architecture},
                    {"repository", p.repository},
                    {"filename", p.filename},
                    {"size", p.size},
                    {"sha256", p.sha256},
                    {"depends", p.depends}});
  }
  json j = {{"format", kFormat},
            {"version", 1},
            {"request", request},
            {"repositories", repos},
            {"packages", pkgs}};
  if (!pruned.empty()) {
    json cut = json::array();
    for (const auto& p : pruned)
      cut.push_back({{"name", p.name}, {"by", p.by}});
    j["pruned"] = cut;
  }
  return j.dump(2) + "\n";
}

LockFile LockFile::Parse(std::string_view text, const std::string& what) {
  json j = ParseJson(text, what);
  if (!j.is_object() || j.value("format", "") != kFormat)
    throw UserError(what + " is not a kiln lock file");
  if (j.value("version", 0) != 1) {
    throw UserError(what + ": lock file version " +
                    j.value("version", json()).dump() +
                    " is not one this kiln reads (run kiln lock)");
  }
  LockFile l;
  try {
    l.request = j.at("request").get<std::string>();
    for (const auto& r : j.at("repositories")) {
      l.repositories.push_back(
          {r.at("name"), r.at("url"), r.at("suite"), r.at("architecture"),
           r.at("components").get<std::vector<std::string>>(),
           r.at("release")});
    }
    for (const auto& p : j.at("packages")) {
      l.packages.push_back({p.at("name"), p.at("version"), p.at("architecture"),
                            p.at("repository"), p.at("filename"),
                            p.at("sha256"), p.at("size").get<uint64_t>(),
                            p.value("depends", std::vector<std::string>{})});
    }
    for (const auto& p : j.value("pruned", json::array())) {
      l.pruned.push_back(
          {p.at("name"), p.at("by").get<std::vector<std::string>>()});
    }
  } catch (const json::exception& e) {
    throw UserError(what + ": malformed lock file (" + e.what() + ")");
  }
  return l;
}

LockFile::Repository LoadRepository(HttpTransport& http,
                                    const RepositorySpec& repo,
                                    const std::string& cache_dir,
                                    Universe* universe) {
  std::string base = repo.url + "/dists/" + repo.suite;
  auto inrelease = FetchText(http, base + "/InRelease", 64 << 20);
  if (!inrelease)
    throw UserError("repository " + repo.name + ": " + base +
                    "/InRelease not found (wrong url or suite?)");
  std::string text;
  {
    TempDir work(cache_dir, "work-");  // gone whether or not it verifies
    text = VerifiedRelease(*inrelease, repo, work.path());
  }
  auto paragraphs = ParseControl(text, base + "/InRelease");
  if (paragraphs.empty())
    throw UserError(base + "/InRelease has no Release fields");
  const Paragraph& release = paragraphs[0];
  if (release.Has("Valid-Until")) {
    // As apt: a Release past its Valid-Until is a stale mirror or a replay.
    std::string until = release.Get("Valid-Until");
    std::optional<int64_t> t = ParseRfc2822(until);
    if (!t) {
      throw UserError("repository " + repo.name + ": " + base +
                      "/InRelease has an unreadable Valid-Until: " + until);
    }
    if (*t < static_cast<int64_t>(::time(nullptr))) {
      throw UserError("repository " + repo.name + ": " + base +
                      "/InRelease expired at " + until +
                      " (Valid-Until): the mirror is stale, or replays an old "
                      "Release");
    }
  }
  std::vector<ReleaseFile> sums = Sums(release);
  LockFile::Repository out{repo.name,       repo.url,
                           repo.suite,      repo.architecture,
                           repo.components, Sha256Of(text).ToString()};
  for (const auto& component : repo.components) {
    size_t before = universe->size();
    // "No-Support-for-Architecture-all: Packages" says arch-all packages are
    // in each architecture's index already (Debian's archive does this).
    std::vector<std::string> arches = {repo.architecture};
    if (!release.Has("No-Support-for-Architecture-all"))
      arches.push_back("all");
    for (const std::string& arch : arches) {
      // Prefer the smallest transfer the Release lists.
      const ReleaseFile* pick = nullptr;
      for (const char* suffix : {".xz", ".gz", ""}) {
        std::string want = component + "/binary-" + arch + "/Packages" + suffix;
        for (const auto& f : sums) {
          if (f.path == want) pick = &f;
        }
        if (pick) break;
      }
      if (!pick) {
        if (arch == "all")
          continue;  // arch-all packages are in the per-arch index too
        throw UserError("repository " + repo.name + ": the Release of " +
                        repo.suite + " lists no index for " + component + "/" +
                        arch);
      }
      std::string path = FetchIndex(http, base + "/" + pick->path, *pick,
                                    cache_dir + "/indexes");
      std::string packages;
      StringSink sink(&packages);
      if (EndsWith(pick->path, "Packages")) {
        packages = ReadFile(path, uint64_t{1} << 31);
      } else {
        Decompress(path, sink, pick->path);
      }
      std::string what = repo.name + " " + pick->path;
      ForEachParagraph(packages, what, [&](Paragraph p) {
        universe->Add(p, repo.name, repo.architecture, what);
      });
    }
    if (universe->size() == before) {
      throw UserError("repository " + repo.name + ": component " + component +
                      " has no packages for " + repo.architecture);
    }
  }
  return out;
}

LockFile MakeLock(const PackagesSpec& spec, HttpTransport& http,
                  const std::string& cache_dir) {
  Universe universe;
  LockFile lock;
  lock.request = RequestDigest(spec);
  for (const auto& repo : spec.repositories) {
    lock.repositories.push_back(
        LoadRepository(http, repo, cache_dir, &universe));
  }
  std::vector<PackageRequest> include;
  for (const auto& i : spec.include) include.push_back({i.name, i.version});
  std::set<std::string> exclude(spec.exclude.begin(), spec.exclude.end());
  std::set<std::string> prune(spec.prune.begin(), spec.prune.end());
  Resolution r = Resolve(universe, include, exclude, prune);
  for (const auto& [name, by] : r.pruned)
    lock.pruned.push_back({name, {by.begin(), by.end()}});
  for (const auto* p : r.packages) {
    lock.packages.push_back({p->name, p->version, p->architecture,
                             p->repository, p->filename, p->sha256, p->size,
                             r.depends[p->name]});
  }
  return lock;
}

}  // namespace kiln

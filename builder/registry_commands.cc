// push, pull, promote, rollback, history: the registry side of the front end.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "commands.h"
#include "core/strings.h"
#include "disk/artifact.h"
#include "image/image.h"
#include "registry/channels.h"
#include "registry/transfer.h"
#include "store/store.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Each distinct warning once per run, however many clients meet the same host.
void Warn(const std::string& message) {
  static std::mutex mu;
  static std::set<std::string> said;
  std::lock_guard<std::mutex> lock(mu);
  if (said.insert(message).second)
    std::fprintf(stderr, "kiln: warning: %s\n", message.c_str());
}

}  // namespace

RegistryOptions MakeRegistryOptions(const RegistryArgs& a) {
  RegistryOptions o;
  std::string creds = !a.creds.empty() ? a.creds : Env("KILN_REGISTRY_CREDS");
  if (!creds.empty()) {
    size_t colon = creds.find(':');
    if (colon == std::string::npos || colon == 0) {
      throw UserError(
          std::string(a.creds.empty() ? "KILN_REGISTRY_CREDS" : "--creds") +
          " must be USER:PASSWORD");
    }
    o.credentials.explicit_creds =
        Credentials{creds.substr(0, colon), creds.substr(colon + 1)};
  }
  o.credentials.home = Env("HOME");
  o.credentials.docker_config_dir = Env("DOCKER_CONFIG");
  o.credentials.auth_file = Env("REGISTRY_AUTH_FILE");
  o.credentials.runtime_dir = Env("XDG_RUNTIME_DIR");
  o.insecure = a.insecure;
  o.tls.ca_file = a.ca_file;
  if (!a.ca_file.empty() && ::access(a.ca_file.c_str(), R_OK) != 0)
    throw UserError("--ca-file " + a.ca_file + ": cannot read it");
  o.warn = Warn;
  // Tests shorten the backoff; users keep the default.
  if (auto ms = ParseUint(Env("KILN_RETRY_BACKOFF_MS")))
    o.backoff_ms = static_cast<int>(*ms);
  return o;
}

namespace {

Reference RegistryRef(const std::string& text) {
  Reference r = ParseReference(text);
  if (r.kind != Reference::Kind::kRegistry)
    throw UserError(text +
                    ": expected docker://HOST[:PORT]/REPO[:TAG|@DIGEST]");
  return r;
}

// One live line for all blobs on a terminal; a line per blob otherwise.
class TransferPrinter : public TransferObserver {
 public:
  TransferPrinter(const char* verb, bool quiet)
      : verb_(verb),
        live_(!quiet && isatty(STDERR_FILENO) && Env("CI").empty()),
        quiet_(quiet) {}
  void Planned(size_t blobs, uint64_t bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    blobs_ = blobs;
    total_ = bytes;
    start_ = std::chrono::steady_clock::now();
  }
  void BlobProgress(const Digest& digest, uint64_t done,
                    uint64_t size) override {
    if (!live_) return;
    std::lock_guard<std::mutex> lock(mu_);
    progress_[digest.hex()] = done;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    Show();
  }
  void BlobDone(const Digest& digest, uint64_t size,
                const std::string& how) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++done_;
    progress_.erase(digest.hex());
    finished_bytes_ += size;
    if (quiet_) return;
    if (live_) {
      Show();
      return;
    }
    std::fprintf(stderr, "%s %s %s (%s)\n", verb_,
                 digest.ToString().substr(0, 19).c_str(), how.c_str(),
                 HumanBytes(size).c_str());
  }
  void End() {
    if (live_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  void Show() {
    uint64_t bytes = finished_bytes_;
    for (const auto& [d, n] : progress_) bytes += n;
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
            .count();
    std::fprintf(
        stderr, "\r\033[K%s: %zu/%zu blobs, %s of %s, %s/s", verb_, done_,
        blobs_, HumanBytes(bytes).c_str(), HumanBytes(total_).c_str(),
        HumanBytes(s > 0.01 ? static_cast<uint64_t>(bytes / s) : 0).c_str());
    std::fflush(stderr);
  }
  const char* verb_;
  bool live_, quiet_;
  std::mutex mu_;
  size_t blobs_ = 0, done_ = 0;
  uint64_t total_ = 0, finished_bytes_ = 0;
  std::map<std::string, uint64_t> progress_;
  std::chrono::steady_clock::time_point start_, last_;
};

json ResultJson(const TransferResult& r) {
  return {{"source", r.source},
          {"destination", r.destination},
          {"digest", r.digest.ToString()},
          {"tags", r.tags},
          {"blobs", r.blobs},
          {"transferred", r.transferred},
          {"skipped", r.skipped},
          {"mounted", r.mounted},
          {"bytes", r.bytes},
          {"requests", r.requests},
          {"retries", r.retries},
          {"unchanged", r.unchanged}};
}

MoveContext Context() {
  MoveContext c;
  c.now = static_cast<int64_t>(std::time(nullptr));
  for (const char* v : {"KILN_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN",
                        "BUILDKITE_BUILD_CREATOR", "CIRCLE_USERNAME", "USER"}) {
    if (!Env(v).empty()) {
      c.actor = Env(v);
      break;
    }
  }
  if (!Env("GITHUB_RUN_ID").empty()) {
    c.ci = Env("GITHUB_SERVER_URL") + "/" + Env("GITHUB_REPOSITORY") +
           "/actions/runs/" + Env("GITHUB_RUN_ID");
  } else {
    for (const char* v : {"CI_JOB_URL", "BUILDKITE_BUILD_URL", "BUILD_URL",
                          "CIRCLE_BUILD_URL"}) {
      if (!Env(v).empty()) {
        c.ci = Env(v);
        break;
      }
    }
  }
  return c;
}

json MoveJson(const ChannelMove& m) {
  return {{"id", m.id},           {"action", m.action},
          {"digest", m.digest},   {"from", m.from},
          {"version", m.version}, {"time", m.time},
          {"actor", m.actor},     {"ci", m.ci}};
}

int PrintMove(const Globals& g, const std::string& channel,
              const ChannelMove& m) {
  if (g.json) {
    std::printf("%s\n", MoveJson(m).dump(2).c_str());
  } else {
    std::printf("%s: %s -> %s%s\n", channel.c_str(),
                m.from.empty() ? "(none)" : m.from.c_str(), m.digest.c_str(),
                m.version.empty() ? "" : (" (" + m.version + ")").c_str());
  }
  return 0;
}

}  // namespace

int RunPush(const Globals& g, const RegistryArgs& r, const std::string& ref,
            const std::string& dest, const std::vector<std::string>& also_tags,
            const std::string& sign_key) {
  Store store = Store::Open(g.store.empty() ? Store::DefaultPath() : g.store);
  PushOptions o;
  o.transfer.registry = MakeRegistryOptions(r);
  o.transfer.jobs = r.jobs;
  TransferPrinter printer("push", g.quiet || g.json);
  o.transfer.observer = &printer;
  o.also_tags = also_tags;
  Reference to = RegistryRef(dest);
  Reference source = ParseReference(ref);
  TransferResult result = Push(store, source, to, o);
  // The disk image made from it goes beside it, under sha256-<hex>.disk.
  std::optional<TransferResult> disk;
  Located at = Locate(source, store);
  if (FindDisk(at.layout, result.digest)) {
    Reference disk_source = source;
    disk_source.digest.reset();
    disk_source.tag = DiskTag(result.digest);
    if (source.kind == Reference::Kind::kStore) disk_source.name = at.name;
    Reference disk_dest = to;
    disk_dest.digest.reset();
    disk_dest.tag = DiskTag(result.digest);
    PushOptions disk_options = o;
    disk_options.also_tags.clear();
    disk = Push(store, disk_source, disk_dest, disk_options);
  }
  printer.End();
  // Signatures and attestations travel with the image; --sign signs it for
  // where it now is.
  RegistryClient client(to.registry, o.transfer.registry);
  std::vector<std::string> attached =
      CarryAttachments(store, ref, client, to.name, result.digest);
  if (!sign_key.empty()) {
    SignResult signed_result =
        SignInRegistry(store, client, to.name, result.digest, sign_key);
    if (std::find(attached.begin(), attached.end(),
                  signed_result.signature_tag) == attached.end()) {
      attached.push_back(signed_result.signature_tag);
    }
  }
  if (g.json) {
    json j = ResultJson(result);
    j["attachments"] = attached;
    if (disk) j["disk"] = ResultJson(*disk);
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s %s\n", result.destination.c_str(),
                result.digest.ToString().c_str());
    if (disk) {
      std::printf("%s %s\n", disk->destination.c_str(),
                  disk->digest.ToString().c_str());
    }
    if (!g.quiet) {
      std::fprintf(
          stderr,
          "%zu blobs: %zu uploaded, %zu already there, %zu mounted; %s sent\n",
          result.blobs, result.transferred, result.skipped, result.mounted,
          HumanBytes(result.bytes).c_str());
    }
  }
  return 0;
}

int RunPull(const Globals& g, const RegistryArgs& r, const std::string& src,
            const std::string& name, const std::string& verify_key) {
  Store store = Store::Open(g.store.empty() ? Store::DefaultPath() : g.store);
  Reference source = RegistryRef(src);
  std::string name_tag = name;
  if (name_tag.empty()) {
    std::string repo = StartsWith(source.name, "library/")
                           ? source.name.substr(8)
                           : source.name;
    name_tag =
        repo + ":" +
        (source.tag.empty()
             ? (source.digest ? "sha256-" + source.digest->hex().substr(0, 12)
                              : "latest")
             : source.tag);
  }
  Reference check = ParseReference(name_tag);
  if (check.kind != Reference::Kind::kStore || check.tag.empty() ||
      check.digest) {
    throw UserError(name_tag + ": name the local copy as NAME:TAG");
  }
  PullOptions o;
  o.transfer.registry = MakeRegistryOptions(r);
  o.transfer.jobs = r.jobs;
  TransferPrinter printer("pull", g.quiet || g.json);
  o.transfer.observer = &printer;
  std::unique_ptr<RegistryClient> verify_client;
  if (!verify_key.empty()) {
    // Nothing is named in the store unless it verifies.
    verify_client =
        std::make_unique<RegistryClient>(source.registry, o.transfer.registry);
    o.before_tag = [&](const Digest& digest) {
      VerifyInRegistry(*verify_client, source.name, digest, verify_key);
    };
  }
  TransferResult result = Pull(store, source, name_tag, o);
  // The image's disk image, if the registry has one beside it.
  Reference local = ParseReference(name_tag);
  RegistryClient client(source.registry, o.transfer.registry);
  std::optional<TransferResult> disk;
  if (client.ManifestDigest(source.name, DiskTag(result.digest))) {
    Reference disk_source = source;
    disk_source.digest.reset();
    disk_source.tag = DiskTag(result.digest);
    // Only a disk image made from this image is named beside it.
    PullOptions disk_options = o;
    disk_options.before_tag = [&](const Digest& d) {
      std::string what = disk_source.ToString();
      auto m = client.GetManifest(source.name, d.ToString());
      if (!m) throw EnvError(what + ": the registry lost its manifest");
      CheckDiskManifest(Manifest::Parse(m->bytes, what), what, result.digest);
      if (o.before_tag) o.before_tag(d);
    };
    disk = Pull(store, disk_source, local.name + ":" + disk_source.tag,
                disk_options);
  }
  if (verify_client) {
    auto from = RegistryAttachments(*verify_client, source.name);
    auto to = LayoutAttachments(store.layout(), local.name, true);
    CopyAttachments(*from, *to, result.digest);
    if (disk) CopyAttachments(*from, *to, disk->digest);
  }
  printer.End();
  if (g.json) {
    json j = ResultJson(result);
    if (disk) j["disk"] = ResultJson(*disk);
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s %s\n", name_tag.c_str(), result.digest.ToString().c_str());
    if (disk) {
      std::printf("%s:%s %s\n", local.name.c_str(),
                  DiskTag(result.digest).c_str(),
                  disk->digest.ToString().c_str());
    }
    if (!g.quiet) {
      std::fprintf(
          stderr,
          "%zu blobs: %zu downloaded, %zu already in the store; %s received\n",
          result.blobs, result.transferred, result.skipped,
          HumanBytes(result.bytes).c_str());
    }
  }
  return 0;
}

int RunPromote(const Globals& g, const RegistryArgs& r, const std::string& ref,
               const std::string& channel) {
  Reference target = RegistryRef(ref);
  RegistryClient client(target.registry, MakeRegistryOptions(r));
  Digest digest;
  if (target.digest) {
    digest = *target.digest;
  } else {
    if (target.tag.empty())
      throw UserError(ref +
                      ": name what to promote: REPO@sha256:… or REPO:VERSION");
    auto d = client.ManifestDigest(target.name, target.tag);
    if (!d) throw UserError(ref + ": no such image in the registry");
    digest = *d;
  }
  return PrintMove(g, channel,
                   Promote(client, target.name, digest, channel, Context()));
}

int RunRollback(const Globals& g, const RegistryArgs& r, const std::string& ref,
                const std::string& channel) {
  Reference target = RegistryRef(ref);
  RegistryClient client(target.registry, MakeRegistryOptions(r));
  return PrintMove(g, channel,
                   Rollback(client, target.name, channel, Context()));
}

int RunHistory(const Globals& g, const RegistryArgs& r, const std::string& ref,
               const std::string& channel) {
  Reference target = RegistryRef(ref);
  RegistryClient client(target.registry, MakeRegistryOptions(r));
  auto moves = ChannelHistory(client, target.name, channel);
  if (g.json) {
    json list = json::array();
    for (const auto& m : moves) list.push_back(MoveJson(m));
    std::printf("%s\n", list.dump(2).c_str());
    return 0;
  }
  std::printf("%-20s %-8s %-19s %-19s %-12s %s\n", "TIME", "ACTION", "DIGEST",
              "FROM", "VERSION", "BY");
  for (const auto& m : moves) {
    std::printf("%-20s %-8s %-19s %-19s %-12s %s%s\n", m.time.c_str(),
                m.action.c_str(), m.digest.substr(0, 19).c_str(),
                m.from.empty() ? "-" : m.from.substr(0, 19).c_str(),
                m.version.empty() ? "-" : m.version.c_str(),
                m.actor.empty() ? "-" : m.actor.c_str(),
                m.ci.empty() ? "" : ("  " + m.ci).c_str());
  }
  return 0;
}

}  // namespace kiln::cli

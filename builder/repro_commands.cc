// kiln repro: build twice (or rebuild and compare), print the proof or the
// report.
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/fs.h"
#include "core/strings.h"
#include "report.h"
#include "repro/repro.h"

extern char** environ;

namespace kiln::cli {
namespace {

using nlohmann::json;

std::string SelfPath() {
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) throw EnvError("finding the kiln binary (/proc/self/exe)");
  exe[n] = '\0';
  return exe;
}

// "build path, time zone, ...; not varied: user (not root)"
std::string VariedSummary(const ReproResult& r) {
  std::vector<std::string> names, skipped;
  for (const auto& v : r.varied) names.push_back(v.name);
  for (const auto& s : r.skipped)
    skipped.push_back(s.name + " (" + s.why + ")");
  std::string out = "varying " + Join(names, ", ");
  if (!skipped.empty()) out += "; not varied: " + Join(skipped, ", ");
  return out;
}

json BuildJson(const ReproBuild& b) {
  json j = {{"argv", b.argv},
            {"store", b.store},
            {"exitCode", b.exit_code},
            {"seconds", b.seconds}};
  if (!b.digest.empty()) {
    j["reference"] = b.reference;
    j["digest"] = b.digest.ToString();
  }
  if (b.disk) j["disk"] = b.disk->ToString();
  return j;
}

}  // namespace

int RunRepro(const Globals& g, const ReproArgs& args,
             const RegistryArgs& registry) {
  ReproOptions o;
  o.kiln = SelfPath();
  o.load = MakeLoadOptions(args.build);
  o.build_date = BuildDate(args.build.source_date_epoch);
  o.locked = args.build.locked;
  for (char** e = environ; *e; ++e) o.environment.push_back(*e);
  // The builds read credentials from the environment, not their argv.
  if (!registry.creds.empty())
    o.environment.push_back("KILN_REGISTRY_CREDS=" + registry.creds);
  if (registry.insecure) o.registry_flags.push_back("--insecure");
  if (!registry.ca_file.empty()) {
    o.registry_flags.push_back("--ca-file");
    o.registry_flags.push_back(AbsolutePath(registry.ca_file));
  }
  o.registry = MakeRegistryOptions(registry);
  if (!args.against.empty()) o.against = ParseReference(args.against);
  const char* tmp = std::getenv("TMPDIR");
  o.temp_parent = tmp && *tmp ? tmp : "/tmp";
  o.keep = args.keep;
  Store store = Store::Open(g.store.empty() ? Store::DefaultPath() : g.store);
  if (!g.quiet && !g.json) {
    std::fprintf(stderr, "kiln: repro: %s %s in %s...\n",
                 o.against ? "rebuilding" : "building",
                 args.build.template_path.c_str(),
                 o.against ? "a fresh store" : "two fresh stores");
  }
  ReproResult r = Repro(o, store);
  if (!r.kept.empty())
    std::fprintf(stderr, "kiln: repro: kept %s\n", r.kept.c_str());
  if (r.failed) {
    const ReproBuild& b = r.builds[*r.failed];
    std::string which =
        o.against ? "the rebuild"
                  : "build " + std::to_string(*r.failed + 1) + " of 2";
    std::fprintf(stderr, "kiln: repro: %s failed (exit %d):\n", which.c_str(),
                 b.exit_code);
    std::fwrite(b.errors.data(), 1, b.errors.size(), stderr);
    return b.exit_code;
  }
  const ReproBuild& last = r.builds.back();
  if (g.json) {
    json builds = json::array();
    for (const auto& b : r.builds) builds.push_back(BuildJson(b));
    json varied = json::array(), skipped = json::array();
    for (const auto& v : r.varied) {
      json j = {{"name", v.name}, {"second", v.second}};
      if (!o.against) j["first"] = v.first;
      varied.push_back(j);
    }
    for (const auto& s : r.skipped)
      skipped.push_back({{"name", s.name}, {"why", s.why}});
    json j = {{"reproducible", r.reproducible},
              {"reference", last.reference},
              {"digest", last.digest.ToString()},
              {"builds", builds},
              {"variations", varied},
              {"skipped", skipped}};
    if (last.disk) j["disk"] = last.disk->ToString();
    if (o.against) {
      j["against"] = {{"reference", r.against},
                      {"digest", r.against_digest.ToString()}};
      if (r.against_disk) j["against"]["disk"] = r.against_disk->ToString();
    }
    if (r.comparison) j["report"] = ComparisonJson(*r.comparison, true);
    if (!r.kept.empty()) j["kept"] = r.kept;
    std::printf("%s\n",
                j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return r.reproducible ? 0 : 1;
  }
  std::string disk = last.disk ? " disk " + last.disk->ToString() : "";
  if (r.reproducible) {
    if (o.against) {
      std::printf(
          "reproducible: %s %s%s matches %s (rebuilt in a fresh store, "
          "%s)\n",
          last.reference.c_str(), last.digest.ToString().c_str(), disk.c_str(),
          r.against.c_str(), VariedSummary(r).c_str());
    } else {
      std::printf(
          "reproducible: %s %s%s (built twice, each in a fresh store, "
          "%s)\n",
          last.reference.c_str(), last.digest.ToString().c_str(), disk.c_str(),
          VariedSummary(r).c_str());
    }
    return 0;
  }
  if (o.against) {
    std::printf(
        "not reproducible: %s rebuilt is %s%s; %s is %s%s\n",
        last.reference.c_str(), last.digest.ToString().c_str(), disk.c_str(),
        r.against.c_str(), r.against_digest.ToString().c_str(),
        r.against_disk ? (" disk " + r.against_disk->ToString()).c_str() : "");
  } else {
    const ReproBuild& first = r.builds.front();
    std::string disk1 = first.disk ? " disk " + first.disk->ToString() : "";
    std::printf("not reproducible: %s built twice gave %s%s and %s%s\n",
                last.reference.c_str(), first.digest.ToString().c_str(),
                disk1.c_str(), last.digest.ToString().c_str(), disk.c_str());
  }
  std::printf("(%s)\n", VariedSummary(r).c_str());
  if (r.comparison) PrintComparison(*r.comparison, r.label_a, r.label_b, true);
  return 1;
}

}  // namespace kiln::cli

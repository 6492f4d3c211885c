// kiln lock: resolve a template's Debian packages and write kiln.lock.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "commands.h"
#include "core/fs.h"
#include "core/strings.h"
#include "packages/lock.h"
#include "store/store.h"

namespace kiln::cli {

int RunLock(const Globals& g, const BuildArgs& args) {
  Store store = Store::Open(g.store.empty() ? Store::DefaultPath() : g.store);
  LoadOptions load = MakeLoadOptions(args);
  Template t = LoadTemplate(load);
  if (t.packages.empty())
    throw UserError(args.template_path +
                    ": the template has no packages to lock");
  auto http = NewCurlTransport(TlsOptions{});
  auto start = std::chrono::steady_clock::now();
  LockFile lock = MakeLock(t.packages, *http, store.path() + "/kiln/cache/apt");
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::string path = LockPathFor(args.template_path);
  WriteFileAtomic(path, lock.ToJson());
  uint64_t bytes = 0;
  for (const auto& p : lock.packages) bytes += p.size;
  nlohmann::json pruned = nlohmann::json::array();
  std::set<std::string> cut;
  for (const auto& p : lock.pruned) {
    pruned.push_back({{"name", p.name}, {"by", p.by}});
    cut.insert(p.name);
  }
  for (const auto& name : t.packages.prune) {
    if (!cut.count(name)) {
      std::fprintf(stderr,
                   "kiln: warning: packages.prune: no locked package depends "
                   "on %s\n",
                   name.c_str());
    }
  }
  if (g.json) {
    std::printf("%s\n", nlohmann::json({{"lock", path},
                                        {"packages", lock.packages.size()},
                                        {"bytes", bytes},
                                        {"request", lock.request},
                                        {"pruned", pruned},
                                        {"seconds", seconds}})
                            .dump(2)
                            .c_str());
  } else {
    size_t n = lock.packages.size(), r = lock.repositories.size();
    std::printf(
        "%s: %zu package%s, %s to download, from %zu repositor%s "
        "(%.2f s)\n",
        path.c_str(), n, n == 1 ? "" : "s", HumanBytes(bytes).c_str(), r,
        r == 1 ? "y" : "ies", seconds);
    for (const auto& p : lock.pruned) {
      std::printf("  left out (packages.prune): %s, wanted by %s\n",
                  p.name.c_str(), Join(p.by, ", ").c_str());
    }
  }
  return 0;
}

}  // namespace kiln::cli

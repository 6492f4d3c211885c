#include "packages/resolver.h"

#include <algorithm>
#include <deque>

#include "core/error.h"
#include "core/strings.h"

namespace kiln {
namespace {

int PriorityRank(const std::string& p) {
  if (p == "required") return 0;
  if (p == "important") return 1;
  if (p == "standard") return 2;
  if (p == "optional") return 3;
  return 4;
}

std::string Describe(const Alternatives& group) {
  std::vector<std::string> parts;
  for (const auto& d : group) parts.push_back(d.ToString());
  return Join(parts, " | ");
}

}  // namespace

void Universe::Add(const Paragraph& p, const std::string& repository,
                   const std::string& arch, const std::string& what) {
  const std::string& a = p.Get("Architecture");
  if (a != arch && a != "all") return;
  PackageRecord r;
  r.name = p.Get("Package");
  r.version = p.Get("Version");
  if (r.name.empty() || r.version.empty()) return;  // not a package paragraph
  r.architecture = a;
  r.repository = repository;
  r.filename = p.Get("Filename");
  r.size = ParseUint(p.Get("Size")).value_or(0);
  r.sha256 = p.Get("SHA256");
  r.priority = p.Get("Priority");
  std::string where = what + ": " + r.name + " " + r.version;
  for (const char* field : {"Pre-Depends", "Depends"}) {
    for (auto& g : ParseDependencies(p.Get(field), where))
      r.depends.push_back(std::move(g));
  }
  for (const char* field : {"Conflicts", "Breaks"}) {
    for (auto& g : ParseDependencies(p.Get(field), where))
      r.conflicts.push_back(std::move(g));
  }
  for (auto& g : ParseDependencies(p.Get("Provides"), where)) {
    for (auto& d : g) r.provides.push_back(std::move(d));
  }
  Add(std::move(r));
}

void Universe::Add(PackageRecord record) {
  // The same package from two indexes (binary-all and binary-amd64): once.
  for (const auto* v : Versions(record.name)) {
    if (v->version == record.version && v->architecture == record.architecture)
      return;
  }
  records_.push_back(std::make_unique<PackageRecord>(std::move(record)));
  const PackageRecord* r = records_.back().get();
  auto& versions = by_name_[r->name];
  // Newest first; for equal versions the first repository listed wins.
  auto pos = std::upper_bound(
      versions.begin(), versions.end(), r,
      [](const PackageRecord* a, const PackageRecord* b) {
        return CompareDebianVersions(a->version, b->version) > 0;
      });
  versions.insert(pos, r);
  for (const auto& d : r->provides) providers_[d.name].emplace_back(r, &d);
}

const std::vector<const PackageRecord*>& Universe::Versions(
    const std::string& name) const {
  static const std::vector<const PackageRecord*> kNone;
  auto it = by_name_.find(name);
  return it == by_name_.end() ? kNone : it->second;
}

const std::vector<std::pair<const PackageRecord*, const Dependency*>>&
Universe::Providers(const std::string& name) const {
  static const std::vector<std::pair<const PackageRecord*, const Dependency*>>
      kNone;
  auto it = providers_.find(name);
  return it == providers_.end() ? kNone : it->second;
}

Resolution Resolve(const Universe& u,
                   const std::vector<PackageRequest>& include,
                   const std::set<std::string>& exclude,
                   const std::set<std::string>& prune) {
  std::map<std::string, std::set<std::string>> pruned;
  std::map<std::string, const PackageRecord*> chosen;
  std::map<std::string, std::vector<std::string>> chains;  // name -> requirers
  std::deque<const PackageRecord*> queue;

  auto chain_text = [&](const std::vector<std::string>& chain) {
    return chain.empty() ? std::string("the template")
                         : "the template -> " + Join(chain, " -> ");
  };
  // A provided name satisfies an unversioned dependency, or a versioned one
  // when the Provides entry carries a version that satisfies it.
  auto provides = [](const PackageRecord* p, const Dependency& d) {
    for (const auto& pr : p->provides) {
      if (pr.name != d.name) continue;
      if (d.relation == Relation::kAny) return true;
      if (pr.relation == Relation::kEqual && d.Allows(pr.version)) return true;
    }
    return false;
  };
  // The chosen package that satisfies a group, or "".
  auto satisfied = [&](const Alternatives& group) -> std::string {
    for (const auto& d : group) {
      auto it = chosen.find(d.name);
      if (it != chosen.end() && d.Allows(it->second->version)) return it->first;
      for (const auto& [name, p] : chosen) {
        if (provides(p, d)) return name;
      }
    }
    return "";
  };
  std::map<std::string, std::set<std::string>>
      deps;  // name -> what satisfies its dependencies
  auto choose = [&](const PackageRecord* p, std::vector<std::string> chain) {
    auto [it, fresh] = chosen.emplace(p->name, p);
    if (!fresh) {
      if (it->second != p) {
        throw UserError("package " + p->name + ": " + chain_text(chain) +
                        " needs " + p->version + ", but " +
                        it->second->version + " was chosen for " +
                        chain_text(chains[p->name]));
      }
      return;
    }
    chains[p->name] = std::move(chain);
    queue.push_back(p);
  };

  for (const auto& req : include) {
    if (exclude.count(req.name))
      throw UserError("package " + req.name + " is both included and excluded");
    if (prune.count(req.name))
      throw UserError("package " + req.name + " is both included and pruned");
    const auto& versions = u.Versions(req.name);
    const PackageRecord* pick = nullptr;
    for (const auto* v : versions) {
      if (req.version.empty() || v->version == req.version) {
        pick = v;
        break;
      }
    }
    if (!pick && req.version.empty() && versions.empty()) {
      // A virtual package named directly: its providers, as for dependencies.
      const auto& providers = u.Providers(req.name);
      if (providers.size() == 1) pick = providers[0].first;
      if (providers.size() > 1) {
        std::vector<std::string> names;
        for (const auto& [p, d] : providers) names.push_back(p->name);
        throw UserError("package " + req.name + " is virtual, provided by " +
                        Join(names, ", ") + ": include one of them");
      }
    }
    if (!pick) {
      if (versions.empty())
        throw UserError("no package named " + req.name +
                        " in the repositories");
      std::vector<std::string> have;
      for (const auto* v : versions) have.push_back(v->version);
      throw UserError("package " + req.name + " has no version " + req.version +
                      " (available: " + Join(have, ", ") + ")");
    }
    choose(pick, {});
  }

  while (!queue.empty()) {
    const PackageRecord* p = queue.front();
    queue.pop_front();
    std::vector<std::string> chain = chains[p->name];
    chain.push_back(p->name);
    for (const auto& group : p->depends) {
      if (std::string by = satisfied(group); !by.empty()) {
        if (by != p->name) deps[p->name].insert(by);
        continue;
      }
      auto cut = std::find_if(group.begin(), group.end(), [&](const auto& d) {
        return prune.count(d.name) > 0;
      });
      if (cut != group.end()) {
        pruned[cut->name].insert(p->name);
        continue;
      }
      const PackageRecord* pick = nullptr;
      std::vector<std::string> reasons;
      for (const auto& d : group) {
        if (exclude.count(d.name)) {
          reasons.push_back(d.name + " is excluded");
          continue;
        }
        const auto& versions = u.Versions(d.name);
        for (const auto* v : versions) {
          if (d.Allows(v->version)) {
            pick = v;
            break;
          }
        }
        if (pick) break;
        if (!versions.empty()) {
          std::vector<std::string> have;
          for (const auto* v : versions) have.push_back(v->version);
          reasons.push_back("no version of " + d.name + " satisfies " +
                            d.ToString() + " (available: " + Join(have, ", ") +
                            ")");
        }
        // Providers, most important first, then by name: deterministic.
        std::vector<const PackageRecord*> candidates;
        for (const auto& [provider, entry] : u.Providers(d.name)) {
          if (!exclude.count(provider->name) && provides(provider, d))
            candidates.push_back(provider);
        }
        std::sort(
            candidates.begin(), candidates.end(),
            [](const PackageRecord* a, const PackageRecord* b) {
              if (PriorityRank(a->priority) != PriorityRank(b->priority)) {
                return PriorityRank(a->priority) < PriorityRank(b->priority);
              }
              if (a->name != b->name) return a->name < b->name;
              return CompareDebianVersions(a->version, b->version) > 0;
            });
        if (!candidates.empty()) {
          pick = candidates[0];
          break;
        }
        if (versions.empty())
          reasons.push_back("no package named or providing " + d.name);
      }
      if (!pick) {
        throw UserError("cannot satisfy " + Describe(group) + ", required by " +
                        chain_text(chain) + ": " + Join(reasons, "; "));
      }
      choose(pick, chain);
      if (pick->name != p->name) deps[p->name].insert(pick->name);
    }
  }

  for (const auto& [name, p] : chosen) {
    for (const auto& group : p->conflicts) {
      for (const auto& d : group) {
        for (const auto& [other_name, q] : chosen) {
          if (q == p) continue;
          bool hit = (q->name == d.name && d.Allows(q->version)) ||
                     (d.relation == Relation::kAny && provides(q, d));
          if (hit) {
            throw UserError("package " + p->name + " " + p->version +
                            " conflicts with " + q->name + " " + q->version +
                            " (" + d.ToString() + "); " + q->name +
                            " is required by " + chain_text(chains[q->name]));
          }
        }
      }
    }
  }

  Resolution r;
  r.pruned = std::move(pruned);
  for (const auto& [name, p] : chosen) {
    r.packages.push_back(p);
    r.why[name] = chain_text(chains[name]);
    r.depends[name].assign(deps[name].begin(), deps[name].end());
  }
  return r;
}

}  // namespace kiln

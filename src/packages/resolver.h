// Choosing the packages an image gets: the closure of what the template
// includes under Depends and Pre-Depends (with version constraints,
// alternatives "a | b" tried in order, virtual packages through Provides,
// architecture "all" and qualifiers), minus what it excludes, with Conflicts
// and Breaks among the chosen reported as errors. Deterministic: the same
// indexes and request give the same choice.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "packages/debian.h"

namespace kiln {

// One package of a Packages index.
struct PackageRecord {
  std::string name;
  std::string version;
  std::string architecture;
  std::string repository;  // which of the template's repositories
  std::string filename;    // pool/main/...deb, relative to the repository URL
  uint64_t size = 0;
  std::string sha256;
  std::string priority;
  std::vector<Alternatives> depends;    // Pre-Depends, then Depends
  std::vector<Alternatives> conflicts;  // Conflicts and Breaks
  std::vector<Dependency> provides;
};

// Every package of the indexes, by name.
class Universe {
 public:
  // Adds a Packages paragraph if its architecture is `arch` or "all".
  void Add(const Paragraph& p, const std::string& repository,
           const std::string& arch, const std::string& what);
  void Add(PackageRecord record);
  // The versions of a real package, newest first.
  const std::vector<const PackageRecord*>& Versions(
      const std::string& name) const;
  // Packages providing `name` (a virtual package, or another name).
  const std::vector<std::pair<const PackageRecord*, const Dependency*>>&
  Providers(const std::string& name) const;
  size_t size() const { return records_.size(); }

 private:
  std::vector<std::unique_ptr<PackageRecord>> records_;
  std::unordered_map<std::string, std::vector<const PackageRecord*>> by_name_;
  std::unordered_map<
      std::string,
      std::vector<std::pair<const PackageRecord*, const Dependency*>>>
      providers_;
};

struct PackageRequest {
  std::string name;
  std::string version;  // exact, or "" for the newest
};

struct Resolution {
  std::vector<const PackageRecord*> packages;  // sorted by name
  std::map<std::string, std::string> why;      // name -> "required by a -> b"
  std::map<std::string, std::vector<std::string>>
      depends;  // name -> chosen packages it depends on
  // Pruned dependencies left unmet -> the chosen packages that wanted them.
  std::map<std::string, std::set<std::string>> pruned;
};

// Throws UserError naming the package that cannot be had and the chain of
// packages that required it.
// `exclude`d packages are never chosen (a dependency needs another
// alternative); a dependency group naming a `prune`d package is left unmet.
Resolution Resolve(const Universe& universe,
                   const std::vector<PackageRequest>& include,
                   const std::set<std::string>& exclude,
                   const std::set<std::string>& prune = {});

}  // namespace kiln

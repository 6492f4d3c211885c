// Repositories, indexes and the lock file. `kiln lock` fetches each
// repository's InRelease, verifies it with gpgv against the template's
// keyring, checks the Packages indexes against the SHA-256 sums the verified
// Release lists, resolves the template's packages, and writes kiln.lock: every
// package with its version, architecture, repository, path, size and SHA-256,
// and the Release digest it came from. Builds then install exactly that.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "packages/resolver.h"
#include "registry/http.h"
#include "spec/template.h"

namespace kiln {

struct LockFile {
  struct Repository {
    std::string name, url, suite, architecture;
    std::vector<std::string> components;
    std::string release;  // sha256:… of the verified Release text
  };
  struct Package {
    std::string name, version, architecture, repository, filename, sha256;
    uint64_t size = 0;
    std::vector<std::string> depends;  // the locked packages it depends on
  };
  std::string request;  // sha256:… of the template's package request
  std::vector<Repository> repositories;
  std::vector<Package> packages;  // sorted by name
  struct Pruned {
    std::string name;             // a dependency left out (packages.prune)
    std::vector<std::string> by;  // the locked packages that wanted it
  };
  std::vector<Pruned> pruned;  // sorted by name

  std::string ToJson()
      const;  // stable: sorted keys, two-space indent, one package per object
  static LockFile Parse(std::string_view json, const std::string& what);
};

// The lock file of a template: "kiln.yaml" -> "kiln.lock", beside it.
std::string LockPathFor(const std::string& template_path);
// What the lock must have been made from: repositories, includes, excludes.
std::string RequestDigest(const PackagesSpec& spec);

// Fetches and verifies a repository's indexes into the universe; returns the
// repository as the lock records it. Indexes are cached in `cache_dir` by
// SHA-256.
LockFile::Repository LoadRepository(HttpTransport& http,
                                    const RepositorySpec& repo,
                                    const std::string& cache_dir,
                                    Universe* universe);

// The whole of `kiln lock`: fetch, resolve, and the lock to write.
LockFile MakeLock(const PackagesSpec& spec, HttpTransport& http,
                  const std::string& cache_dir);

}  // namespace kiln

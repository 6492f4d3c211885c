// From a lock file to layers: each locked .deb fetched into a content-addressed
// cache (verified against the lock's SHA-256; reused across builds and
// templates; several at once), then arranged into layers by the template's
// strategy, lowest dependencies first so related images share lower layers.
#pragma once

#include <string>
#include <vector>

#include "packages/lock.h"
#include "registry/http.h"
#include "spec/template.h"

namespace kiln {

// The .debs of the lock, present and verified in cache_dir; one layer spec
// per layer the strategy gives.
std::vector<LayerSpec> PackageLayers(const PackagesSpec& spec,
                                     const LockFile& lock, HttpTransport& http,
                                     const std::string& cache_dir, int jobs);

// The lock's packages, dependencies before what depends on them (ties by name).
std::vector<const LockFile::Package*> DependencyOrder(const LockFile& lock);

}  // namespace kiln

// Planning a layer: from a LayerSpec and the tree below it to the exact list
// of entries the layer's tar will hold, in tree order. All validation happens
// here, before anything is written: missing sources, tarball digests, paths
// escaping the root, two entries claiming one path, unknown owners.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rootfs/accounts.h"
#include "rootfs/context_fs.h"
#include "rootfs/entry.h"
#include "rootfs/tree.h"
#include "spec/template.h"

namespace kiln {

class Spool;

struct LayerPlan {
  std::string name;
  std::vector<Entry> entries;  // tree order; hardlinks after their target
  uint64_t content_bytes = 0;  // regular file bytes
  // Digests of the inputs that decide the layer's bytes (tarballs), for
  // provenance: "vendor/x.tar.gz" -> hex.
  std::vector<std::pair<std::string, std::string>> inputs;
  struct Package {
    std::string name, version, architecture, sha256, license;
    std::vector<std::string> scripts;  // maintainer scripts, not run
    std::string source;                // the Debian source package
    std::string download;              // where the .deb came from
  };
  std::vector<Package> packages;
};

struct PlanInputs {
  ContextFs* fs = nullptr;
  const Tree* lower = nullptr;  // the base and earlier layers
  const OwnerResolver* owners = nullptr;
  std::shared_ptr<Spool> spool;  // where tarball members are unpacked
};

LayerPlan PlanLayer(const LayerSpec& spec, const PlanInputs& in);

// The accounts layer's spec: the merged account files and home directories.
LayerSpec AccountsLayerSpec(const AccountsOutput& accounts, const Tree& lower);

}  // namespace kiln

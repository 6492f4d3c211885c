// kiln repro: shows a template is reproducible by building it twice, each in
// a fresh store (no layer cache can hide a difference), as separate kiln
// processes under different conditions — the variations reprotest makes —
// and comparing what they made; or by rebuilding it once and comparing with
// an image made before.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "digest/digest.h"
#include "image/compare.h"
#include "ref/reference.h"
#include "registry/client.h"
#include "spec/template.h"
#include "store/store.h"

namespace kiln {

struct ReproOptions {
  std::string kiln;  // the kiln binary the builds run (this one)
  LoadOptions load;  // the template, --context, --set, stock template folders
  int64_t build_date = 0;
  bool locked = false;                      // each build with --locked
  std::vector<std::string> registry_flags;  // each build's: --insecure, ...
  // The caller's environment ("NAME=VALUE"). The builds get only what kiln
  // and its tools need from it (PATH, KILN_TEMPLATE_PATH, proxies, registry
  // credentials); the rest they are given.
  std::vector<std::string> environment;
  // Rebuild once and compare with this image (a store, oci: or docker://
  // reference) instead of building twice.
  std::optional<Reference> against;
  RegistryOptions registry;  // for pulling a docker:// `against`
  std::string temp_parent;   // where the builds' folders go ($TMPDIR, /tmp)
  bool keep = false;         // leave the folders (stores, copies, logs)
};

// One condition the two builds ran under: its name and each build's value.
struct Variation {
  std::string name;  // "time zone"
  std::string first;
  std::string second;
};

// A variation this run could not make, and why ("user": "not root").
struct SkippedVariation {
  std::string name;
  std::string why;
};

struct ReproBuild {
  std::vector<std::string> argv;
  std::string store;  // its fresh store
  int exit_code = 0;
  std::string errors;  // its stderr
  double seconds = 0;
  std::string reference;       // from its build --json
  Digest digest;               // the image manifest's
  std::optional<Digest> disk;  // the disk artifact's manifest, if any
};

struct ReproResult {
  std::vector<Variation> varied;
  std::vector<SkippedVariation> skipped;
  std::vector<ReproBuild> builds;  // two; one with `against`
  // A build that failed (its exit code and stderr are in `builds`):
  // nothing was compared.
  std::optional<size_t> failed;
  // With `against`: the image compared with.
  std::string against;
  Digest against_digest;
  std::optional<Digest> against_disk;
  bool reproducible = false;
  // How the images compared are named in `comparison`: "build 1" and
  // "build 2", or the `against` reference and "rebuild".
  std::string label_a;
  std::string label_b;
  std::optional<ImageComparison> comparison;  // when not reproducible
  std::string kept;                           // the folder left with `keep`
};

ReproResult Repro(const ReproOptions& options, const Store& store);

// The plan for copying a template's sources: the folders the build reads
// (the template's, the context, relatively extended templates' and relative
// oci: bases'), none inside another, and the folder they share, whose layout
// each copy keeps so that relative paths still resolve.
struct SourceCopyPlan {
  std::string root;                  // the common folder
  std::vector<std::string> folders;  // absolute, below or at root
};
SourceCopyPlan PlanSourceCopy(const Template& t, const LoadOptions& load);

}  // namespace kiln

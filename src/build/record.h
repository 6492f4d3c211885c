// What a build was made from, kept in the store beside the image (a blob the
// store entry names in its "dev.kiln.build-record" annotation), so provenance
// and SBOMs can be derived from it later. Like the image, it holds no
// wall-clock time and no host path: the same build gives the same record.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "digest/digest.h"
#include "store/store.h"  // kBuildRecordAnnotation

namespace kiln {

inline constexpr char kBuildRecordMediaType[] =
    "application/vnd.kiln.build-record.v1+json";

struct BuildRecord {
  struct Named {
    std::string name;    // "kiln.yaml", "nonroot", "tarball:vendor/x.tar.gz"
    std::string sha256;  // hex
  };
  struct Layer {
    std::string name;
    Digest digest;   // the blob as stored
    Digest diff_id;  // the uncompressed tar
    bool from_base = false;
  };
  std::string kiln_version;
  std::string image;             // "hello:1.0.0"
  std::string version;           // the template's version
  std::vector<Named> templates;  // the template, then what it extends
  std::map<std::string, std::string> args;  // final values
  std::map<std::string, std::string> sets;  // given with --set
  int64_t build_date = 0;
  std::string platform;
  std::string compression;
  int compression_level = 0;
  std::string base;           // as written in the template; "scratch"
  std::string base_digest;    // what it resolved to
  std::vector<Named> inputs;  // tarballs
  struct Package {
    std::string name, version, architecture, sha256, license;
    std::string source;    // the Debian source package
    std::string download;  // the .deb's URL
  };
  std::vector<Package> packages;  // Debian packages installed
  std::vector<Layer> layers;

  std::string ToJson() const;  // canonical
  static BuildRecord Parse(std::string_view json, const std::string& what);
};

}  // namespace kiln

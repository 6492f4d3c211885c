// What the read-only commands show, as data: `kiln images`, `kiln inspect`
// (`kiln diff`'s is in compare.h). The front end only formats these.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "disk/artifact.h"
#include "image/image.h"

namespace kiln {

struct LayerInfo {
  Descriptor blob;
  Digest diff_id;
  std::string created_by;    // from the config's history
  std::vector<Entry> files;  // with InspectImage(..., files = true)
};

struct ImageInfo {
  Image image;
  std::vector<LayerInfo> layers;
  uint64_t total_size = 0;         // config + layers, as stored
  std::optional<StoredDisk> disk;  // the disk image made from it, if any
};

ImageInfo InspectImage(const Reference& ref, const Store& store, bool files);

struct ImageSummary {
  std::string name;  // "hello:1.0.0"
  Descriptor manifest;
  uint64_t size = 0;
  std::string created;
  std::string platform;
  bool signed_ = false;  // a sha256-<hex>.sig is in the store for it
};

std::vector<ImageSummary> ListImages(const Store& store);

}  // namespace kiln

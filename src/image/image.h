// Reading images: resolving a reference to a manifest and config in a layout
// (the store or an oci: directory), choosing the platform in an index, and
// reading layers back as entries.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "oci/model.h"
#include "ref/reference.h"
#include "rootfs/spool.h"
#include "rootfs/tree.h"
#include "store/layout.h"
#include "store/store.h"
#include "tar/tar_reader.h"

namespace kiln {

struct Image {
  std::string display;  // how messages name it: "hello:1.0.0", "oci:out:1.0.0"
  std::string name;     // repository name for defaults ("hello"); may be empty
  std::string tag;      // tag for defaults ("1.0.0"); may be empty
  Layout layout;        // where its blobs are
  Descriptor descriptor;  // the manifest's
  Manifest manifest;
  ImageConfig config;
  std::string config_bytes;
};

// Where a reference points: the layout holding it and the descriptor of its
// manifest or index (not yet resolved to a platform).
struct Located {
  std::string display;
  std::string name;  // for default names; may be empty
  std::string tag;
  Layout layout;
  Descriptor descriptor;
};
Located Locate(const Reference& ref, const Store& store);

// "IMAGE layer N (sha256:…)", for errors about an image's layer i.
std::string LayerWhat(const Image& image, size_t i);
// Layer i as a tar, its media type, presence and size checked first and its
// digest as it is read (a rotted blob is an error at the end).
std::unique_ptr<TarReader> OpenLayer(const Image& image, size_t i);

// Opens the image a reference names. From an index, picks `platform` (default:
// the only entry, else linux/amd64). Registry and archive references are not
// readable here (pull them first).
Image OpenImage(const Reference& ref, const Store& store,
                const Platform* platform = nullptr);

// One layer's entries as stored (paths normalised; whiteouts kept as entries).
std::vector<Entry> ReadLayerEntries(const Image& image, size_t layer);

struct FlattenOptions {
  std::shared_ptr<Spool>
      spool;                // keep every regular file's bytes (rootfs export)
  bool hash_files = false;  // fill Entry::sha256 (diff)
  bool sha1 = false;        // with hash_files, Entry::sha1 too (SPDX wants it)
  std::set<std::string>
      capture;  // paths whose content is kept in memory (< 16 MiB)
};

// The file system the image's layers make, whiteouts applied. Layers are
// read once each, top first, and only visible files are kept.
Tree Flatten(const Image& image, const FlattenOptions& options);

}  // namespace kiln

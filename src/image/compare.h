// Comparing two images the way a reproducibility check needs to: manifests
// and configs field by field, each pair of layers down to the first tar entry
// that differs and in which property, the flattened file systems path by
// path, and the disk images made from them. Pure data: `kiln diff --layers`
// and `kiln repro` format it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "image/diff.h"
#include "image/image.h"
#include "tar/tar_reader.h"

namespace kiln {

// One JSON field that differs: "annotations.org.opencontainers.image.created",
// "config.Env[1]", "history[2].created_by". Values are compact JSON; nullopt
// where that document lacks the field. When two documents hold the same
// fields but not the same bytes (key order, spacing), the one change is
// "(encoding)" with each document's digest.
struct FieldChange {
  std::string field;
  std::optional<std::string> a;
  std::optional<std::string> b;
};

// Two JSON documents field by field (objects by key, arrays by index),
// leaving out the fields named in `skip` ("layers", "rootfs.diff_ids").
std::vector<FieldChange> DiffJson(const nlohmann::json& a,
                                  const nlohmann::json& b,
                                  const std::set<std::string>& skip = {});

// A property of a tar entry, with its value in each archive. Properties:
// "order" (another path at this position, or one archive has ended), "type",
// "content" (sha256 and size), "mode", "owner" (uid:gid), "owner names"
// (uname:gname), "mtime", "xattrs", "pax" (atime, ctime, ACLs, file flags),
// "link" (symlink or hardlink target), "device" (major,minor), and
// "encoding": every property agrees but the header bytes do not (the values
// are the bytes from the first that differs, in hex).
struct PropertyChange {
  std::string property;
  std::string a;
  std::string b;
};

struct EntryDifference {
  size_t index = 0;    // 0-based position in both tars
  std::string path_a;  // as stored; "" where that tar has ended
  std::string path_b;
  std::vector<PropertyChange> properties;  // "order" alone if paths differ
  std::optional<uint64_t> offset;          // "encoding": the byte's offset
};

struct TarComparison {
  size_t entries_a = 0;
  size_t entries_b = 0;
  std::optional<EntryDifference> first;  // nullopt: every entry agrees
  // Entries (by path) that only one tar has or whose properties differ;
  // entries that only moved are not counted.
  size_t differing = 0;
};

// Walks two tars in step to the end of both, hashing every file's content.
TarComparison CompareTars(TarReader& a, TarReader& b);

// Two layer blobs (compressed or not): their tars compared, and when every
// entry agrees but the bytes do not, the first differing byte named.
TarComparison CompareLayerBlobs(const std::string& path_a,
                                const std::string& what_a,
                                const std::string& path_b,
                                const std::string& what_b);

struct LayerComparison {
  enum class Verdict {
    kSame,         // the same blob
    kCompression,  // the same diff_id (uncompressed tar), another blob
    kContent,      // other tars: `tar` says where
    kOnlyInA,
    kOnlyInB,
  };
  size_t index = 0;  // 0-based
  std::string name;  // from the config's history; "app" for kiln's layers
  Verdict verdict = Verdict::kSame;
  std::optional<Descriptor> a;  // the blobs
  std::optional<Descriptor> b;
  std::optional<Digest> diff_id_a;
  std::optional<Digest> diff_id_b;
  TarComparison tar;  // with kContent
};

// A stretch of a disk: a partition, or what lies outside them (the GPT).
struct DiskRegion {
  std::string name;     // "partition 2 (kiln-root-…, ext4)", "the backup GPT"
  uint64_t offset = 0;  // of the first differing byte, from the disk's start
  uint64_t offset_in_region = 0;
};

struct DiskComparison {
  std::optional<Descriptor> a;  // the disk artifacts' manifests
  std::optional<Descriptor> b;
  std::optional<Descriptor> blob_a;  // the disk files
  std::optional<Descriptor> blob_b;
  std::vector<FieldChange> info;  // format, sizes, GUIDs, partitions
  // Both raw: the regions whose bytes differ, in disk order (a qcow2 disk is
  // compared by digest only).
  bool bytes_compared = false;
  std::vector<DiskRegion> regions;
  bool same() const {
    return a && b && a->digest == b->digest && blob_a && blob_b &&
           blob_a->digest == blob_b->digest;
  }
};

struct ImageComparison {
  Digest a;  // the manifests' digests
  Digest b;
  std::vector<FieldChange> manifest;  // without the layers (below)
  std::vector<FieldChange> config;    // without rootfs.diff_ids (below)
  size_t layers_a = 0;
  size_t layers_b = 0;
  std::vector<LayerComparison> layers;  // every pair, kSame included
  std::vector<PathChange> files;        // the flattened file systems
  std::optional<DiskComparison> disk;   // when either image has a disk
  bool identical() const { return a == b && (!disk || disk->same()); }
};

struct CompareOptions {
  bool layers = true;  // manifest, config and each layer's entries
  bool files = true;   // the flattened file systems, path by path
  bool disk = true;    // the disk images made from them, if any
};

ImageComparison CompareImages(const Image& a, const Image& b,
                              const CompareOptions& options = {});

}  // namespace kiln

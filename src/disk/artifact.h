// A disk image as an OCI artifact: a manifest of artifactType
// application/vnd.kiln.disk.v1 whose one layer is the raw or qcow2 file,
// whose subject is the image it was made from, and whose annotations carry
// the format, the size the guest sees and the partitions. It lives beside the
// image under the tag sha256-<image hex>.disk, as cosign keeps signatures,
// so it travels with the image through layouts and registries.
#pragma once

#include <optional>
#include <string>

#include "disk/disk.h"
#include "oci/model.h"
#include "store/layout.h"

namespace kiln {

inline constexpr char kDiskArtifactType[] = "application/vnd.kiln.disk.v1";
// On the disk artifact: "raw" or "qcow2", the guest's size in bytes, and the
// whole DiskInfo as JSON.
inline constexpr char kDiskFormatAnnotation[] = "dev.kiln.disk.format";
inline constexpr char kDiskSizeAnnotation[] = "dev.kiln.disk.virtual-size";
inline constexpr char kDiskInfoAnnotation[] = "dev.kiln.disk";
// On the image manifest: the template's disk section, so a changed disk
// section is a changed image (and its version cannot silently move).
inline constexpr char kDiskSpecAnnotation[] = "dev.kiln.disk.spec";

std::string DiskMediaType(DiskFormat format);
std::string DiskTag(const Digest& image);  // "sha256-<hex>.disk"
// The disk section as canonical JSON (every field, defaults included).
std::string DiskSpecJson(const DiskSpec& spec);

// The artifact manifest for `blob` (the disk file as stored) made from
// `image`; `config` is the empty descriptor ({}).
Manifest DiskManifest(const Descriptor& image, const Descriptor& blob,
                      const Descriptor& config, const DiskInfo& info,
                      const std::string& created, const std::string& title);

struct StoredDisk {
  std::string ref_name;   // as the layout's index names it
  Descriptor descriptor;  // of the artifact manifest
  Manifest manifest;
  Descriptor blob;  // the disk file
  DiskInfo info;
};
// The disk artifact made from `image` in `layout`, if there is one. One
// that is not a kiln disk artifact, or whose subject is another image (a disk
// moved under this image's tag), is refused.
std::optional<StoredDisk> FindDisk(const Layout& layout, const Digest& image);
// Checks that `m` (named `what`) is a kiln disk artifact made from `image`.
void CheckDiskManifest(const Manifest& m, const std::string& what,
                       const Digest& image);

// Names the artifact in the layout: "NAME:sha256-<hex>.disk" in the store,
// "sha256-<hex>.disk" in an oci: layout (name empty), replacing what had
// the name.
void TagDisk(const Layout& layout, const std::string& name, const Digest& image,
             const Descriptor& artifact);

// Copies the disk artifact of `image` (blobs included) from one layout to
// another; false if `from` has none.
bool CopyDisk(const Layout& from, const Layout& to, const std::string& to_name,
              const Digest& image);

// Writes the disk file of `disk` to `path` as `format` (by copying, or by
// qemu-img converting), beside and renamed into place. The stored file is
// checked against its digest first.
void WriteDiskFile(const Layout& layout, const StoredDisk& disk,
                   DiskFormat format, const std::string& path,
                   const std::string& scratch_dir);

}  // namespace kiln

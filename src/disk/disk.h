// Disk images from an image's flattened tree: a GPT disk with an EFI system
// partition (systemd-boot, the image's kernel and an initramfs kiln builds)
// and a root partition in ext4, erofs or squashfs, as raw or qcow2. Every
// GUID and UUID derives from the image digest and every time is the build
// date, so one image always gives the same disk bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "digest/digest.h"
#include "rootfs/tree.h"
#include "spec/template.h"

namespace kiln {

struct DiskPartition {
  int number = 0;
  std::string name;        // the GPT partition name ("esp", "kiln-root-…")
  std::string type;        // type GUID
  std::string guid;        // partition GUID
  std::string filesystem;  // "vfat", "ext4", "erofs", "squashfs"
  std::string fs_uuid;     // what blkid shows ("ABCD-1234" for FAT)
  uint64_t offset = 0;     // bytes from the disk's start
  uint64_t size = 0;       // bytes
};

struct DiskInfo {
  DiskFormat format = DiskFormat::kRaw;
  DiskFilesystem filesystem = DiskFilesystem::kExt4;
  DiskBoot boot = DiskBoot::kSystemdBoot;
  uint64_t virtual_size = 0;  // bytes the guest sees
  std::string disk_guid;
  std::vector<DiskPartition> partitions;
  std::string kernel;                // image path, "" without a boot loader
  std::string kernel_release;        // "6.1.0-56-cloud-amd64"
  std::string cmdline;               // in full, as the boot entry has it
  std::vector<std::string> modules;  // the initramfs loads, in order
  uint64_t content_bytes = 0;        // of the tree's regular files

  // The artifact's annotations carry it; inspect and export read it back.
  std::string ToJson() const;
  static DiskInfo FromJson(const std::string& json, const std::string& what);
};

struct DiskBuildOptions {
  Digest image;      // the image manifest's digest: the GUIDs' seed
  std::string name;  // the image name, for the boot entry's title
  std::string version;
  int64_t build_date = 0;   // every time in every file system
  std::string scratch_dir;  // big temporary files (the store's tmp)
  int threads = 0;          // for the file-system tools; 0: all CPUs
};

// Checks everything the disk needs from the tree and the spec (kernel, boot
// loader, busybox, modules, the file system's support, the size) without
// writing anything large; throws UserError naming the template line.
DiskInfo PlanDisk(const DiskSpec& spec, const Tree& tree,
                  const DiskBuildOptions& options);

// Writes the disk image to `out` (a new file; removed again on failure).
// Returns what it wrote.
DiskInfo BuildDisk(const DiskSpec& spec, const Tree& tree,
                   const DiskBuildOptions& options, const std::string& out);

}  // namespace kiln

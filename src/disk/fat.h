// A FAT32 file system for the EFI system partition, written by kiln: the boot
// sector, FSInfo and their backups, two FATs, directories with long (VFAT)
// names, each file in contiguous clusters, in a fixed order and with one
// timestamp, so the bytes depend only on the files, the size and the volume
// ID. Readable by fsck.fat, mtools and every UEFI firmware.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

struct FatFile {
  std::string path;     // "EFI/BOOT/BOOTX64.EFI": '/'-separated, no leading /
  std::string content;  // ESP files are small (a kernel, an initrd)
};

struct FatOptions {
  uint64_t size_bytes = 0;    // of the partition; a multiple of 512
  uint32_t volume_id = 0;     // from the image digest
  std::string label = "ESP";  // at most 11 characters, stored upper-case
  int64_t mtime = 0;          // every entry's times (FAT keeps local time
                              // with 2-second steps; kiln writes it as UTC)
};

// The smallest partition size (bytes, a multiple of 1 MiB) that holds
// `files` as FAT32 with the cluster size FatOptions would get. FAT32 needs at
// least 65,525 clusters, so this is never below about 33 MiB.
uint64_t FatMinimumSize(const std::vector<FatFile>& files);

// Writes the file system into `fd` at byte `offset` (the partition's start),
// `options.size_bytes` long; directories are implied by the paths. Throws
// UserError naming `what` when the files do not fit or a name is invalid for
// FAT (names are kept case-preserved as long names; 8.3 short names are
// generated deterministically); SystemError on I/O. Free clusters are not
// written, so for reproducible bytes the partition must already be zero
// (a fresh sparse file); everything else in it is written.
void WriteFat32(int fd, uint64_t offset, const std::vector<FatFile>& files,
                const FatOptions& options, const std::string& what);

}  // namespace kiln

// A GUID partition table (UEFI 2.10 chapter 5): a protective MBR, the primary
// header and entry array at the start of the disk, the backup array and
// header at its end, CRC32s over both. Written by kiln, not sfdisk, so the
// bytes depend on nothing but the layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "disk/guid.h"

namespace kiln {

inline constexpr uint64_t kSectorSize = 512;
// Partitions start on 1 MiB boundaries, as every partitioning tool does.
inline constexpr uint64_t kPartitionAlign = 1 << 20;
// Sectors the primary table takes (MBR, header, 128 entries of 128 bytes)
// and the backup at the end (entries and header).
inline constexpr uint64_t kGptPrimarySectors = 34;
inline constexpr uint64_t kGptBackupSectors = 33;

namespace gpt_type {
inline constexpr char kEsp[] = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
// The Discoverable Partitions Specification's root partition for x86-64.
inline constexpr char kRootX86_64[] = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
}  // namespace gpt_type

struct GptPartition {
  Guid type;
  Guid guid;
  std::string name;    // ASCII, at most 36 characters (UTF-16LE on disk)
  uint64_t first_lba;  // inclusive
  uint64_t last_lba;   // inclusive
  uint64_t attributes = 0;
};

struct GptDisk {
  Guid disk_guid;
  uint64_t size_bytes = 0;  // a multiple of kSectorSize
  std::vector<GptPartition> partitions;
};

// Writes the protective MBR and both tables into the open file `fd` (whose
// size is already disk.size_bytes). Throws UserError if a partition is out of
// the usable range, overlaps another or has a bad name; SystemError on I/O.
void WriteGpt(int fd, const GptDisk& disk, const std::string& what);

// Reads the tables back (for inspect and tests): checks signatures and CRCs
// of the primary header and array; throws UserError naming `what` if not.
GptDisk ReadGpt(int fd, const std::string& what);

}  // namespace kiln

#include "disk/gpt.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/strings.h"

namespace kiln {
namespace {

constexpr uint32_t kEntryCount = 128;
constexpr uint32_t kEntrySize = 128;
constexpr uint64_t kArrayBytes = uint64_t{kEntryCount} * kEntrySize;
constexpr uint32_t kHeaderSize = 92;
constexpr uint32_t kRevision = 0x00010000;  // GPT 1.0
constexpr char kSignature[] = "EFI PART";
constexpr size_t kNameChars = 36;  // 72 bytes of UTF-16LE

// Header field offsets (UEFI 2.10 table 5.5).
constexpr size_t kHdrSignature = 0;
constexpr size_t kHdrRevision = 8;
constexpr size_t kHdrSize = 12;
constexpr size_t kHdrCrc = 16;
constexpr size_t kHdrMyLba = 24;
constexpr size_t kHdrAlternateLba = 32;
constexpr size_t kHdrFirstUsable = 40;
constexpr size_t kHdrLastUsable = 48;
constexpr size_t kHdrDiskGuid = 56;
constexpr size_t kHdrEntryLba = 72;
constexpr size_t kHdrEntryCount = 80;
constexpr size_t kHdrEntrySize = 84;
constexpr size_t kHdrArrayCrc = 88;

// Entry field offsets (table 5.6).
constexpr size_t kEntType = 0;
constexpr size_t kEntGuid = 16;
constexpr size_t kEntFirst = 32;
constexpr size_t kEntLast = 40;
constexpr size_t kEntAttributes = 48;
constexpr size_t kEntName = 56;

void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

uint32_t Crc32(const uint8_t* data, size_t n) {
  return static_cast<uint32_t>(
      ::crc32(::crc32(0, nullptr, 0), data, static_cast<uInt>(n)));
}

Guid GuidFromGpt(const uint8_t* p) {
  std::array<uint8_t, 16> bytes;
  std::memcpy(bytes.data(), p, bytes.size());
  return Guid::FromGptBytes(bytes);
}

void PutGuid(uint8_t* p, const Guid& g) {
  auto bytes = g.GptBytes();
  std::memcpy(p, bytes.data(), bytes.size());
}

void WriteAt(int fd, const void* data, size_t n, uint64_t offset,
             const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw SystemError("writing the partition table of " + what, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

void ReadAt(int fd, void* data, size_t n, uint64_t offset,
            const std::string& what) {
  auto* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw SystemError("reading the partition table of " + what, errno);
    }
    if (r == 0) {
      throw UserError(what + ": too small for a GPT (ends at byte " +
                      std::to_string(offset) + ")");
    }
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
}

std::string Describe(size_t index, const GptPartition& p) {
  return "partition " + std::to_string(index + 1) + " (" + Quote(p.name) + ")";
}

void Validate(const GptDisk& disk, const std::string& what) {
  if (disk.size_bytes % kSectorSize != 0) {
    throw UserError(what + ": disk size " + std::to_string(disk.size_bytes) +
                    " is not a multiple of " + std::to_string(kSectorSize));
  }
  uint64_t sectors = disk.size_bytes / kSectorSize;
  if (sectors < kGptPrimarySectors + kGptBackupSectors + 1) {
    throw UserError(what + ": disk size " + std::to_string(disk.size_bytes) +
                    " is too small for a GPT");
  }
  if (disk.partitions.size() > kEntryCount) {
    throw UserError(what + ": " + std::to_string(disk.partitions.size()) +
                    " partitions; a GPT holds at most " +
                    std::to_string(kEntryCount));
  }
  uint64_t first_usable = kGptPrimarySectors;
  uint64_t last_usable = sectors - 1 - kGptBackupSectors;
  const Guid kUnused;
  for (size_t i = 0; i < disk.partitions.size(); ++i) {
    const GptPartition& p = disk.partitions[i];
    if (p.name.size() > kNameChars) {
      throw UserError(what + ": " + Describe(i, p) + ": the name has " +
                      std::to_string(p.name.size()) +
                      " characters; GPT allows " + std::to_string(kNameChars));
    }
    for (char c : p.name) {
      if (c < 0x20 || c > 0x7e) {
        throw UserError(what + ": " + Describe(i, p) +
                        ": the name must be printable ASCII");
      }
    }
    // An all-zero type marks an unused entry: the partition would vanish.
    if (p.type == kUnused) {
      throw UserError(what + ": " + Describe(i, p) + " has no type GUID");
    }
    if (p.first_lba > p.last_lba || p.first_lba < first_usable ||
        p.last_lba > last_usable) {
      throw UserError(
          what + ": " + Describe(i, p) + " spans sectors " +
          std::to_string(p.first_lba) + "-" + std::to_string(p.last_lba) +
          ", outside the usable sectors " + std::to_string(first_usable) + "-" +
          std::to_string(last_usable));
    }
    for (size_t j = 0; j < i; ++j) {
      const GptPartition& q = disk.partitions[j];
      if (p.first_lba <= q.last_lba && q.first_lba <= p.last_lba) {
        throw UserError(what + ": " + Describe(i, p) + " (sectors " +
                        std::to_string(p.first_lba) + "-" +
                        std::to_string(p.last_lba) + ") overlaps " +
                        Describe(j, q) + " (sectors " +
                        std::to_string(q.first_lba) + "-" +
                        std::to_string(q.last_lba) + ")");
      }
      if (p.guid == q.guid && !(p.guid == kUnused)) {
        throw UserError(what + ": " + Describe(i, p) + " and " +
                        Describe(j, q) + " have the same GUID " +
                        p.guid.ToString());
      }
    }
  }
}

std::vector<uint8_t> EntryArray(const GptDisk& disk) {
  std::vector<uint8_t> array(kArrayBytes, 0);
  for (size_t i = 0; i < disk.partitions.size(); ++i) {
    const GptPartition& p = disk.partitions[i];
    uint8_t* e = array.data() + i * kEntrySize;
    PutGuid(e + kEntType, p.type);
    PutGuid(e + kEntGuid, p.guid);
    Put64(e + kEntFirst, p.first_lba);
    Put64(e + kEntLast, p.last_lba);
    Put64(e + kEntAttributes, p.attributes);
    for (size_t c = 0; c < p.name.size(); ++c) {
      e[kEntName + 2 * c] = static_cast<uint8_t>(p.name[c]);
    }
  }
  return array;
}

std::vector<uint8_t> Header(const GptDisk& disk, uint64_t my_lba,
                            uint64_t alternate_lba, uint64_t entry_lba,
                            uint32_t array_crc) {
  uint64_t sectors = disk.size_bytes / kSectorSize;
  std::vector<uint8_t> h(kSectorSize, 0);
  std::memcpy(h.data() + kHdrSignature, kSignature, 8);
  Put32(&h[kHdrRevision], kRevision);
  Put32(&h[kHdrSize], kHeaderSize);
  Put64(&h[kHdrMyLba], my_lba);
  Put64(&h[kHdrAlternateLba], alternate_lba);
  Put64(&h[kHdrFirstUsable], kGptPrimarySectors);
  Put64(&h[kHdrLastUsable], sectors - 1 - kGptBackupSectors);
  PutGuid(&h[kHdrDiskGuid], disk.disk_guid);
  Put64(&h[kHdrEntryLba], entry_lba);
  Put32(&h[kHdrEntryCount], kEntryCount);
  Put32(&h[kHdrEntrySize], kEntrySize);
  Put32(&h[kHdrArrayCrc], array_crc);
  Put32(&h[kHdrCrc], Crc32(h.data(), kHeaderSize));
  return h;
}

std::vector<uint8_t> ProtectiveMbr(uint64_t sectors) {
  std::vector<uint8_t> mbr(kSectorSize, 0);
  uint8_t* part = &mbr[446];
  part[1] = 0x00;  // CHS of LBA 1: head 0, sector 2, cylinder 0
  part[2] = 0x02;
  part[3] = 0x00;
  part[4] = 0xEE;                      // GPT protective
  part[5] = part[6] = part[7] = 0xFF;  // CHS cannot address the end
  Put32(&part[8], 1);
  Put32(&part[12],
        static_cast<uint32_t>(std::min<uint64_t>(sectors - 1, 0xFFFFFFFF)));
  mbr[510] = 0x55;
  mbr[511] = 0xAA;
  return mbr;
}

}  // namespace

void WriteGpt(int fd, const GptDisk& disk, const std::string& what) {
  Validate(disk, what);
  uint64_t sectors = disk.size_bytes / kSectorSize;
  uint64_t last_lba = sectors - 1;
  uint64_t backup_array_lba = last_lba - kGptBackupSectors + 1;
  std::vector<uint8_t> array = EntryArray(disk);
  uint32_t array_crc = Crc32(array.data(), array.size());

  std::vector<uint8_t> primary(kGptPrimarySectors * kSectorSize, 0);
  std::vector<uint8_t> mbr = ProtectiveMbr(sectors);
  std::vector<uint8_t> header = Header(disk, 1, last_lba, 2, array_crc);
  std::memcpy(primary.data(), mbr.data(), kSectorSize);
  std::memcpy(primary.data() + kSectorSize, header.data(), kSectorSize);
  std::memcpy(primary.data() + 2 * kSectorSize, array.data(), array.size());
  WriteAt(fd, primary.data(), primary.size(), 0, what);

  std::vector<uint8_t> backup(kGptBackupSectors * kSectorSize, 0);
  std::vector<uint8_t> backup_header =
      Header(disk, last_lba, 1, backup_array_lba, array_crc);
  std::memcpy(backup.data(), array.data(), array.size());
  std::memcpy(backup.data() + array.size(), backup_header.data(), kSectorSize);
  WriteAt(fd, backup.data(), backup.size(), backup_array_lba * kSectorSize,
          what);
}

GptDisk ReadGpt(int fd, const std::string& what) {
  uint8_t mbr[kSectorSize];
  ReadAt(fd, mbr, sizeof mbr, 0, what);
  if (mbr[510] != 0x55 || mbr[511] != 0xAA || mbr[446 + 4] != 0xEE) {
    throw UserError(what + ": no protective MBR (not a GPT disk)");
  }
  uint8_t h[kSectorSize];
  ReadAt(fd, h, sizeof h, kSectorSize, what);
  if (std::memcmp(h + kHdrSignature, kSignature, 8) != 0) {
    throw UserError(what + ": no GPT header at sector 1 (signature missing)");
  }
  uint32_t header_size = Get32(h + kHdrSize);
  if (header_size < kHeaderSize || header_size > kSectorSize) {
    throw UserError(what + ": GPT header size " + std::to_string(header_size) +
                    " is invalid");
  }
  uint32_t header_crc = Get32(h + kHdrCrc);
  Put32(h + kHdrCrc, 0);
  if (Crc32(h, header_size) != header_crc) {
    throw UserError(what + ": GPT header CRC mismatch (the table is damaged)");
  }
  uint32_t count = Get32(h + kHdrEntryCount);
  uint32_t entry_size = Get32(h + kHdrEntrySize);
  if (entry_size < kEntrySize || entry_size % 8 != 0 || count == 0 ||
      uint64_t{count} * entry_size > (uint64_t{1} << 20)) {
    throw UserError(what + ": GPT entry array of " + std::to_string(count) +
                    " entries of " + std::to_string(entry_size) +
                    " bytes is not supported");
  }
  std::vector<uint8_t> array(uint64_t{count} * entry_size);
  ReadAt(fd, array.data(), array.size(), Get64(h + kHdrEntryLba) * kSectorSize,
         what);
  if (Crc32(array.data(), array.size()) != Get32(h + kHdrArrayCrc)) {
    throw UserError(what +
                    ": GPT partition array CRC mismatch (the table is "
                    "damaged)");
  }

  GptDisk disk;
  disk.disk_guid = GuidFromGpt(h + kHdrDiskGuid);
  disk.size_bytes = (Get64(h + kHdrAlternateLba) + 1) * kSectorSize;
  const Guid kUnused;
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = array.data() + uint64_t{i} * entry_size;
    GptPartition p;
    p.type = GuidFromGpt(e + kEntType);
    if (p.type == kUnused) continue;
    p.guid = GuidFromGpt(e + kEntGuid);
    p.first_lba = Get64(e + kEntFirst);
    p.last_lba = Get64(e + kEntLast);
    p.attributes = Get64(e + kEntAttributes);
    for (size_t c = 0; c < kNameChars; ++c) {
      uint16_t unit = static_cast<uint16_t>(e[kEntName + 2 * c] |
                                            e[kEntName + 2 * c + 1] << 8);
      if (unit == 0) break;
      // kiln writes ASCII names; other tools' characters show as '?'.
      p.name += unit < 0x80 ? static_cast<char>(unit) : '?';
    }
    disk.partitions.push_back(std::move(p));
  }
  return disk;
}

}  // namespace kiln

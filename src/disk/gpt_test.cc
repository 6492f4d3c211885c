#include "disk/gpt.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/process.h"
#include "core/temp_dir.h"
#include "disk/guid.h"

namespace kiln {
namespace {

constexpr uint64_t kDiskSize = 64 << 20;
constexpr uint64_t kLastLba = kDiskSize / kSectorSize - 1;
constexpr uint64_t kLastUsable = kLastLba - kGptBackupSectors;

Digest Image() { return Sha256Of("an image"); }

GptDisk TwoPartitions() {
  GptDisk disk;
  disk.disk_guid = Guid::FromDigest(Image(), "disk");
  disk.size_bytes = kDiskSize;
  disk.partitions.push_back({Guid::Parse(gpt_type::kEsp),
                             Guid::FromDigest(Image(), "esp"), "esp", 2048,
                             2048 + 65536 - 1});
  disk.partitions.push_back({Guid::Parse(gpt_type::kRootX86_64),
                             Guid::FromDigest(Image(), "root"), "root-x86-64",
                             2048 + 65536, kLastUsable, uint64_t{1} << 59});
  return disk;
}

// A sparse disk file of `size` bytes.
UniqueFd MakeDisk(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (!fd.valid()) throw SystemError("creating " + path, errno);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    throw SystemError("sizing " + path, errno);
  return fd;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Sfdisk() {
  for (const char* p : {"/usr/sbin/sfdisk", "/sbin/sfdisk"})
    if (::access(p, X_OK) == 0) return p;
  return OnPath("sfdisk") ? "sfdisk" : "";
}

void ExpectUserError(const std::function<void()>& fn,
                     const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser) << e.message();
    EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
  }
}

TEST(Guid, FromDigestIsStableAndVersion4) {
  Guid a = Guid::FromDigest(Image(), "esp");
  EXPECT_EQ(a, Guid::FromDigest(Image(), "esp"));
  EXPECT_FALSE(a == Guid::FromDigest(Image(), "root"));
  EXPECT_FALSE(a == Guid::FromDigest(Sha256Of("another image"), "esp"));
  std::string text = a.ToString();
  ASSERT_EQ(text.size(), 36u);
  EXPECT_EQ(text[14], '4');                                          // version
  EXPECT_NE(std::string("89ab").find(text[19]), std::string::npos);  // variant
}

TEST(Guid, ParseAndToStringRoundTrip) {
  Guid g = Guid::Parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
  EXPECT_EQ(g.ToString(), gpt_type::kEsp);
  EXPECT_EQ(Guid::Parse(g.ToString()), g);
  EXPECT_EQ(g.bytes()[0], 0xc1);
  EXPECT_EQ(g.bytes()[15], 0x3b);
  Guid d = Guid::FromDigest(Image(), "disk");
  EXPECT_EQ(Guid::Parse(d.ToString()), d);
}

TEST(Guid, GptBytesAreMixedEndian) {
  Guid esp = Guid::Parse(gpt_type::kEsp);
  std::array<uint8_t, 16> want = {0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8,
                                  0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0,
                                  0xC9, 0x3E, 0xC9, 0x3B};
  EXPECT_EQ(esp.GptBytes(), want);
  EXPECT_EQ(Guid::FromGptBytes(want), esp);
}

TEST(Guid, ParseRefusesMalformedText) {
  for (const char* bad : {"", "c12a7328f81f11d2ba4b00a0c93ec93b",
                          "c12a7328-f81f-11d2-ba4b-00a0c93ec93",
                          "g12a7328-f81f-11d2-ba4b-00a0c93ec93b",
                          "c12a7328-f81f-11d2-ba4b-00a0c93ec93b0",
                          "c12a7328+f81f-11d2-ba4b-00a0c93ec93b"}) {
    ExpectUserError([&] { Guid::Parse(bad); }, "invalid GUID");
  }
}

TEST(Gpt, SfdiskReadsTheTable) {
  std::string sfdisk = Sfdisk();
  if (sfdisk.empty()) GTEST_SKIP() << "sfdisk (util-linux) is not installed";
  TempDir dir;
  std::string path = dir.path() + "/disk.img";
  GptDisk disk = TwoPartitions();
  {
    UniqueFd fd = MakeDisk(path, kDiskSize);
    WriteGpt(fd.get(), disk, "test disk");
  }
  ProcessResult r = RunProcess({sfdisk, "--json", path}, "");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // libfdisk checks both tables and warns if the backup is damaged.
  EXPECT_EQ(r.err, "");
  auto table = nlohmann::json::parse(r.out).at("partitiontable");
  EXPECT_EQ(table.at("label"), "gpt");
  EXPECT_EQ(Lower(table.at("id")), disk.disk_guid.ToString());
  EXPECT_EQ(table.at("firstlba"), 34);
  EXPECT_EQ(table.at("lastlba"), kLastUsable);
  auto parts = table.at("partitions");
  ASSERT_EQ(parts.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const GptPartition& p = disk.partitions[i];
    EXPECT_EQ(parts[i].at("start"), p.first_lba);
    EXPECT_EQ(parts[i].at("size"), p.last_lba - p.first_lba + 1);
    EXPECT_EQ(Lower(parts[i].at("type")), p.type.ToString());
    EXPECT_EQ(Lower(parts[i].at("uuid")), p.guid.ToString());
    EXPECT_EQ(parts[i].at("name"), p.name);
  }
  EXPECT_EQ(parts[1].at("attrs"), "GUID:59");

  r = RunProcess({sfdisk, "--verify", path}, "");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("No errors detected"), std::string::npos) << r.out;
}

TEST(Gpt, SgdiskVerifiesTheTable) {
  if (!OnPath("sgdisk")) GTEST_SKIP() << "sgdisk (gdisk) is not installed";
  TempDir dir;
  std::string path = dir.path() + "/disk.img";
  {
    UniqueFd fd = MakeDisk(path, kDiskSize);
    WriteGpt(fd.get(), TwoPartitions(), "test disk");
  }
  ProcessResult r = RunProcess({"sgdisk", "-v", path}, "");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("No problems found"), std::string::npos) << r.out;
}

TEST(Gpt, ReadGptRoundTrips) {
  TempDir dir;
  std::string path = dir.path() + "/disk.img";
  UniqueFd fd = MakeDisk(path, kDiskSize);
  GptDisk disk = TwoPartitions();
  WriteGpt(fd.get(), disk, "test disk");
  GptDisk back = ReadGpt(fd.get(), "test disk");
  EXPECT_EQ(back.disk_guid, disk.disk_guid);
  EXPECT_EQ(back.size_bytes, disk.size_bytes);
  ASSERT_EQ(back.partitions.size(), disk.partitions.size());
  for (size_t i = 0; i < disk.partitions.size(); ++i) {
    const GptPartition& a = disk.partitions[i];
    const GptPartition& b = back.partitions[i];
    EXPECT_EQ(b.type, a.type);
    EXPECT_EQ(b.guid, a.guid);
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.first_lba, a.first_lba);
    EXPECT_EQ(b.last_lba, a.last_lba);
    EXPECT_EQ(b.attributes, a.attributes);
  }
}

TEST(Gpt, SameLayoutSameBytes) {
  TempDir dir;
  for (const char* name : {"a.img", "b.img"}) {
    UniqueFd fd = MakeDisk(dir.path() + "/" + name, kDiskSize);
    WriteGpt(fd.get(), TwoPartitions(), name);
  }
  EXPECT_EQ(Sha256OfFile(dir.path() + "/a.img"),
            Sha256OfFile(dir.path() + "/b.img"));
}

TEST(Gpt, ProtectiveMbr) {
  TempDir dir;
  std::string path = dir.path() + "/disk.img";
  {
    UniqueFd fd = MakeDisk(path, kDiskSize);
    WriteGpt(fd.get(), TwoPartitions(), "test disk");
  }
  std::string mbr = ReadPrefix(path, 512);
  ASSERT_EQ(mbr.size(), 512u);
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(mbr[i]); };
  auto u32 = [&](size_t i) {
    return uint32_t{u8(i)} | uint32_t{u8(i + 1)} << 8 |
           uint32_t{u8(i + 2)} << 16 | uint32_t{u8(i + 3)} << 24;
  };
  EXPECT_EQ(u8(446 + 4), 0xEE);
  EXPECT_EQ(u32(446 + 8), 1u);
  EXPECT_EQ(u32(446 + 12), kLastLba);
  EXPECT_EQ(u8(510), 0x55);
  EXPECT_EQ(u8(511), 0xAA);
  EXPECT_EQ(u32(462), 0u);  // the other three records are empty
}

TEST(Gpt, ProtectiveMbrSizeIsCappedAbove2TiB) {
  TempDir dir;
  std::string path = dir.path() + "/big.img";
  uint64_t size = uint64_t{3} << 40;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_TRUE(fd.valid());
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    GTEST_SKIP() << "the temp file system has no 3 TiB sparse files";
  GptDisk disk;
  disk.disk_guid = Guid::FromDigest(Image(), "disk");
  disk.size_bytes = size;
  disk.partitions.push_back({Guid::Parse(gpt_type::kRootX86_64),
                             Guid::FromDigest(Image(), "root"), "root", 2048,
                             size / kSectorSize - 34});
  WriteGpt(fd.get(), disk, "big disk");
  std::string mbr = ReadPrefix(path, 512);
  EXPECT_EQ(mbr.substr(446 + 12, 4), std::string(4, '\xff'));
  EXPECT_EQ(ReadGpt(fd.get(), "big disk").partitions.at(0).last_lba,
            size / kSectorSize - 34);
}

TEST(Gpt, RefusesADamagedHeader) {
  TempDir dir;
  std::string path = dir.path() + "/disk.img";
  UniqueFd fd = MakeDisk(path, kDiskSize);
  WriteGpt(fd.get(), TwoPartitions(), "test disk");
  char byte = 0x7f;  // inside the last-usable-LBA field, covered by the CRC
  ASSERT_EQ(::pwrite(fd.get(), &byte, 1, 512 + 50), 1);
  ExpectUserError([&] { ReadGpt(fd.get(), "test disk"); },
                  "test disk: GPT header CRC mismatch");
}

TEST(Gpt, RefusesADamagedEntryArray) {
  TempDir dir;
  std::string path = dir.path() + "/disk.img";
  UniqueFd fd = MakeDisk(path, kDiskSize);
  WriteGpt(fd.get(), TwoPartitions(), "test disk");
  char byte = 'X';  // in the first partition's name
  ASSERT_EQ(::pwrite(fd.get(), &byte, 1, 1024 + 56), 1);
  ExpectUserError([&] { ReadGpt(fd.get(), "test disk"); },
                  "partition array CRC mismatch");
}

TEST(Gpt, RefusesANonGptDisk) {
  TempDir dir;
  std::string path = dir.path() + "/disk.img";
  UniqueFd fd = MakeDisk(path, kDiskSize);
  ExpectUserError([&] { ReadGpt(fd.get(), "blank disk"); },
                  "blank disk: no protective MBR");
}

TEST(Gpt, RefusesOverlappingPartitions) {
  GptDisk disk = TwoPartitions();
  disk.partitions[1].first_lba = disk.partitions[0].last_lba;
  TempDir dir;
  UniqueFd fd = MakeDisk(dir.path() + "/disk.img", kDiskSize);
  ExpectUserError([&] { WriteGpt(fd.get(), disk, "test disk"); },
                  "partition 2 (\"root-x86-64\") (sectors 67583-131038) "
                  "overlaps partition 1 (\"esp\")");
}

TEST(Gpt, RefusesPartitionsOutsideTheUsableSectors) {
  TempDir dir;
  UniqueFd fd = MakeDisk(dir.path() + "/disk.img", kDiskSize);
  GptDisk disk = TwoPartitions();
  disk.partitions[0].first_lba = 33;
  ExpectUserError([&] { WriteGpt(fd.get(), disk, "test disk"); },
                  "outside the usable sectors 34-131038");
  disk = TwoPartitions();
  disk.partitions[1].last_lba = kLastUsable + 1;
  ExpectUserError([&] { WriteGpt(fd.get(), disk, "test disk"); },
                  "outside the usable sectors");
  disk = TwoPartitions();
  disk.partitions[0].last_lba = disk.partitions[0].first_lba - 1;
  ExpectUserError([&] { WriteGpt(fd.get(), disk, "test disk"); },
                  "outside the usable sectors");
}

TEST(Gpt, RefusesBadNamesAndSizes) {
  TempDir dir;
  UniqueFd fd = MakeDisk(dir.path() + "/disk.img", kDiskSize);
  GptDisk disk = TwoPartitions();
  disk.partitions[0].name = std::string(37, 'a');
  ExpectUserError([&] { WriteGpt(fd.get(), disk, "test disk"); },
                  "the name has 37 characters; GPT allows 36");
  disk.partitions[0].name = "caf\xc3\xa9";
  ExpectUserError([&] { WriteGpt(fd.get(), disk, "test disk"); },
                  "printable ASCII");
  disk = TwoPartitions();
  disk.size_bytes += 1;
  ExpectUserError([&] { WriteGpt(fd.get(), disk, "test disk"); },
                  "not a multiple of 512");
  disk = TwoPartitions();
  disk.partitions[1].guid = disk.partitions[0].guid;
  ExpectUserError([&] { WriteGpt(fd.get(), disk, "test disk"); },
                  "have the same GUID");
}

TEST(Gpt, ThirtySixCharacterNamesFit) {
  TempDir dir;
  UniqueFd fd = MakeDisk(dir.path() + "/disk.img", kDiskSize);
  GptDisk disk = TwoPartitions();
  disk.partitions[0].name = std::string(36, 'n');
  WriteGpt(fd.get(), disk, "test disk");
  EXPECT_EQ(ReadGpt(fd.get(), "test disk").partitions[0].name,
            std::string(36, 'n'));
}

}  // namespace
}  // namespace kiln

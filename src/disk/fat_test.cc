#include "disk/fat.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "core/process.h"
#include "core/strings.h"
#include "core/temp_dir.h"

namespace kiln {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr int64_t kMtime = 1700000001;  // 2023-11-14 22:13:21 UTC

std::string Big() {
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>((i * 2654435761u) >> 13);
  return big;
}

std::vector<FatFile> SampleFiles() {
  return {
      {"EFI/BOOT/BOOTX64.EFI", "MZ boot loader"},
      {"EFI/systemd/systemd-bootx64.efi", "MZ systemd-boot"},
      {"loader/loader.conf", "default kiln-6.1.0.conf\ntimeout 0\n"},
      {"loader/entries/kiln-6.1.0.conf", "title kiln 6.1.0\n"},
      {"loader/entries/kiln-6.1.1.conf", "title kiln 6.1.1\n"},
      {"vmlinuz-6.1.0", Big()},
      {"empty", ""},
      {"A name longer than one LFN entry.txt", "long"},
      {"caf\xC3\xA9.txt", "unicode"},
  };
}

FatOptions Options(uint64_t size) {
  FatOptions options;
  options.size_bytes = size;
  options.volume_id = 0x12345678;
  options.mtime = kMtime;
  return options;
}

std::string WriteImage(const TempDir& dir, const std::string& name,
                       const std::vector<FatFile>& files,
                       const FatOptions& options, uint64_t offset = 0) {
  std::string path = dir.path() + "/" + name;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(::ftruncate(fd.get(), offset + options.size_bytes), 0);
  WriteFat32(fd.get(), offset, files, options, "test ESP");
  return path;
}

// fsck.fat lives in sbin, which a user's PATH may lack.
std::string Tool(const std::string& name) {
  if (OnPath(name)) return name;
  for (std::string dir : {"/usr/sbin/", "/sbin/"}) {
    if (::access((dir + name).c_str(), X_OK) == 0) return dir + name;
  }
  return "";
}

ProcessResult Mtools(const std::string& tool,
                     const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"env", "MTOOLS_SKIP_CHECK=1",
                                   "LC_ALL=C.UTF-8", tool};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, "");
}

uint32_t Le32(const std::string& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;  // the hosts kiln supports are little-endian
}

TEST(FatTest, FsckAndMtoolsReadItBack) {
  ASSERT_FALSE(Tool("fsck.fat").empty()) << "fsck.fat (dosfstools) missing";
  ASSERT_TRUE(OnPath("mcopy") && OnPath("mdir")) << "mtools missing";
  TempDir dir;
  auto files = SampleFiles();
  std::string img =
      WriteImage(dir, "esp.img", files, Options(FatMinimumSize(files)));

  ProcessResult fsck = RunProcess({Tool("fsck.fat"), "-n", img}, "");
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
  // A version line and the summary: anything more is a complaint.
  EXPECT_EQ(Split(fsck.out, '\n').size(), 3u) << fsck.out;
  EXPECT_NE(fsck.out.find("15 files"), std::string::npos) << fsck.out;
  EXPECT_EQ(fsck.err, "");

  ProcessResult tree = Mtools("mdir", {"-/", "-b", "-i", img, "::/"});
  ASSERT_EQ(tree.exit_code, 0) << tree.err;
  EXPECT_EQ(tree.out,
            "::/A name longer than one LFN entry.txt\n"
            "::/caf\xC3\xA9.txt\n"
            "::/EFI/\n"
            "::/empty\n"
            "::/loader/\n"
            "::/vmlinuz-6.1.0\n"
            "::/EFI/BOOT/\n"
            "::/EFI/systemd/\n"
            "::/EFI/BOOT/BOOTX64.EFI\n"
            "::/EFI/systemd/systemd-bootx64.efi\n"
            "::/loader/entries/\n"
            "::/loader/loader.conf\n"
            "::/loader/entries/kiln-6.1.0.conf\n"
            "::/loader/entries/kiln-6.1.1.conf\n");
  for (const FatFile& f : files) {
    ProcessResult read = Mtools("mcopy", {"-i", img, "::/" + f.path, "-"});
    EXPECT_EQ(read.exit_code, 0) << f.path << ": " << read.err;
    EXPECT_TRUE(read.out == f.content) << f.path;
  }

  ProcessResult root = Mtools("mdir", {"-i", img, "::/"});
  EXPECT_NE(root.out.find("Volume in drive : is ESP"), std::string::npos);
  EXPECT_NE(root.out.find("Serial Number is 1234-5678"), std::string::npos);
  EXPECT_NE(root.out.find("2023-11-14  22:13"), std::string::npos);
  ProcessResult entries = Mtools("mdir", {"-i", img, "::/loader/entries"});
  EXPECT_NE(entries.out.find("KILN-6~1 CON"), std::string::npos);
  EXPECT_NE(entries.out.find("KILN-6~2 CON"), std::string::npos);
}

TEST(FatTest, Layout) {
  TempDir dir;
  auto files = SampleFiles();
  std::string image =
      ReadFile(WriteImage(dir, "esp.img", files, Options(33 * kMiB)));
  auto sector = [&](size_t n) { return image.substr(n * 512, 512); };
  std::string boot = sector(0);
  EXPECT_EQ(boot.substr(3, 8), "KILN    ");
  EXPECT_EQ(boot.substr(82, 8), "FAT32   ");
  EXPECT_EQ(boot.substr(71, 11), "ESP        ");
  EXPECT_EQ(Le32(boot, 67), 0x12345678u);
  EXPECT_EQ(boot.substr(510), "\x55\xAA");
  EXPECT_EQ(sector(6), boot);
  EXPECT_EQ(sector(7), sector(1));
  EXPECT_EQ(Le32(sector(1), 0), 0x41615252u);

  uint32_t fat_bytes = Le32(boot, 36) * 512;
  std::string fat1 = image.substr(32 * 512, fat_bytes);
  EXPECT_EQ(image.substr(32 * 512 + fat_bytes, fat_bytes), fat1);
  EXPECT_EQ(Le32(fat1, 0), 0x0FFFFFF8u);
  EXPECT_EQ(Le32(fat1, 4), 0x0FFFFFFFu);
  EXPECT_EQ(Le32(boot, 44), 2u);  // the root directory's cluster

  // 8.3 names as given ("EFI") get no long-name entry in front.
  std::string root = image.substr(32 * 512 + 2 * fat_bytes, 512);
  size_t efi = root.find("EFI        \x10");
  ASSERT_NE(efi, std::string::npos);
  EXPECT_NE(root[efi - 32 + 11], 0x0F);
}

TEST(FatTest, SameFilesSameBytes) {
  TempDir dir;
  auto files = SampleFiles();
  FatOptions options = Options(40 * kMiB);
  std::string a = ReadFile(WriteImage(dir, "a.img", files, options));
  std::string b = ReadFile(WriteImage(dir, "b.img", files, options));
  EXPECT_TRUE(a == b);
  std::string shifted =
      ReadFile(WriteImage(dir, "c.img", files, options, kMiB));
  EXPECT_TRUE(shifted.substr(kMiB) == a);
  EXPECT_EQ(shifted.substr(0, kMiB), std::string(kMiB, '\0'));
}

TEST(FatTest, DatesBefore1980AreClamped) {
  TempDir dir;
  FatOptions options = Options(33 * kMiB);
  options.mtime = 0;
  std::string image = ReadFile(WriteImage(dir, "a.img", {}, options));
  uint32_t fat_bytes = Le32(image, 36) * 512;
  std::string label = image.substr(32 * 512 + 2 * fat_bytes, 32);
  EXPECT_EQ(label.substr(0, 12), "ESP        \x08");
  EXPECT_EQ(Le32(label, 22), 0x00210000u);  // 00:00:00, 1980-01-01
}

TEST(FatTest, MinimumSize) {
  EXPECT_EQ(FatMinimumSize({}), 33 * kMiB);
  std::vector<FatFile> files = {{"vmlinuz", std::string(40 << 20, 'k')}};
  uint64_t size = FatMinimumSize(files);
  EXPECT_EQ(size % kMiB, 0u);
  TempDir dir;
  WriteImage(dir, "fits.img", files, Options(size));
  EXPECT_THROW(WriteImage(dir, "small.img", files, Options(size - kMiB)),
               Error);
}

void ExpectUserError(const std::vector<FatFile>& files,
                     const FatOptions& options, const std::string& message) {
  TempDir dir;
  try {
    WriteImage(dir, "bad.img", files, options);
    ADD_FAILURE() << "no error; wanted " << message;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser) << e.message();
    EXPECT_EQ(e.message(), message);
  }
}

TEST(FatTest, Errors) {
  FatOptions options = Options(33 * kMiB);
  ExpectUserError({{"EFI//x", ""}}, options,
                  "test ESP: \"EFI//x\": empty file name");
  ExpectUserError({{"a:b", ""}}, options,
                  "test ESP: \"a:b\": \"a:b\" has a character FAT forbids");
  ExpectUserError(
      {{"x/a\tb", ""}}, options,
      "test ESP: \"x/a\\tb\": \"a\\tb\" has a character FAT forbids");
  ExpectUserError(
      {{"x.", ""}}, options,
      "test ESP: \"x.\": \"x.\" ends in a dot or space, which FAT drops");
  ExpectUserError({{"\xFF", ""}}, options, "test ESP: \"\xFF\": not UTF-8");
  ExpectUserError({{"EFI/a", ""}, {"efi/b", ""}}, options,
                  "test ESP: \"efi/b\" collides with \"EFI\" (FAT names "
                  "ignore case)");
  ExpectUserError({{"a", ""}, {"a/b", ""}}, options,
                  "test ESP: \"a/b\" is both a file and a folder");
  ExpectUserError({{"a/b", ""}, {"a", ""}}, options,
                  "test ESP: \"a\" is both a file and a folder");
  ExpectUserError({{"a", ""}, {"a", ""}}, options,
                  "test ESP: \"a\" is listed twice");
  ExpectUserError({{"big", std::string(40 << 20, 'x')}}, options,
                  "test ESP: 33 MiB cannot hold the files as FAT32; they "
                  "need 41 MiB");
  ExpectUserError({}, Options(32 * kMiB),
                  "test ESP: 32 MiB cannot hold the files as FAT32; they "
                  "need 33 MiB");
  options.label = "a+b";
  ExpectUserError({}, options,
                  "test ESP: \"a+b\" is not a FAT volume label (at most 11 of "
                  "A-Z, 0-9, space and !#$%&'()-@^_`{}~, not starting with a "
                  "space)");
}

}  // namespace
}  // namespace kiln

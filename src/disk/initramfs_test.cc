#include "disk/initramfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>

#include "core/error.h"
#include "core/fs.h"
#include "core/process.h"
#include "core/temp_dir.h"
#include "rootfs/entry_testing.h"

namespace kiln {
namespace {

using test::DirEntry;
using test::FileEntry;
using test::SymlinkEntry;

constexpr char kRelease[] = "6.1.0-99-test-amd64";
constexpr int64_t kMtime = 1700000000;

// Compiles C source into an object file: a kernel module as far as the
// initramfs builder looks (an ELF64 relocatable with a .modinfo section).
std::string Compile(const std::string& source, bool object = true) {
  TempDir dir;
  std::string src = dir.Write("m.c", source);
  std::string out = dir.path() + "/m.o";
  std::vector<std::string> argv = {"gcc", "-o", out, src};
  if (object) argv.insert(argv.begin() + 1, "-c");
  ProcessResult r = RunProcess(argv, "");
  if (r.exit_code != 0) throw InternalError("gcc failed: " + r.err);
  return ReadFile(out);
}

std::string Module(const std::string& modinfo) {
  // Adjacent fields, NUL-separated, as the kernel's MODULE_INFO lays them out.
  return Compile(
      "static const char modinfo[] __attribute__((section(\".modinfo\"), "
      "used)) = \"" +
      modinfo + "\";\nint init_module(void) { return 0; }\n");
}

struct CpioMember {
  mode_t type = 0;
  unsigned perm = 0;
  int64_t uid = -1, gid = -1, mtime = -1, ino = -1;
  unsigned nlink = 0;
  std::string data;
  std::string symlink;
  unsigned rdev_major = 0, rdev_minor = 0;
};

// The archive as libarchive reads it, in archive order.
std::vector<std::pair<std::string, CpioMember>> ReadCpio(
    const std::string& cpio) {
  std::unique_ptr<struct archive, decltype(&archive_read_free)> a(
      archive_read_new(), archive_read_free);
  archive_read_support_format_cpio(a.get());
  EXPECT_EQ(archive_read_open_memory(a.get(), cpio.data(), cpio.size()),
            ARCHIVE_OK);
  std::vector<std::pair<std::string, CpioMember>> out;
  struct archive_entry* ae;
  while (archive_read_next_header(a.get(), &ae) == ARCHIVE_OK) {
    EXPECT_EQ(archive_format(a.get()), ARCHIVE_FORMAT_CPIO_SVR4_NOCRC);
    CpioMember m;
    m.type = archive_entry_filetype(ae);
    m.perm = archive_entry_perm(ae);
    m.uid = archive_entry_uid(ae);
    m.gid = archive_entry_gid(ae);
    m.mtime = archive_entry_mtime(ae);
    m.ino = archive_entry_ino64(ae);
    m.nlink = archive_entry_nlink(ae);
    if (const char* s = archive_entry_symlink(ae)) m.symlink = s;
    m.rdev_major = archive_entry_rdevmajor(ae);
    m.rdev_minor = archive_entry_rdevminor(ae);
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buf, sizeof buf)) > 0)
      m.data.append(buf, static_cast<size_t>(n));
    out.emplace_back(archive_entry_pathname(ae), m);
  }
  return out;
}

void ExpectUserError(const std::function<void()>& fn,
                     const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser) << e.message();
    for (const auto& n : needles)
      EXPECT_NE(e.message().find(n), std::string::npos) << e.message();
  }
}

class InitramfsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    modules_ = new std::map<std::string, std::string>{
        {"a", Module("license=GPL\\0depends=b,c\\0vermagic=6.1.0")},
        {"b", Module("depends=c\\0license=GPL")},
        {"c", Module("license=GPL\\0depends=")},
        {"d", Module("depends=missing-mod")},
        {"e-f", Module("depends=")},
    };
  }
  static void TearDownTestSuite() {
    delete modules_;
    modules_ = nullptr;
  }

  // A merged-/usr image: lib and bin are links into usr, as on Debian 12.
  static Tree Image() {
    Tree tree;
    std::string dir = std::string("usr/lib/modules/") + kRelease;
    for (const auto& d :
         {std::string("usr"), std::string("usr/bin"), std::string("usr/lib"),
          std::string("usr/lib/modules"), dir, dir + "/kernel",
          dir + "/kernel/drivers", dir + "/kernel/fs"}) {
      tree.Put(DirEntry(d));
    }
    tree.Put(SymlinkEntry("bin", "usr/bin"));
    tree.Put(SymlinkEntry("lib", "usr/lib"));
    tree.Put(FileEntry("usr/bin/busybox", "not really busybox", 0755));
    tree.Put(FileEntry(dir + "/kernel/drivers/a.ko", modules_->at("a")));
    tree.Put(FileEntry(dir + "/kernel/drivers/b.ko", modules_->at("b")));
    tree.Put(FileEntry(dir + "/kernel/fs/c.ko", modules_->at("c")));
    tree.Put(FileEntry(dir + "/kernel/fs/d.ko", modules_->at("d")));
    tree.Put(FileEntry(dir + "/kernel/fs/e-f.ko", modules_->at("e-f")));
    tree.Put(FileEntry(dir + "/kernel/fs/zipped.ko.xz", "xz"));
    tree.Put(FileEntry(dir + "/modules.builtin", "kernel/fs/ext4/ext4.ko\n"));
    return tree;
  }

  static InitramfsOptions Options(std::vector<std::string> modules) {
    InitramfsOptions o;
    o.kernel_release = kRelease;
    o.modules = std::move(modules);
    o.mtime = kMtime;
    return o;
  }

  static std::map<std::string, std::string>* modules_;
};

std::map<std::string, std::string>* InitramfsTest::modules_ = nullptr;

TEST_F(InitramfsTest, ModuleDependsReadsModinfo) {
  EXPECT_EQ(ModuleDepends(modules_->at("a"), "a.ko"),
            (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(ModuleDepends(modules_->at("c"), "c.ko"),
            std::vector<std::string>{});
  EXPECT_EQ(ModuleDepends(modules_->at("d"), "d.ko"),
            std::vector<std::string>{"missing_mod"});
}

TEST_F(InitramfsTest, ModuleDependsRefusesWhatIsNotAModule) {
  ExpectUserError([] { ModuleDepends("hello", "x.ko"); },
                  {"x.ko: not an ELF64"});
  ExpectUserError(
      [] {
        ModuleDepends(std::string("\x7f"
                                  "ELF\2\1",
                                  6),
                      "t.ko");
      },
      {"t.ko: not an ELF64"});
  std::string program = Compile("int main(void) { return 0; }\n", false);
  ExpectUserError([&] { ModuleDepends(program, "prog"); },
                  {"prog: not a kernel module"});
  std::string plain = Compile("int x;\n");
  ExpectUserError([&] { ModuleDepends(plain, "plain.o"); },
                  {"plain.o: not a kernel module (no .modinfo section)"});
  std::string truncated = modules_->at("a").substr(0, 100);
  ExpectUserError([&] { ModuleDepends(truncated, "short.ko"); },
                  {"short.ko: truncated ELF file"});
}

TEST_F(InitramfsTest, LoadOrderPutsDependenciesFirst) {
  Tree tree = Image();
  EXPECT_EQ(BuildInitramfs(tree, Options({"a"})).modules,
            (std::vector<std::string>{"c", "b", "a"}));
  EXPECT_EQ(BuildInitramfs(tree, Options({"b", "a", "b"})).modules,
            (std::vector<std::string>{"c", "b", "a"}));
  EXPECT_EQ(BuildInitramfs(tree, Options({"e-f", "c"})).modules,
            (std::vector<std::string>{"e_f", "c"}));
}

TEST_F(InitramfsTest, ArchiveHoldsBusyboxInitAndModules) {
  Initramfs built = BuildInitramfs(Image(), Options({"a"}));
  auto members = ReadCpio(built.cpio);
  std::string mod = std::string("lib/modules/") + kRelease;
  std::vector<std::string> names;
  for (const auto& [name, m] : members) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"bin",
                                             "bin/busybox",
                                             "bin/sh",
                                             "dev",
                                             "dev/console",
                                             "etc",
                                             "etc/kiln-modules",
                                             "init",
                                             "lib",
                                             "lib/modules",
                                             mod,
                                             mod + "/kernel",
                                             mod + "/kernel/drivers",
                                             mod + "/kernel/drivers/a.ko",
                                             mod + "/kernel/drivers/b.ko",
                                             mod + "/kernel/fs",
                                             mod + "/kernel/fs/c.ko",
                                             "proc",
                                             "root",
                                             "sys"}));
  std::map<std::string, CpioMember> by_name(members.begin(), members.end());
  int64_t ino = 0;
  for (const auto& [name, m] : members) {
    EXPECT_EQ(m.uid, 0) << name;
    EXPECT_EQ(m.gid, 0) << name;
    EXPECT_EQ(m.mtime, kMtime) << name;
    EXPECT_EQ(m.ino, ++ino) << name;
    if (m.type == AE_IFDIR) {
      EXPECT_EQ(m.perm, 0755u) << name;
    } else {
      EXPECT_EQ(m.nlink, 1u) << name;
    }
  }
  const CpioMember& init = by_name.at("init");
  EXPECT_EQ(init.type, AE_IFREG);
  EXPECT_EQ(init.perm, 0755u);
  EXPECT_EQ(init.data.rfind("#!/bin/busybox sh\n", 0), 0u);
  const CpioMember& busybox = by_name.at("bin/busybox");
  EXPECT_EQ(busybox.type, AE_IFREG);
  EXPECT_EQ(busybox.perm, 0755u);
  EXPECT_EQ(busybox.data, "not really busybox");
  EXPECT_EQ(by_name.at("bin/sh").type, AE_IFLNK);
  EXPECT_EQ(by_name.at("bin/sh").symlink, "busybox");
  const CpioMember& console = by_name.at("dev/console");
  EXPECT_EQ(console.type, AE_IFCHR);
  EXPECT_EQ(console.rdev_major, 5u);
  EXPECT_EQ(console.rdev_minor, 1u);
  EXPECT_EQ(by_name.at(mod + "/kernel/drivers/a.ko").data, modules_->at("a"));
  EXPECT_EQ(by_name.at(mod + "/kernel/drivers/a.ko").perm, 0644u);
  EXPECT_EQ(by_name.at(mod + "/kernel/fs/c.ko").data, modules_->at("c"));
  EXPECT_EQ(by_name.at("etc/kiln-modules").data,
            "/" + mod + "/kernel/fs/c.ko\n/" + mod + "/kernel/drivers/b.ko\n/" +
                mod + "/kernel/drivers/a.ko\n");
}

TEST_F(InitramfsTest, SameInputsSameBytes) {
  std::string first = BuildInitramfs(Image(), Options({"a", "e_f"})).cpio;
  std::string second = BuildInitramfs(Image(), Options({"a", "e_f"})).cpio;
  EXPECT_EQ(first, second);
  EXPECT_NE(first, BuildInitramfs(Image(), Options({"a"})).cpio);
}

TEST_F(InitramfsTest, CpioToolListsTheArchive) {
  if (!OnPath("cpio")) GTEST_SKIP() << "GNU cpio is not installed";
  std::string cpio = BuildInitramfs(Image(), Options({"c"})).cpio;
  ProcessResult r = RunProcess({"cpio", "-t", "--quiet"}, cpio);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string mod = std::string("lib/modules/") + kRelease;
  EXPECT_EQ(r.out,
            "bin\nbin/busybox\nbin/sh\ndev\ndev/console\netc\n"
            "etc/kiln-modules\ninit\nlib\nlib/modules\n" +
                mod + "\n" + mod + "/kernel\n" + mod + "/kernel/fs\n" + mod +
                "/kernel/fs/c.ko\nproc\nroot\nsys\n");
}

TEST_F(InitramfsTest, InitScriptParses) {
  auto members = ReadCpio(BuildInitramfs(Image(), Options({})).cpio);
  std::string init;
  for (const auto& [name, m] : members)
    if (name == "init") init = m.data;
  TempDir dir;
  std::string path = dir.Write("init", init);
  for (const char* shell : {"sh", "busybox"}) {
    if (!OnPath(shell)) continue;
    std::vector<std::string> argv = {shell, "-n", path};
    if (std::string(shell) == "busybox") argv.insert(argv.begin() + 1, "sh");
    ProcessResult r = RunProcess(argv, "");
    EXPECT_EQ(r.exit_code, 0) << shell << ": " << r.err;
  }
}

TEST_F(InitramfsTest, NoModulesStillBoots) {
  Initramfs built = BuildInitramfs(Image(), Options({}));
  EXPECT_TRUE(built.modules.empty());
  std::map<std::string, CpioMember> by_name;
  for (auto& [name, m] : ReadCpio(built.cpio)) by_name[name] = m;
  EXPECT_TRUE(by_name.count("init"));
  EXPECT_EQ(by_name.at("etc/kiln-modules").data, "");
  EXPECT_FALSE(by_name.count("lib"));
}

TEST_F(InitramfsTest, MissingModulesAreNamed) {
  Tree tree = Image();
  ExpectUserError([&] { BuildInitramfs(tree, Options({"zz"})); },
                  {"module zz is not in /lib/modules/6.1.0-99-test-amd64"});
  ExpectUserError([&] { BuildInitramfs(tree, Options({"d"})); },
                  {"module missing_mod (needed by d) is not in /lib/modules/" +
                   std::string(kRelease)});
  ExpectUserError([&] { BuildInitramfs(tree, Options({"ext4"})); },
                  {"built into kernel " + std::string(kRelease)});
  ExpectUserError([&] { BuildInitramfs(tree, Options({"zipped"})); },
                  {"only the compressed kernel/fs/zipped.ko.xz is there"});
  InitramfsOptions o = Options({"a"});
  o.kernel_release = "5.10.0-other";
  ExpectUserError([&] { BuildInitramfs(tree, o); },
                  {"kernel 5.10.0-other: /lib/modules/5.10.0-other is not a "
                   "folder in the image"});
}

TEST_F(InitramfsTest, BusyboxMustBeAStaticRegularFile) {
  Tree tree = Image();
  tree.RemoveTree("usr/bin/busybox");
  ExpectUserError(
      [&] { BuildInitramfs(tree, Options({"c"})); },
      {"busybox /bin/busybox: /usr/bin/busybox is not in the image", kRelease});
  tree.Put(SymlinkEntry("usr/bin/busybox", "busybox.static"));
  tree.Put(FileEntry("usr/bin/busybox.static", "static busybox", 0755));
  auto members = ReadCpio(BuildInitramfs(tree, Options({"c"})).cpio);
  EXPECT_EQ(members.at(1).first, "bin/busybox");
  EXPECT_EQ(members.at(1).second.data, "static busybox");
  EXPECT_EQ(members.at(1).second.type, AE_IFREG);
  tree.Put(SymlinkEntry("usr/bin/busybox.static", "busybox"));
  ExpectUserError([&] { BuildInitramfs(tree, Options({"c"})); },
                  {"too many levels of symbolic links"});
  tree.Put(FileEntry("usr/bin/busybox",
                     Compile("int main(void) { return 0; }\n", false), 0755));
  ExpectUserError([&] { BuildInitramfs(tree, Options({"c"})); },
                  {"is dynamically linked", "busybox-static"});
}

TEST_F(InitramfsTest, RefusesBadReleasesAndDates) {
  Tree tree = Image();
  InitramfsOptions o = Options({"c"});
  o.kernel_release = "../x";
  ExpectUserError([&] { BuildInitramfs(tree, o); }, {"invalid kernel release"});
  o = Options({"c"});
  o.mtime = -1;
  ExpectUserError([&] { BuildInitramfs(tree, o); }, {"out of range"});
}

}  // namespace
}  // namespace kiln

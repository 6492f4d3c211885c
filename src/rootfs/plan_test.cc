#include "rootfs/plan.h"

#include <gtest/gtest.h>

#include "core/temp_dir.h"
#include "digest/digest.h"
#include "rootfs/spool.h"
#include "tar/tar_writer.h"

namespace kiln {
namespace {

class PlanTest : public ::testing::Test {
 protected:
  PlanTest() : owners_(AccountFiles{}, accounts_) {}

  LayerPlan Plan(const LayerSpec& spec, ContextFs* fs = nullptr) {
    OwnerResolver owners(AccountFiles::FromTree(lower_), accounts_);
    PlanInputs in{fs ? fs : &fs_, &lower_, &owners, Spool::Create(tmp_.path())};
    return PlanLayer(spec, in);
  }
  std::string ErrorOf(const LayerSpec& spec, ContextFs* fs = nullptr) {
    try {
      Plan(spec, fs);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUser);
      return e.message();
    }
    return "no error";
  }
  static std::string Summary(const LayerPlan& plan) {
    std::string s;
    for (const auto& e : plan.entries) {
      char mode[8];
      snprintf(mode, sizeof mode, "%04o", e.mode);
      s += e.path + " " + EntryTypeName(e.type) + " " + mode + " " +
           std::to_string(e.uid) + ":" + std::to_string(e.gid) +
           (e.link.empty() ? "" : " -> " + e.link) + "\n";
    }
    return s;
  }
  static FileSpec Copy(const std::string& src, const std::string& dest) {
    FileSpec f;
    f.src = src;
    f.dest = dest;
    f.context_dir = "/ctx";
    return f;
  }
  static FileSpec Inline(const std::string& dest, const std::string& content) {
    FileSpec f;
    f.content = content;
    f.dest = dest;
    return f;
  }
  static Entry Lower(const std::string& path, EntryType type,
                     uint32_t mode = 0755, const std::string& link = "") {
    Entry e;
    e.path = path;
    e.type = type;
    e.mode = mode;
    e.link = link;
    return e;
  }

  TempDir tmp_;
  MemoryFs fs_;
  Tree lower_;
  AccountsSpec accounts_;
  OwnerResolver owners_;
};

TEST_F(PlanTest, CopiesATreeLikeCopyWithNormalisedModesAndTemplateOwners) {
  fs_.AddDir("/ctx/app", 0700);
  fs_.AddFile("/ctx/app/run", "#!/bin/sh\n", 0700);
  fs_.AddFile("/ctx/app/conf", "x=1\n", 0600);
  fs_.AddDir("/ctx/app/lib", 0777);
  fs_.AddFile("/ctx/app/lib/a.so", "elf", 0775);
  fs_.AddSymlink("/ctx/app/current", "lib");
  LayerSpec spec;
  spec.name = "app";
  FileSpec f = Copy("app", "opt/app");
  f.owner = OwnerSpec{"10:20", {}};
  spec.files.push_back(f);
  EXPECT_EQ(Summary(Plan(spec)),
            "opt directory 0755 0:0\n"
            "opt/app directory 0755 10:20\n"
            "opt/app/conf file 0644 10:20\n"
            "opt/app/current symlink 0777 10:20 -> lib\n"
            "opt/app/lib directory 0755 10:20\n"
            "opt/app/lib/a.so file 0755 10:20\n"
            "opt/app/run file 0755 10:20\n");
}

TEST_F(PlanTest, ParentsKeepWhatTheLayersBelowGaveThem) {
  Entry opt = Lower("opt", EntryType::kDir, 0700);
  opt.uid = 5;
  lower_.Put(opt);
  LayerSpec spec;
  spec.files.push_back(Inline("opt/x", "x"));
  EXPECT_EQ(Summary(Plan(spec)),
            "opt directory 0700 5:0\nopt/x file 0644 0:0\n");
}

TEST_F(PlanTest, PathsGoThroughSymlinksOfTheLayersBelow) {
  lower_.Put(Lower("usr", EntryType::kDir));
  lower_.Put(Lower("usr/bin", EntryType::kDir));
  lower_.Put(
      Lower("bin", EntryType::kSymlink, 0777, "usr/bin"));  // merged /usr
  LayerSpec spec;
  spec.files.push_back(Inline("bin/tool", "x"));
  EXPECT_EQ(Summary(Plan(spec)),
            "usr directory 0755 0:0\nusr/bin directory 0755 0:0\nusr/bin/tool "
            "file 0644 0:0\n");
}

TEST_F(PlanTest, TwoEntriesClaimingOnePathAreRefused) {
  fs_.AddFile("/ctx/a", "1");
  LayerSpec spec;
  spec.name = "app";
  spec.files.push_back(Copy("a", "etc/x"));
  spec.files.push_back(Inline("etc/x", "2"));
  EXPECT_EQ(ErrorOf(spec),
            "layer \"app\": /etc/x is declared twice: by files[1] and by "
            "files[0] (a)");
}

TEST_F(PlanTest, ExplicitDirectoriesWinOverCopiedOnesButNotOverEachOther) {
  fs_.AddDir("/ctx/etc");
  fs_.AddDir("/ctx/etc/app");
  LayerSpec spec;
  spec.files.push_back(Copy("etc", "etc"));
  DirSpec d;
  d.path = "etc/app";
  d.mode = 0700;
  spec.dirs.push_back(d);
  EXPECT_EQ(Summary(Plan(spec)),
            "etc directory 0755 0:0\netc/app directory 0700 0:0\n");
  spec.dirs.push_back(d);
  EXPECT_EQ(
      ErrorOf(spec),
      "layer \"\": /etc/app is declared twice: by dirs[1] and by dirs[0]");
}

TEST_F(PlanTest, AFileCannotBeAParent) {
  LayerSpec spec;
  spec.files.push_back(Inline("a", "file"));
  spec.files.push_back(Inline("a/b", "below a file"));
  EXPECT_EQ(ErrorOf(spec),
            "layer \"\", files[1]: cannot place /a/b: /a is declared as a file "
            "in this layer (files[0]), "
            "not a directory");
  lower_.Put(Lower("c", EntryType::kFile, 0644));
  LayerSpec below;
  below.files.push_back(Inline("c/d", "x"));
  EXPECT_EQ(ErrorOf(below),
            "layer \"\", files[0]: cannot place /c/d: /c is a file in the "
            "layers below, not a directory");
}

TEST_F(PlanTest, RemoveBecomesAWhiteout) {
  lower_.Put(Lower("etc", EntryType::kDir));
  lower_.Put(Lower("etc/old", EntryType::kFile, 0644));
  LayerSpec spec;
  spec.remove.push_back({"etc/old", {}});
  EXPECT_EQ(Summary(Plan(spec)),
            "etc directory 0755 0:0\netc/.wh.old file 0644 0:0\n");
  spec.remove.push_back({"etc/none", {}});
  EXPECT_EQ(
      ErrorOf(spec),
      "layer \"\", remove[1]: /etc/none does not exist in the layers below");
  LayerSpec both;
  both.remove.push_back({"etc/old", {}});
  both.files.push_back(Inline("etc/old", "new"));
  EXPECT_EQ(ErrorOf(both),
            "layer \"\", remove[0]: /etc/old is removed and also added "
            "(files[0]) in this layer; "
            "remove it in an earlier layer");
}

TEST_F(PlanTest, HardlinksFollowTheirTargetInTreeOrder) {
  LayerSpec spec;
  spec.files.push_back(Inline("z/file", "shared"));
  HardlinkSpec h;
  h.path = "a/link";  // sorts before its target
  h.target = "z/file";
  spec.hardlinks.push_back(h);
  LayerPlan plan = Plan(spec);
  EXPECT_EQ(Summary(plan),
            "a directory 0755 0:0\na/link file 0644 0:0\nz directory 0755 "
            "0:0\nz/file hardlink 0644 0:0 -> a/link\n");
  EXPECT_EQ(plan.entries[1].content->ReadAll(6), "shared");
  HardlinkSpec bad;
  bad.path = "b";
  bad.target = "nowhere";
  spec.hardlinks.push_back(bad);
  EXPECT_EQ(ErrorOf(spec),
            "layer \"\", hardlinks[1]: hardlink target /nowhere must be a "
            "regular file added by this layer");
}

TEST_F(PlanTest, SourcesStayInsideTheContext) {
  fs_.AddDir("/ctx/d");
  fs_.AddSymlink("/ctx/d/out", "/etc/passwd");
  fs_.AddSymlink("/ctx/up", "../outside");
  fs_.AddSymlink("/ctx/ok", "d");
  LayerSpec spec;
  spec.files.push_back(Copy("../secret", "x"));
  EXPECT_EQ(ErrorOf(spec),
            "files[0].src: \"../secret\" leads outside the build context /ctx");
  spec.files[0] = Copy("d/out", "x");
  EXPECT_EQ(ErrorOf(spec),
            "files[0].src: \"d/out\" is or goes through a symlink to "
            "/etc/passwd, outside the build context");
  spec.files[0] = Copy("up", "x");
  EXPECT_EQ(ErrorOf(spec),
            "files[0].src: \"up\" leads outside the build context /ctx");
  spec.files[0] = Copy("missing", "x");
  EXPECT_EQ(
      ErrorOf(spec),
      "files[0].src: \"missing\": no such file in the build context /ctx");
  spec.files[0] = Copy("ok", "x");  // a link inside the context is followed
  EXPECT_EQ(Summary(Plan(spec)),
            "x directory 0755 0:0\nx/out symlink 0777 0:0 -> /etc/passwd\n");
}

TEST_F(PlanTest, WhiteoutNamesAreNotData) {
  LayerSpec spec;
  spec.files.push_back(Inline("etc/.wh.passwd", "x"));
  EXPECT_EQ(ErrorOf(spec),
            "layer \"\", files[0]: /etc/.wh.passwd has an OCI whiteout name "
            "(.wh.*); use remove: to "
            "delete paths of lower layers");
}

TEST_F(PlanTest, OwnerNamesComeFromTheTemplateAccounts) {
  GroupSpec g;
  g.name = "staff";
  g.gid = 50;
  accounts_.groups.push_back(g);
  UserSpec u;
  u.name = "app";
  u.uid = 1000;
  accounts_.users.push_back(u);
  LayerSpec spec;
  FileSpec f = Inline("a", "x");
  f.owner = OwnerSpec{"app", {}};
  spec.files.push_back(f);
  f = Inline("b", "x");
  f.owner = OwnerSpec{"app:staff", {}};
  spec.files.push_back(f);
  f = Inline("c", "x");
  f.owner = OwnerSpec{"7", {}};
  spec.files.push_back(f);
  EXPECT_EQ(Summary(Plan(spec)),
            "a file 0644 1000:1000\nb file 0644 1000:50\nc file 0644 7:7\n");
  spec.files[0].owner = OwnerSpec{"nobody", {}};
  EXPECT_EQ(ErrorOf(spec),
            "owner \"nobody\": no user named \"nobody\" in accounts or the "
            "layers below (numeric ids are "
            "always accepted)");
}

// Tarballs are real files: archives written by kiln's own tar writer, which
// writes whatever names it is given, hostile ones included.
class TarballPlanTest : public PlanTest {
 protected:
  LayerSpec Spec(const std::vector<Entry>& entries,
                 bool allow_devices = false) {
    std::string bytes;
    StringSink sink(&bytes);
    TarWriter tar(sink, 0);
    for (const auto& e : entries) tar.Add(e);
    tar.Finish();
    ctx_.Write("in.tar", bytes);
    TarballSpec t;
    t.src = "in.tar";
    t.sha256 = Sha256Of(bytes).hex();
    t.context_dir = ctx_.path();
    t.allow_devices = allow_devices;
    LayerSpec spec;
    spec.name = "t";
    spec.tarballs.push_back(t);
    return spec;
  }
  std::string TarError(const std::vector<Entry>& entries,
                       bool allow_devices = false) {
    host_ = NewHostFs();
    return ErrorOf(Spec(entries, allow_devices), host_.get());
  }
  static Entry F(const std::string& path, const std::string& content = "x") {
    Entry e;
    e.path = path;
    e.size = content.size();
    e.content = InlineContent(content);
    return e;
  }
  static Entry L(const std::string& path, EntryType type,
                 const std::string& link) {
    Entry e;
    e.path = path;
    e.type = type;
    e.link = link;
    e.mode = 0777;
    return e;
  }
  TempDir ctx_;
  std::unique_ptr<ContextFs> host_;
};

TEST_F(TarballPlanTest, KeepsTheArchivesModesAndOwners) {
  Entry s = F("usr/bin/su", "elf");
  s.mode = 04755;
  s.uid = 0;
  Entry d = L("home/u", EntryType::kDir, "");
  d.mode = 0700;
  d.uid = d.gid = 1000;
  host_ = NewHostFs();
  LayerSpec spec =
      Spec({s, d, L("usr/bin/sudo", EntryType::kHardlink, "usr/bin/su")});
  spec.tarballs[0].allow_setuid = true;
  LayerPlan plan = Plan(spec, host_.get());
  EXPECT_EQ(Summary(plan),
            "home directory 0755 0:0\nhome/u directory 0700 1000:1000\nusr "
            "directory 0755 0:0\n"
            "usr/bin directory 0755 0:0\nusr/bin/su file 4755 "
            "0:0\nusr/bin/sudo hardlink 4755 0:0 -> usr/bin/su\n");
  EXPECT_EQ(plan.entries[4].content->ReadAll(3), "elf");
}

TEST_F(TarballPlanTest, RefusesEntriesThatEscapeOrSurprise) {
  EXPECT_EQ(TarError({F("../evil")}),
            "layer \"t\", tarballs[0]: tarball in.tar: entry \"../evil\": "
            "entry name contains \"..\"");
  EXPECT_EQ(TarError({F("/etc/passwd")}),
            "layer \"t\", tarballs[0]: tarball in.tar: entry \"/etc/passwd\": "
            "absolute entry name");
  EXPECT_EQ(TarError({L("x", EntryType::kHardlink, "../../etc/shadow")}),
            "layer \"t\": tarball in.tar entry \"x\": hardlink target "
            "\"../../etc/shadow\" leaves the archive (entry name "
            "contains \"..\")");
  EXPECT_EQ(TarError({L("x", EntryType::kHardlink, "etc/shadow")}),
            "layer \"t\": tarball in.tar entry \"x\": hardlink target "
            "\"etc/shadow\" is not a file earlier in the archive");
  Entry dev = L("dev/sda", EntryType::kBlock, "");
  EXPECT_EQ(TarError({dev}),
            "layer \"t\": tarball in.tar entry \"dev/sda\" is a block device; "
            "set allowDevices: true on the tarball to "
            "keep device nodes");
  EXPECT_EQ(TarError({dev}, true), "no error");
  EXPECT_EQ(TarError({F("a"), F("a")}),
            "layer \"t\": tarball in.tar entry \"a\": /a appears twice in the "
            "archive");
  EXPECT_EQ(TarError({L("a", EntryType::kSymlink, "/etc"), F("a/passwd")}),
            "layer \"t\", tarball in.tar entry \"a/passwd\": cannot place "
            "/a/passwd: /a is declared as a symlink in this "
            "layer (tarball in.tar entry \"a\"), not a directory");
}

TEST_F(TarballPlanTest, RefusesWhatItWasNotToldToExpect) {
  Entry su = F("usr/bin/su");
  su.mode = 04755;
  EXPECT_EQ(TarError({su}),
            "layer \"t\": tarball in.tar entry \"usr/bin/su\" is setuid (mode "
            "4755); set allowSetuid: true on the tarball to keep setuid and "
            "setgid files");
  // More than the archive may unpack to: refused at the header that
  // crosses the limit.
  LayerSpec spec = Spec({F("a", "12345"), F("b", "67890")});
  spec.tarballs[0].max_unpacked_size = 8;
  host_ = NewHostFs();
  EXPECT_EQ(ErrorOf(spec, host_.get()),
            "layer \"t\": tarball in.tar entry \"b\" holds 5 B, which takes "
            "tarball in.tar past 8 B unpacked: its maxUnpackedSize");
  spec.tarballs[0].max_unpacked_size = 10;
  EXPECT_EQ(Summary(Plan(spec, host_.get())),
            "a file 0644 0:0\nb file 0644 0:0\n");
  // Names no runtime could unpack, or no SBOM could carry.
  EXPECT_NE(TarError({F(std::string(256, 'n'))})
                .find("is 256 bytes long, more than a Linux file system holds "
                      "(255)"),
            std::string::npos);
  EXPECT_NE(TarError({F("caf\xe9")}).find("\"/caf\xe9\" is not valid UTF-8"),
            std::string::npos);
}

TEST_F(TarballPlanTest, ChecksThePinBeforeReading) {
  LayerSpec spec = Spec({F("a")});
  spec.tarballs[0].sha256 = std::string(64, '0');
  host_ = NewHostFs();
  std::string e = ErrorOf(spec, host_.get());
  EXPECT_NE(e.find("tarballs[0]: in.tar has sha256 "), std::string::npos) << e;
  EXPECT_NE(
      e.find(
          ", but the template pins "
          "0000000000000000000000000000000000000000000000000000000000000000"),
      std::string::npos);
}

}  // namespace
}  // namespace kiln

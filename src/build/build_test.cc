#include "build/build.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include "core/temp_dir.h"
#include "image/diff.h"
#include "image/export.h"
#include "image/image.h"
#include "image/inspect.h"
#include "tar/tar_reader.h"

namespace kiln {
namespace {

class BuildTest : public ::testing::Test {
 protected:
  BuildResult BuildIn(const TempDir& ctx, const std::string& yaml,
                      int threads = 0, int64_t date = 0) {
    ctx.Write("kiln.yaml", yaml);
    BuildOptions o;
    o.load.path = ctx.path() + "/kiln.yaml";
    o.threads = threads;
    o.build_date = date;
    return Build(o, store_);
  }
  Tree Files(const std::string& ref) {
    FlattenOptions f;
    f.hash_files = true;
    return Flatten(OpenImage(ParseReference(ref), store_), f);
  }

  TempDir dir_;
  Store store_ = Store::Open(dir_.path() + "/store");
};

const char kApp[] = R"(apiVersion: kiln.dev/v1
name: app
version: 1.0.0
layers:
  - name: bin
    files:
      - {src: src, dest: /opt/app}
      - {dest: /etc/app.conf, content: "port=80\n", mode: "0600", owner: "1:2"}
    symlinks: [{path: /bin, target: usr/bin}]
    dirs: [/usr/bin]
config: {entrypoint: [/opt/app/run], env: {A: "1"}}
)";

void MakeSources(const TempDir& ctx, bool reverse, time_t mtime) {
  std::vector<std::pair<std::string, std::string>> files = {
      {"src/run", "#!/bin/true\n"},
      {"src/lib/a", std::string(3 << 20, 'a')},
      {"src/lib/b", "b"},
      {"src/doc", "d"}};
  if (reverse) std::reverse(files.begin(), files.end());
  for (const auto& [rel, content] : files) {
    std::string p = ctx.Write(rel, content, rel == "src/run" ? 0700 : 0600);
    struct utimbuf t {
      mtime, mtime
    };
    utime(p.c_str(), &t);
  }
}

TEST_F(BuildTest, SameInputsSameDigestWhateverTheHost) {
  TempDir a, b;
  MakeSources(a, false, 1000);
  MakeSources(b, true, 2000000000);
  chmod((b.path() + "/src/lib/b").c_str(), 0644);  // only the x bit matters
  BuildResult ra = BuildIn(a, kApp, 1);
  BuildResult rb = BuildIn(b, kApp, 4);
  EXPECT_EQ(ra.manifest.digest, rb.manifest.digest);
  EXPECT_FALSE(
      rb.tag_moved);  // the same version, the same content: nothing to do
  BuildResult later = BuildIn(
      a, std::string(kApp).replace(std::string(kApp).find("1.0.0"), 5, "1.0.1"),
      2, 86400);
  EXPECT_NE(later.manifest.digest, ra.manifest.digest);
  EXPECT_EQ(later.layers[0].diff_id == ra.layers[0].diff_id,
            false);  // mtimes are the build date
  Image image = OpenImage(ParseReference("app:1.0.1"), store_);
  EXPECT_EQ(image.config.created, "1970-01-02T00:00:00Z");
  EXPECT_EQ(image.manifest.annotations.at(annotation::kCreated),
            "1970-01-02T00:00:00Z");
  EXPECT_EQ(image.manifest.annotations.at(annotation::kVersion), "1.0.1");
}

TEST_F(BuildTest, TheTreeIsWhatTheTemplateSays) {
  TempDir ctx;
  MakeSources(ctx, false, 1000);
  BuildIn(ctx, kApp);
  Tree t = Files("app:1.0.0");
  ASSERT_NE(t.Find("opt/app/run"), nullptr);
  EXPECT_EQ(t.Find("opt/app/run")->mode, 0755u);
  EXPECT_EQ(t.Find("opt/app/lib/b")->mode, 0644u);
  EXPECT_EQ(t.Find("etc/app.conf")->mode, 0600u);
  EXPECT_EQ(t.Find("etc/app.conf")->uid, 1u);
  EXPECT_EQ(t.Find("etc/app.conf")->gid, 2u);
  EXPECT_EQ(t.Find("opt/app/lib/a")->sha256,
            Sha256Of(std::string(3 << 20, 'a')).hex());
  EXPECT_EQ(t.Find("bin")->link, "usr/bin");
}

TEST_F(BuildTest, ChildImagesReuseTheBaseLayersAndWhiteOutWhatTheyRemove) {
  TempDir ctx;
  MakeSources(ctx, false, 1000);
  BuildResult base = BuildIn(ctx, kApp);
  BuildResult child = BuildIn(ctx, R"(apiVersion: kiln.dev/v1
name: child
version: 2.0.0
base: app:1.0.0
layers:
  - name: more
    files: [{dest: /bin/tool, content: "t"}]
    remove: [/opt/app/lib]
accounts:
  users: [{name: svc, uid: 100}]
config: {cmd: [--serve]}
)");
  ASSERT_EQ(child.layers.size(), 3u);
  EXPECT_TRUE(child.layers[0].from_base);
  EXPECT_EQ(child.layers[0].blob.digest, base.layers[0].blob.digest);
  auto changes = DiffTrees(Files("app:1.0.0"), Files("child:2.0.0"));
  std::vector<std::string> got;
  for (const auto& c : changes)
    got.push_back((c.kind == PathChange::Kind::kAdded     ? "+"
                   : c.kind == PathChange::Kind::kRemoved ? "-"
                                                          : "~") +
                  c.path);
  EXPECT_EQ(got, (std::vector<std::string>{
                     "+/etc/group", "+/etc/passwd", "+/etc/shadow", "+/home",
                     "+/home/svc", "-/opt/app/lib", "-/opt/app/lib/a",
                     "-/opt/app/lib/b", "+/usr/bin/tool"}));
  Image image = OpenImage(ParseReference("child:2.0.0"), store_);
  EXPECT_EQ(*image.config.config.entrypoint,
            std::vector<std::string>{"/opt/app/run"});
  EXPECT_EQ(*image.config.config.cmd, std::vector<std::string>{"--serve"});
  EXPECT_EQ(image.manifest.annotations.at(annotation::kBaseName), "app:1.0.0");
  EXPECT_EQ(image.manifest.annotations.at(annotation::kBaseDigest),
            base.manifest.digest.ToString());
  EXPECT_EQ(image.config.history.size(), 3u);
}

TEST_F(BuildTest, ExportsRoundTrip) {
  TempDir ctx;
  MakeSources(ctx, false, 1000);
  BuildResult r = BuildIn(ctx, kApp);
  Image image = OpenImage(ParseReference("app:1.0.0"), store_);
  EXPECT_EQ(
      ExportImage(image, ParseReference("oci:" + ctx.path() + "/out"), store_),
      "oci:" + ctx.path() + "/out:1.0.0");
  Image copy =
      OpenImage(ParseReference("oci:" + ctx.path() + "/out:1.0.0"), store_);
  EXPECT_EQ(copy.descriptor.digest, r.manifest.digest);
  ExportImage(image, ParseReference("rootfs:" + ctx.path() + "/root.tar"),
              store_);
  ExportImage(image, ParseReference("docker-archive:" + ctx.path() + "/d.tar"),
              store_);
  EXPECT_TRUE(PathExists(ctx.path() + "/root.tar"));
  // A compressed name gets a compressed file, readable as what it says.
  ExportImage(image, ParseReference("rootfs:" + ctx.path() + "/root.tar.gz"),
              store_);
  auto reader = TarReader::Open(ctx.path() + "/root.tar.gz", "root.tar.gz");
  TarHeader h;
  size_t entries = 0;
  while (reader->Next(&h)) ++entries;
  EXPECT_EQ(entries, Files("app:1.0.0").size());
  std::string head = ReadFile(ctx.path() + "/root.tar.gz").substr(0, 2);
  EXPECT_EQ(head, "\x1f\x8b");
  EXPECT_TRUE(PathExists(ctx.path() + "/d.tar"));
}

TEST_F(BuildTest, NothingIsWrittenWhenTheTemplateIsWrong) {
  TempDir ctx;
  MakeSources(ctx, false, 1000);
  BuildIn(ctx, kApp);
  auto blobs = [&] {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(
             dir_.path() + "/store/blobs/sha256"))
      n += !e.is_directory();
    return n;
  };
  size_t before = blobs();
  std::string bad = kApp;
  bad.insert(bad.find("config:"),
             "  - name: broken\n    files: [{src: nope, dest: /x}]\n");
  try {
    BuildIn(ctx, bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_NE(e.message().find(
                  "files[0].src: \"nope\": no such file in the build context"),
              std::string::npos)
        << e.message();
  }
  EXPECT_EQ(blobs(), before);
  try {
    BuildIn(ctx, std::string(kApp).replace(std::string(kApp).find("layers:"), 0,
                                           "base: nosuch:1\n"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("kiln.yaml:4:7: base \"nosuch:1\": nosuch:1: no "
                               "such image in the store"),
              std::string::npos)
        << e.message();
  }
  EXPECT_EQ(blobs(), before);
}

}  // namespace
}  // namespace kiln

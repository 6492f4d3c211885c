#include "store/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "core/temp_dir.h"

namespace kiln {
namespace {

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    n += e.is_regular_file();
  return n;
}

Descriptor Manifest(const Store& store, const std::string& text) {
  return store.layout().PutBlob(
      std::string("{\"schemaVersion\":2,\"mediaType\":\"application/"
                  "vnd.oci.image.manifest.v1+json\",\"config\":") +
          "{\"mediaType\":\"application/"
          "vnd.oci.image.config.v1+json\",\"digest\":\"" +
          store.layout().PutBlob(text, media::kConfig).digest.ToString() +
          "\",\"size\":" + std::to_string(text.size()) + "},\"layers\":[]}",
      media::kManifest);
}

TEST(Store, CreatesALayoutWithAVersionedMarker) {
  TempDir dir;
  Store store = Store::Open(dir.path() + "/s");
  EXPECT_EQ(ReadFile(dir.path() + "/s/oci-layout"),
            "{\"imageLayoutVersion\":\"1.0.0\"}");
  EXPECT_EQ(ReadFile(dir.path() + "/s/kiln/store.json"),
            "{\"format\":\"kiln-store\",\"version\":1}\n");
  dir.Write("s/kiln/store.json", "{\"format\":\"kiln-store\",\"version\":9}");
  try {
    Store::Open(dir.path() + "/s");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), dir.path() +
                               "/s is a kiln store of format version 9; this "
                               "kiln reads version 1");
  }
}

std::string Tags(const Store& store) {
  std::string out;
  for (const auto& i : store.List())
    out += i.name + "=" + i.manifest.digest.hex().substr(0, 4) + "\n";
  return out;
}

std::string AttachmentTag(const std::string& name, const Descriptor& image,
                          const std::string& kind) {
  return name + ":sha256-" + image.digest.hex() + "." + kind;
}

TEST(Store, ReplacingATagDropsTheAttachmentsOfTheImageNoTagNamesAnyMore) {
  TempDir dir;
  Store store = Store::Open(dir.path());
  Descriptor m1 = Manifest(store, "{\"n\":1}"),
             m2 = Manifest(store, "{\"n\":2}");
  Descriptor sig = Manifest(store, "{\"sig\":1}"),
             att = Manifest(store, "{\"att\":1}"),
             disk = Manifest(store, "{\"disk\":1}"),
             disk_sig = Manifest(store, "{\"disksig\":1}");
  store.Tag("app:1", m1, false);
  store.Tag(AttachmentTag("app", m1, "sig"), sig, false);
  store.Tag(AttachmentTag("app", m1, "att"), att, false);
  store.Tag(AttachmentTag("app", m1, "disk"), disk, false);
  store.Tag(AttachmentTag("app", disk, "sig"), disk_sig, false);
  // What `kiln pull app@sha256:…` names: a tag, not an attachment.
  const std::string pinned = "app:sha256-" + m1.digest.hex().substr(0, 12);
  store.Tag(pinned, m1, false);
  store.Tag("app:2", m1, false);
  store.Tag("other:1", m1, false);
  const std::string all = Tags(store);

  // Other tags, of its name and another, still name m1: all stays.
  store.Tag("app:1", m2, true);
  store.Tag("app:2", m2, true);
  store.Tag(pinned, m2, true);
  const std::string moved = Tags(store);
  for (const auto& tag :
       {AttachmentTag("app", m1, "sig"), AttachmentTag("app", m1, "att"),
        AttachmentTag("app", m1, "disk"), AttachmentTag("app", disk, "sig")})
    EXPECT_NE(moved.find(tag + "="), std::string::npos) << tag;
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'),
            std::count(moved.begin(), moved.end(), '\n'));

  // The last tag moves: m1's attachments and the disk's go.
  EXPECT_TRUE(store.Tag("other:1", m2, true));
  const std::string m2_short = m2.digest.hex().substr(0, 4);
  EXPECT_EQ(Tags(store), "app:1=" + m2_short + "\napp:2=" + m2_short + "\n" +
                             pinned + "=" + m2_short + "\nother:1=" + m2_short +
                             "\n");
  EXPECT_TRUE(store.Fsck().ok());
}

TEST(Store, BlobsAppearWholeOrNotAtAll) {
  TempDir dir;
  Store store = Store::Open(dir.path());
  std::string blobs = dir.path() + "/blobs/sha256";
  {
    auto w = store.layout().NewBlob();
    w->Write("partial", 7);
    EXPECT_EQ(FilesIn(blobs), 1u);  // only the temp file
  }                                 // abandoned: removed
  EXPECT_EQ(FilesIn(blobs), 0u);
  Descriptor d = store.layout().PutBlob("hello", "text/plain");
  EXPECT_EQ(d.digest, Sha256Of("hello"));
  EXPECT_EQ(d.size, 5);
  EXPECT_EQ(FilesIn(blobs), 1u);
  struct stat st;
  ASSERT_EQ(stat(store.layout().BlobPath(d.digest).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  auto w = store.layout().NewBlob();
  w->Write("abc", 3);
  EXPECT_THROW(w->Commit("text/plain", Sha256Of("abd")),
               Error);  // verify before rename
  EXPECT_FALSE(store.layout().HasBlob(Sha256Of("abc")));
}

TEST(Store, ReadBlobRefusesRot) {
  TempDir dir;
  Store store = Store::Open(dir.path());
  Descriptor d = store.layout().PutBlob("{\"a\":1}", "application/json");
  EXPECT_EQ(store.layout().ReadBlob(d), "{\"a\":1}");
  WriteFileAtomic(store.layout().BlobPath(d.digest), "{\"a\":2}");
  EXPECT_THROW(store.layout().ReadBlob(d), Error);
}

TEST(Store, VersionsAreImmutable) {
  TempDir dir;
  Store store = Store::Open(dir.path());
  Descriptor one = Manifest(store, "{\"n\":1}");
  Descriptor two = Manifest(store, "{\"n\":2}");
  EXPECT_TRUE(store.Tag("app:1.0.0", one, false));
  EXPECT_FALSE(store.Tag("app:1.0.0", one, false));  // same content: no-op
  try {
    store.Tag("app:1.0.0", two, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_EQ(e.message(),
              "app:1.0.0 already holds " + one.digest.ToString() +
                  " and versions are immutable; this image is " +
                  two.digest.ToString() +
                  ". Bump the version, or pass --replace to move the tag");
  }
  EXPECT_EQ(store.Resolve(ParseReference("app:1.0.0")).digest, one.digest);
  EXPECT_TRUE(store.Tag("app:1.0.0", two, true));
  EXPECT_EQ(store.Resolve(ParseReference("app:1.0.0")).digest, two.digest);
  EXPECT_EQ(store.List().size(), 1u);
  EXPECT_EQ(
      store.Resolve(ParseReference("app@" + one.digest.ToString())).digest,
      one.digest);
  try {
    store.Resolve(ParseReference("app"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.message(),
              "app: name a tag or digest (the store has app:1.0.0)");
  }
}

TEST(Store, FsckFindsCorruptAndMissingBlobs) {
  TempDir dir;
  Store store = Store::Open(dir.path());
  Descriptor m = Manifest(store, "{\"n\":1}");
  store.Tag("app:1", m, false);
  EXPECT_TRUE(store.Fsck().ok());
  EXPECT_EQ(store.Fsck().blobs_checked, 2u);
  std::string config = store.layout().BlobPath(Sha256Of("{\"n\":1}"));
  WriteFileAtomic(config, "{\"n\":7}");
  FsckReport r = store.Fsck();
  ASSERT_EQ(r.corrupt.size(), 1u);
  EXPECT_EQ(r.corrupt[0], Sha256Of("{\"n\":1}").ToString() +
                              " (content hashes to " +
                              Sha256Of("{\"n\":7}").ToString() + ")");
  std::filesystem::remove(config);
  r = store.Fsck();
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0],
            Sha256Of("{\"n\":1}").ToString() + " (config of app:1)");
}

TEST(Store, FsckReportsTempFilesAnywhereAsLeftovers) {
  TempDir dir;
  Store store = Store::Open(dir.path());
  store.Tag("app:1", Manifest(store, "{\"n\":1}"), false);
  // What writes killed half-way leave: a blob's, index.json's, a cache
  // entry's temp file, a disk's scratch file. Not damage: leftovers.
  dir.Write("blobs/sha256/.tmp-blob-1", "part");
  dir.Write(".tmp-index.json-2", "{");
  dir.Write("kiln/cache/layers/.tmp-abc-3", "");
  dir.Write("kiln/tmp/disk-4/raw", "");
  dir.Write("kiln/cache/layers/abc", "an entry, not a temp file");
  FsckReport r = store.Fsck();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.leftovers, (std::vector<std::string>{
                             dir.path() + "/blobs/sha256/.tmp-blob-1",
                             dir.path() + "/.tmp-index.json-2",
                             dir.path() + "/kiln/cache/layers/.tmp-abc-3",
                             dir.path() + "/kiln/tmp/disk-4/raw"}));
}

TEST(Reference, ParsesEveryTransport) {
  Reference r = ParseReference("acme/app:1.4.2");
  EXPECT_EQ(r.kind, Reference::Kind::kStore);
  EXPECT_EQ(r.name, "acme/app");
  EXPECT_EQ(r.tag, "1.4.2");
  r = ParseReference("oci:/tmp/out:hello:1.0");
  EXPECT_EQ(r.kind, Reference::Kind::kOciLayout);
  EXPECT_EQ(r.path, "/tmp/out");
  EXPECT_EQ(r.tag, "hello:1.0");
  r = ParseReference("docker://localhost:5000/team/app@sha256:" +
                     std::string(64, 'a'));
  EXPECT_EQ(r.registry, "localhost:5000");
  EXPECT_EQ(r.name, "team/app");
  EXPECT_EQ(r.digest->hex(), std::string(64, 'a'));
  r = ParseReference("docker://alpine");
  EXPECT_EQ(r.registry, "docker.io");
  EXPECT_EQ(r.name, "library/alpine");
  EXPECT_EQ(r.tag, "");  // pull reads "latest"; push uses the source's tag
  r = ParseReference("docker-archive:/tmp/a.tar:app:2");
  EXPECT_EQ(r.path, "/tmp/a.tar");
  EXPECT_EQ(r.NameAndTag(), "app:2");
  EXPECT_EQ(ParseReference("rootfs:out.tar").path, "out.tar");
}

TEST(Reference, ErrorsNameTheText) {
  auto message = [](const std::string& text) {
    try {
      ParseReference(text);
    } catch (const Error& e) {
      return e.message();
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("App:1"),
            "reference \"App:1\": name \"App\" is not valid (lowercase "
            "letters, digits, . _ - and / between parts)");
  EXPECT_EQ(message("app:-x"),
            "reference \"app:-x\": tag \"-x\" is not valid (letters, digits, _ "
            ". -; at most 128)");
  EXPECT_EQ(message("app@sha256:12"),
            "reference \"app@sha256:12\": digest \"sha256:12\" is not "
            "sha256:<64 hex>");
  EXPECT_EQ(message("dir:/x"),
            "reference \"dir:/x\": unsupported transport (kiln reads NAME:TAG, "
            "oci:, docker://, "
            "docker-archive:, rootfs:, disk:)");
  EXPECT_EQ(message(""), "empty image reference");
}

}  // namespace
}  // namespace kiln

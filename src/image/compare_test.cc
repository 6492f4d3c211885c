#include "image/compare.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include "core/temp_dir.h"
#include "rootfs/entry_testing.h"
#include "tar/tar_writer.h"

namespace kiln {
namespace {

using nlohmann::json;
using test::DirEntry;
using test::FileEntry;

std::string Tar(const std::vector<Entry>& entries, int64_t mtime = 0) {
  std::string out;
  StringSink sink(&out);
  TarWriter tar(sink, mtime);
  for (const auto& e : entries) tar.Add(e);
  tar.Finish();
  return out;
}

// A tar libarchive writes, for what TarWriter never does (xattrs, GNU
// headers). Entries: {path, content, xattr name (or "")}.
struct Raw {
  std::string path;
  std::string content;
  std::string xattr;
};
std::string LibarchiveTar(const std::vector<Raw>& entries,
                          int format = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED) {
  struct archive* a = archive_write_new();
  archive_write_set_format(a, format);
  archive_write_set_bytes_in_last_block(a, 1);
  std::vector<char> buf(1 << 16);
  size_t used = 0;
  EXPECT_EQ(archive_write_open_memory(a, buf.data(), buf.size(), &used),
            ARCHIVE_OK);
  for (const auto& r : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, r.path.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(r.content.size()));
    if (!r.xattr.empty())
      archive_entry_xattr_add_entry(e, r.xattr.c_str(), "v", 1);
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    archive_write_data(a, r.content.data(), r.content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

std::unique_ptr<TarReader> Reader(const std::string& bytes) {
  auto done = std::make_shared<bool>(false);
  auto data = std::make_shared<std::string>(bytes);
  return TarReader::OpenStream(
      [done, data](const void** out) -> long {
        if (*done) return 0;
        *done = true;
        *out = data->data();
        return static_cast<long>(data->size());
      },
      "test tar");
}

TarComparison Compare(const std::string& a, const std::string& b) {
  auto ra = Reader(a);
  auto rb = Reader(b);
  return CompareTars(*ra, *rb);
}

const PropertyChange* Find(const EntryDifference& d, const std::string& p) {
  for (const auto& c : d.properties) {
    if (c.property == p) return &c;
  }
  return nullptr;
}

// The first differing entry differs in `property` alone, `a` against `b`.
void ExpectOnly(const TarComparison& c, const std::string& property,
                const std::string& a, const std::string& b) {
  ASSERT_TRUE(c.first);
  ASSERT_EQ(c.first->properties.size(), 1u);
  EXPECT_EQ(c.first->properties[0].property, property);
  EXPECT_EQ(c.first->properties[0].a, a);
  EXPECT_EQ(c.first->properties[0].b, b);
}

TEST(CompareTars, IdenticalTarsHaveNoDifference) {
  std::vector<Entry> e = {DirEntry("etc"), FileEntry("etc/a", "a\n")};
  TarComparison c = Compare(Tar(e), Tar(e));
  EXPECT_FALSE(c.first);
  EXPECT_EQ(c.entries_a, 2u);
  EXPECT_EQ(c.entries_b, 2u);
  EXPECT_EQ(c.differing, 0u);
}

TEST(CompareTars, Mtime) {
  std::vector<Entry> e = {DirEntry("etc"), FileEntry("etc/a", "a\n")};
  TarComparison c = Compare(Tar(e, 0), Tar(e, 1700000000));
  ASSERT_TRUE(c.first);
  EXPECT_EQ(c.first->index, 0u);
  EXPECT_EQ(c.first->path_a, "etc/");
  ExpectOnly(c, "mtime", "0 (1970-01-01T00:00:00Z)",
             "1700000000 (2023-11-14T22:13:20Z)");
  EXPECT_EQ(c.differing, 2u);
}

TEST(CompareTars, OwnerAndModeOfTheSecondEntry) {
  TarComparison c =
      Compare(Tar({DirEntry("etc"), FileEntry("etc/a", "a\n", 0644, 0)}),
              Tar({DirEntry("etc"), FileEntry("etc/a", "a\n", 0600, 1000)}));
  ASSERT_TRUE(c.first);
  EXPECT_EQ(c.first->index, 1u);
  EXPECT_EQ(c.first->path_a, "etc/a");
  EXPECT_EQ(c.first->path_b, "etc/a");
  const PropertyChange* mode = Find(*c.first, "mode");
  ASSERT_TRUE(mode);
  EXPECT_EQ(mode->a, "0644");
  EXPECT_EQ(mode->b, "0600");
  const PropertyChange* owner = Find(*c.first, "owner");
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->a, "0:0");
  EXPECT_EQ(owner->b, "1000:1000");
  EXPECT_FALSE(Find(*c.first, "content"));
  EXPECT_EQ(c.differing, 1u);
}

TEST(CompareTars, ContentWithDigestAndSize) {
  TarComparison c =
      Compare(Tar({FileEntry("a", "hello\n")}), Tar({FileEntry("a", "bye\n")}));
  ASSERT_TRUE(c.first);
  ExpectOnly(c, "content", Sha256Of("hello\n").ToString() + " 6 bytes",
             Sha256Of("bye\n").ToString() + " 4 bytes");
}

TEST(CompareTars, OrderAloneCountsNoEntryAsDiffering) {
  Entry a = FileEntry("a", "1"), b = FileEntry("b", "2"),
        z = FileEntry("z", "3");
  TarComparison c = Compare(Tar({a, b, z}), Tar({a, z, b}));
  ASSERT_TRUE(c.first);
  EXPECT_EQ(c.first->index, 1u);
  ExpectOnly(c, "order", "b", "z");
  EXPECT_EQ(c.differing, 0u);
}

TEST(CompareTars, OneTarEndsFirst) {
  TarComparison c = Compare(Tar({FileEntry("a", "1")}),
                            Tar({FileEntry("a", "1"), FileEntry("b", "2")}));
  ASSERT_TRUE(c.first);
  EXPECT_EQ(c.first->index, 1u);
  EXPECT_EQ(c.first->path_a, "");
  EXPECT_EQ(c.first->path_b, "b");
  EXPECT_EQ(c.first->properties[0].property, "order");
  EXPECT_EQ(c.first->properties[0].a, "(the layer has ended)");
  EXPECT_EQ(c.entries_a, 1u);
  EXPECT_EQ(c.entries_b, 2u);
  EXPECT_EQ(c.differing, 1u);
}

TEST(CompareTars, Xattr) {
  TarComparison c =
      Compare(LibarchiveTar({{"a", "x", ""}, {"b", "y", ""}}),
              LibarchiveTar({{"a", "x", ""}, {"b", "y", "user.k"}}));
  ASSERT_TRUE(c.first);
  EXPECT_EQ(c.first->index, 1u);
  EXPECT_EQ(c.first->path_a, "b");
  ExpectOnly(c, "xattrs", "(none)", "user.k=v");
}

TEST(CompareTars, TypeAndLink) {
  Entry link;
  link.path = "a";
  link.type = EntryType::kSymlink;
  link.mode = 0777;
  link.link = "target";
  TarComparison c = Compare(Tar({FileEntry("a", "")}), Tar({link}));
  ASSERT_TRUE(c.first);
  const PropertyChange* type = Find(*c.first, "type");
  ASSERT_TRUE(type);
  EXPECT_EQ(type->a, "file");
  EXPECT_EQ(type->b, "symlink");
  const PropertyChange* target = Find(*c.first, "link");
  ASSERT_TRUE(target);
  EXPECT_EQ(target->a, "(none)");
  EXPECT_EQ(target->b, "\"target\"");
}

TEST(CompareLayerBlobs, SameEntriesOtherHeaderBytesIsEncoding) {
  TempDir dir;
  std::vector<Raw> entries = {{"a", "1", ""}, {"b", "2", ""}};
  std::string pax = LibarchiveTar(entries, ARCHIVE_FORMAT_TAR_USTAR);
  std::string gnu = LibarchiveTar(entries, ARCHIVE_FORMAT_TAR_GNUTAR);
  ASSERT_NE(pax, gnu);
  TarComparison c = CompareLayerBlobs(dir.Write("a.tar", pax), "a",
                                      dir.Write("b.tar", gnu), "b");
  ASSERT_TRUE(c.first);
  EXPECT_EQ(c.first->index, 0u);
  EXPECT_EQ(c.first->path_a, "a");
  ASSERT_TRUE(c.first->offset);
  EXPECT_LT(*c.first->offset, 512u);  // in the first header
  ASSERT_EQ(c.first->properties.size(), 1u);
  const PropertyChange& p = c.first->properties[0];
  EXPECT_EQ(p.property, "encoding");
  auto hex = [](std::string_view bytes) {
    std::string out;
    for (unsigned char ch : bytes) {
      out += "0123456789abcdef"[ch >> 4];
      out += "0123456789abcdef"[ch & 15];
    }
    return out;
  };
  EXPECT_EQ(p.a, hex(std::string_view(pax).substr(*c.first->offset, 16)));
  EXPECT_EQ(p.b, hex(std::string_view(gnu).substr(*c.first->offset, 16)));
  EXPECT_NE(p.a, p.b);
}

TEST(CompareLayerBlobs, IdenticalBlobs) {
  TempDir dir;
  std::string t = Tar({FileEntry("a", "1")});
  TarComparison c =
      CompareLayerBlobs(dir.Write("a.tar", t), "a", dir.Write("b.tar", t), "b");
  EXPECT_FALSE(c.first);
}

TEST(DiffJson, FieldsByKeyAndIndex) {
  json a = {{"created", "1970-01-01T00:00:00Z"},
            {"config", {{"Env", {"A=1", "B=2"}}}},
            {"rootfs", {{"diff_ids", {"x"}}}},
            {"gone", 1}};
  json b = {{"created", "2023-11-14T22:13:20Z"},
            {"config", {{"Env", {"A=1", "B=3", "C=4"}}}},
            {"rootfs", {{"diff_ids", {"y"}}}}};
  auto changes = DiffJson(a, b, {"rootfs.diff_ids"});
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(changes[0].field, "config.Env[1]");
  EXPECT_EQ(*changes[0].a, "\"B=2\"");
  EXPECT_EQ(*changes[0].b, "\"B=3\"");
  EXPECT_EQ(changes[1].field, "config.Env[2]");
  EXPECT_FALSE(changes[1].a);
  EXPECT_EQ(changes[2].field, "created");
  EXPECT_EQ(changes[3].field, "gone");
  EXPECT_FALSE(changes[3].b);
}

}  // namespace
}  // namespace kiln

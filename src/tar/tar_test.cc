#include <gtest/gtest.h>

#include "core/temp_dir.h"
#include "digest/digest.h"
#include "rootfs/entry_testing.h"
#include "tar/tar_reader.h"
#include "tar/tar_writer.h"

namespace kiln {
namespace {

using test::FileEntry;

Entry Of(const std::string& path, EntryType type,
         const std::string& link = "") {
  Entry e;
  e.path = path;
  e.type = type;
  e.mode = type == EntryType::kDir ? 0755 : 0777;
  e.link = link;
  return e;
}

std::string Write(const std::vector<Entry>& entries,
                  int64_t mtime = 1700000000) {
  std::string out;
  StringSink sink(&out);
  TarWriter tar(sink, mtime);
  for (const auto& e : entries) tar.Add(e);
  tar.Finish();
  EXPECT_EQ(tar.bytes_written(), out.size());
  return out;
}

struct ReadBack {
  TarHeader header;
  std::string data;
};

std::vector<ReadBack> Read(const std::string& archive) {
  TempDir dir;
  std::string path = dir.Write("a.tar", archive);
  auto reader = TarReader::Open(path, "test archive", Sha256Of(archive));
  std::vector<ReadBack> out;
  TarHeader h;
  while (reader->Next(&h)) {
    ReadBack r{h, ""};
    StringSink sink(&r.data);
    reader->CopyData(sink);
    out.push_back(r);
  }
  return out;
}

TEST(Tar, RoundTripsEveryEntryType) {
  Entry dev = Of("dev/null", EntryType::kChar);
  dev.dev_major = 1;
  dev.dev_minor = 3;
  dev.mode = 0666;
  Entry owned = FileEntry("home/app/x", "data", 04755);
  owned.uid = 1000;
  owned.gid = 100;
  auto got =
      Read(Write({Of("bin", EntryType::kSymlink, "usr/bin"), dev,
                  Of("home", EntryType::kDir), owned,
                  Of("home/app/y", EntryType::kHardlink, "home/app/x")}));
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0].header.type, EntryType::kSymlink);
  EXPECT_EQ(got[0].header.link, "usr/bin");
  EXPECT_EQ(got[1].header.type, EntryType::kChar);
  EXPECT_EQ(got[1].header.dev_major, 1u);
  EXPECT_EQ(got[1].header.dev_minor, 3u);
  EXPECT_EQ(got[2].header.name, "home/");
  EXPECT_EQ(got[2].header.type, EntryType::kDir);
  EXPECT_EQ(got[3].header.mode, 04755u);
  EXPECT_EQ(got[3].header.uid, 1000u);
  EXPECT_EQ(got[3].header.gid, 100u);
  EXPECT_EQ(got[3].data, "data");
  EXPECT_EQ(got[4].header.type, EntryType::kHardlink);
  EXPECT_EQ(got[4].header.link, "home/app/x");
}

TEST(Tar, LongNamesUsePrefixThenPax) {
  std::string mid(150, 'm');   // fits ustar's prefix + name split
  std::string deep(300, 'd');  // needs a pax "path" record
  std::string link(200, 'l');
  Entry big_uid = FileEntry("u", "");
  big_uid.uid = 5000000;  // more than 7 octal digits
  auto got =
      Read(Write({FileEntry(mid + "/file", "1"), FileEntry("x/" + deep, "2"),
                  Of("s", EntryType::kSymlink, link), big_uid}));
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].header.name, mid + "/file");
  EXPECT_EQ(got[1].header.name, "x/" + deep);
  EXPECT_EQ(got[1].data, "2");
  EXPECT_EQ(got[2].header.link, link);
  EXPECT_EQ(got[3].header.uid, 5000000u);
}

TEST(Tar, HeadersCarryOnlyTheBuildDate) {
  std::string a = Write({FileEntry("f", "x")}, 1234567890);
  // mtime field: 12 bytes at offset 136, octal.
  EXPECT_EQ(a.substr(136, 11), "11145401322");
  // No user or group names from the host.
  EXPECT_EQ(a.substr(265, 32), std::string(32, '\0'));
  EXPECT_EQ(a.substr(297, 32), std::string(32, '\0'));
  EXPECT_EQ(a.size(), 512u * 2 + 1024);  // header, one data block, end blocks
}

TEST(Tar, SameEntriesSameBytes) {
  std::vector<Entry> entries = {Of("etc", EntryType::kDir),
                                FileEntry("etc/motd", "hi\n"),
                                FileEntry(std::string(120, 'p'), "p")};
  EXPECT_EQ(Write(entries), Write(entries));
  // The encoding is part of kiln's reproducibility promise: a change here
  // changes every image digest, so it must be deliberate.
  EXPECT_EQ(Sha256Of(Write(entries)).hex(),
            "6cbfe6c5fd7bde4d1a5454283b883d11e8018124de8706934e411bd1d911ab02");
}

TEST(Tar, ContentThatDoesNotMatchItsSizeIsAnError) {
  Entry e = FileEntry("f", "abc");
  e.size = 5;
  std::string out;
  StringSink sink(&out);
  TarWriter tar(sink, 0);
  EXPECT_THROW(tar.Add(e), Error);
}

TEST(Tar, ReaderRefusesATamperedBlob) {
  std::string archive = Write({FileEntry("f", "x")});
  TempDir dir;
  std::string path = dir.Write("a.tar", archive);
  Digest other = Sha256Of("something else");
  auto reader = TarReader::Open(path, "layer", other);
  TarHeader h;
  try {
    while (reader->Next(&h)) {
    }
    FAIL() << "a blob with another digest was read to the end";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("blob content hashes to " +
                               Sha256Of(archive).ToString()),
              std::string::npos);
  }
}

TEST(Tar, ReaderReportsTruncation) {
  std::string archive = Write({FileEntry("f", std::string(5000, 'x'))});
  TempDir dir;
  std::string path = dir.Write("a.tar", archive.substr(0, 1500));
  auto reader = TarReader::Open(path, "tarball t.tar");
  TarHeader h;
  ASSERT_TRUE(reader->Next(&h));
  std::string data;
  StringSink sink(&data);
  EXPECT_THROW(reader->CopyData(sink), Error);
}

}  // namespace
}  // namespace kiln

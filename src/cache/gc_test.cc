#include "cache/gc.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "core/fs.h"
#include "core/temp_dir.h"

namespace kiln {
namespace {

void SetMtime(const std::string& path, int64_t seconds) {
  struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0)
      << path;
}

TEST(Gc, RemovesTheScratchFoldersOfBuildsKilledADayAgo) {
  TempDir dir;
  Store store = Store::Open(dir.path());
  const std::string tmp = store.tmp_dir();
  const int64_t now = ::time(nullptr), two_days_ago = now - 2 * 86400;
  // A disk build killed two days ago: its disk file and a staged tree with
  // what an image holds (a read-only folder, links, a fifo, deep folders).
  dir.Write("kiln/tmp/disk-old/raw", "half a disk");
  std::string deep = tmp + "/disk-old/root/a/b/c/d/e/f/g/h/i/j";
  MakeDirs(deep);
  dir.Write("kiln/tmp/disk-old/root/a/b/c/d/e/f/g/h/i/j/file", "deep");
  dir.Write("kiln/tmp/disk-old/root/usr/bin/tool", "#!/bin/sh\n");
  ASSERT_EQ(::chmod((tmp + "/disk-old/root/usr/bin").c_str(), 0555), 0);
  ASSERT_EQ(::link((tmp + "/disk-old/root/usr/bin/tool").c_str(),
                   (tmp + "/disk-old/root/tool-hard").c_str()),
            0);
  // Links out of the folder: not followed.
  std::string outside = dir.Write("outside/dir/kept", "kept");
  ASSERT_EQ(::chmod(Dirname(outside).c_str(), 0555), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (tmp + "/disk-old/root/link").c_str()),
            0);
  ASSERT_EQ(
      ::symlink(Dirname(outside).c_str(), (tmp + "/disk-old/root/up").c_str()),
      0);
  ASSERT_EQ(::mkfifo((tmp + "/disk-old/root/fifo").c_str(), 0644), 0);
  SetMtime(tmp + "/disk-old", two_days_ago);
  // A build's folder of an hour ago, its staged files dated at the build
  // date: kept whole.
  dir.Write("kiln/tmp/disk-new/raw", "a disk");
  dir.Write("kiln/tmp/disk-new/root/etc/hostname", "image\n");
  SetMtime(tmp + "/disk-new/root/etc/hostname", 0);
  SetMtime(tmp + "/disk-new", now - 3600);

  GcOptions o;
  o.now = now;
  o.dry_run = true;
  GcReport dry = CollectGarbage(store, o);
  EXPECT_TRUE(PathExists(tmp + "/disk-old/root/usr/bin/tool"));
  EXPECT_EQ(dry.files_removed, 3u);
  EXPECT_EQ(dry.file_bytes_removed, 11u + 4u + 10u);

  o.dry_run = false;
  GcReport r = CollectGarbage(store, o);
  EXPECT_EQ(r.files_removed, 3u);
  EXPECT_FALSE(PathExists(tmp + "/disk-old"));
  EXPECT_TRUE(PathExists(tmp + "/disk-new/raw"));
  EXPECT_TRUE(PathExists(tmp + "/disk-new/root/etc/hostname"));
  EXPECT_EQ(ReadFile(outside), "kept");
  struct stat st;
  ASSERT_EQ(::stat(Dirname(outside).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);  // not made writable through a link
  EXPECT_EQ(store.Fsck().leftovers,
            (std::vector<std::string>{tmp + "/disk-new/raw",
                                      tmp + "/disk-new/root/etc/hostname"}));
}

}  // namespace
}  // namespace kiln

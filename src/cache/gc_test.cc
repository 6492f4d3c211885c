#include "cache/gc.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

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

TEST(Gc, RemovesTheScratchFoldersOfWritesKilledADayAgo) {
  TempDir dir;
  Store store = Store::Open(dir.path());
  const std::string tmp = store.tmp_dir();
  const int64_t now = ::time(nullptr), two_days_ago = now - 2 * 86400;
  // A disk build killed two days ago: its scratch file and an empty folder.
  dir.Write("kiln/tmp/disk-old/raw", "half a disk");
  MakeDirs(tmp + "/disk-old/esp/EFI");
  for (const char* p :
       {"disk-old/raw", "disk-old/esp/EFI", "disk-old/esp", "disk-old"})
    SetMtime(tmp + "/" + p, two_days_ago);
  // An old folder a writer still works in (a fresh file): kept, with it.
  dir.Write("kiln/tmp/disk-busy/raw", "being written");
  SetMtime(tmp + "/disk-busy", two_days_ago);
  // A build running now.
  dir.Write("kiln/tmp/disk-new/raw", "being written");

  GcOptions dry;
  dry.now = now;
  dry.dry_run = true;
  CollectGarbage(store, dry);
  EXPECT_TRUE(PathExists(tmp + "/disk-old/raw"));
  EXPECT_TRUE(PathExists(tmp + "/disk-old/esp/EFI"));

  GcOptions o;
  o.now = now;
  GcReport r = CollectGarbage(store, o);
  EXPECT_FALSE(PathExists(tmp + "/disk-old"));
  EXPECT_TRUE(PathExists(tmp + "/disk-busy/raw"));
  EXPECT_TRUE(PathExists(tmp + "/disk-new/raw"));
  EXPECT_TRUE(PathExists(tmp));
  EXPECT_EQ(r.files_removed, 1u);
  EXPECT_EQ(store.Fsck().leftovers,
            (std::vector<std::string>{tmp + "/disk-busy/raw",
                                      tmp + "/disk-new/raw"}));
}

}  // namespace
}  // namespace kiln

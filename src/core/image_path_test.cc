#include "core/image_path.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace kiln {
namespace {

TEST(ImagePath, NormalizesTemplatePaths) {
  std::string out, why;
  ASSERT_TRUE(NormalizeImagePath("/usr//bin/./hello/", &out, &why));
  EXPECT_EQ(out, "usr/bin/hello");
  ASSERT_TRUE(NormalizeImagePath("/", &out, &why));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(NormalizeImagePath("usr/bin", &out, &why));
  EXPECT_EQ(why, "must be an absolute path (start with /)");
  EXPECT_FALSE(NormalizeImagePath("/usr/../etc", &out, &why));
  EXPECT_EQ(why, "must not contain \"..\"");
}

TEST(ImagePath, RefusesArchiveNamesThatEscape) {
  std::string out, why;
  ASSERT_TRUE(NormalizeArchivePath("./usr/bin/", &out, &why));
  EXPECT_EQ(out, "usr/bin");
  EXPECT_FALSE(NormalizeArchivePath("/etc/passwd", &out, &why));
  EXPECT_FALSE(NormalizeArchivePath("a/../../etc", &out, &why));
  EXPECT_FALSE(NormalizeArchivePath("", &out, &why));
}

TEST(ImagePath, TreeOrderPutsChildrenRightAfterTheirParent) {
  std::vector<std::string> paths = {"a-b",   "a/z", "a", "a.c",
                                    "a/b/c", "a/b", "b"};
  std::sort(paths.begin(), paths.end(),
            [](const std::string& x, const std::string& y) {
              return PathLess(x, y);
            });
  EXPECT_EQ(paths, (std::vector<std::string>{"a", "a/b", "a/b/c", "a/z", "a-b",
                                             "a.c", "b"}));
}

TEST(ImagePath, ResolvesLinksInsideTheRoot) {
  std::string out;
  EXPECT_TRUE(ResolveInRoot("usr/bin", "../lib/x", &out));
  EXPECT_EQ(out, "usr/lib/x");
  EXPECT_TRUE(ResolveInRoot("bin", "/usr/bin", &out));
  EXPECT_EQ(out, "usr/bin");
  EXPECT_FALSE(ResolveInRoot("a", "../../../etc", &out));
  EXPECT_EQ(out, "etc");  // clamped at the root, as a runtime resolves it
}

TEST(ImagePath, WithinAndParents) {
  EXPECT_TRUE(PathWithin("a/b", "a"));
  EXPECT_TRUE(PathWithin("a", "a"));
  EXPECT_FALSE(PathWithin("ab", "a"));
  EXPECT_TRUE(PathWithin("x", ""));
  EXPECT_EQ(ParentPath("a/b/c"), "a/b");
  EXPECT_EQ(ParentPath("a"), "");
  EXPECT_EQ(BaseName("a/b/c"), "c");
}

}  // namespace
}  // namespace kiln

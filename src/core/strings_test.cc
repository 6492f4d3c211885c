#include "core/strings.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(Strings, ByteSizes) {
  EXPECT_EQ(ParseByteSize("1000"), 1000u);
  EXPECT_EQ(ParseByteSize("512M"), 512'000'000u);
  EXPECT_EQ(ParseByteSize("10G"), 10'000'000'000u);
  EXPECT_EQ(ParseByteSize("10GB"), 10'000'000'000u);
  EXPECT_EQ(ParseByteSize("1.5k"), 1500u);
  EXPECT_EQ(ParseByteSize("2GiB"), uint64_t{2} << 30);
  EXPECT_EQ(ParseByteSize("4Ki"), 4096u);
  EXPECT_EQ(ParseByteSize(""), std::nullopt);
  EXPECT_EQ(ParseByteSize("G"), std::nullopt);
  EXPECT_EQ(ParseByteSize("10X"), std::nullopt);
  EXPECT_EQ(ParseByteSize("-1"), std::nullopt);
  EXPECT_EQ(ParseByteSize("1.2.3"), std::nullopt);
  EXPECT_EQ(ParseByteSize("10i"), std::nullopt);
  EXPECT_EQ(ParseByteSize("."), std::nullopt);
  EXPECT_EQ(ParseByteSize(".5k"), 500u);
}

}  // namespace
}  // namespace kiln

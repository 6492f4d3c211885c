#include "core/strings.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(Strings, Utf8ValidPrefix) {
  EXPECT_EQ(Utf8ValidPrefix(""), 0u);
  EXPECT_EQ(Utf8ValidPrefix("plain"), 5u);
  EXPECT_EQ(Utf8ValidPrefix("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82"), 14u);
  EXPECT_EQ(Utf8ValidPrefix("caf\xe9"), 3u);            // Latin-1
  EXPECT_EQ(Utf8ValidPrefix("ab\xc3"), 2u);             // cut short
  EXPECT_EQ(Utf8ValidPrefix("a\xc0\xaf"), 1u);          // overlong "/"
  EXPECT_EQ(Utf8ValidPrefix("a\xed\xa0\x80"), 1u);      // a surrogate
  EXPECT_EQ(Utf8ValidPrefix("a\xf4\x90\x80\x80"), 1u);  // past U+10FFFF
  EXPECT_EQ(Utf8ValidPrefix("a\x80"), 1u);              // a lone continuation
  EXPECT_EQ(Utf8ValidPrefix("\xff\xfe"), 0u);
}

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

#include "common/utf8.h"

#include "gtest/gtest.h"

namespace idflow {
namespace {

TEST(Utf8Test, ValidTextIsKept) {
  for (std::string s : {"", "plain ascii", "投屏时 casting", "emoji \xF0\x9F\x98\x80 ok"}) {
    EXPECT_TRUE(IsValidUtf8(s)) << s;
    EXPECT_EQ(ToValidUtf8(s), s);
    EXPECT_FALSE(MakeValidUtf8(&s));
  }
}

TEST(Utf8Test, InvalidBytesBecomeEscapes) {
  EXPECT_EQ(ToValidUtf8(std::string("\x1f\x8b\xff", 3)), "\x1f\\x8b\\xff");
  // Overlong, surrogate, past U+10FFFF, truncated.
  for (std::string bad : {std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
                          std::string("\xF4\x90\x80\x80"), std::string("\xE6\x8A")}) {
    EXPECT_FALSE(IsValidUtf8(bad));
    std::string fixed = ToValidUtf8(bad);
    EXPECT_TRUE(IsValidUtf8(fixed)) << fixed;
    EXPECT_TRUE(MakeValidUtf8(&bad));
    EXPECT_EQ(bad, fixed);
  }
  // Valid neighbours survive.
  EXPECT_EQ(ToValidUtf8(std::string("a\xFFé", 4)), "a\\xffé");
}

}  // namespace
}  // namespace idflow

#include "collector/policy/text_normalize.h"

#include "gtest/gtest.h"

namespace idflow::policy {
namespace {

TEST(FoldForMatchTest, FoldsWidthCaseAndSpace) {
  EXPECT_EQ(FoldForMatch("ｉｄｍ sdk"), "idm sdk");
  EXPECT_EQ(FoldForMatch("IDM SDK"), "idm sdk");
  EXPECT_EQ(FoldForMatch("ＩＤＭ\u3000ＳＤＫ"), "idm sdk");
  EXPECT_EQ(FoldForMatch("  IDM \t\n SDK  "), "idm sdk");
  EXPECT_EQ(FoldForMatch("０１２！～"), "012!~");
  EXPECT_EQ(FoldForMatch("\u3000\u3000"), "");
  EXPECT_EQ(FoldForMatch(""), "");
}

TEST(FoldForMatchTest, KeepsOtherText) {
  EXPECT_EQ(FoldForMatch("小米 账号"), "小米 账号");
  EXPECT_EQ(FoldForMatch("Ä"), "Ä");                        // only ASCII letters are lowercased
  EXPECT_EQ(FoldForMatch("\xEF\xBC"), "\xEF\xBC");          // truncated UTF-8 is copied
  EXPECT_EQ(FoldForMatch("\xEF\xBD\xA1"), "\xEF\xBD\xA1");  // U+FF61 is not folded
}

TEST(FoldForMatchTest, SameFolded) {
  EXPECT_TRUE(SameFolded("ｉｄｍ sdk", "IDM  SDK"));
  EXPECT_FALSE(SameFolded("IDM SDK", "IDMSDK"));
  EXPECT_TRUE(SameFolded(" \u3000", ""));
  EXPECT_FALSE(SameFolded("IDM SDK", "IDM SDK2"));
  EXPECT_FALSE(SameFolded("IDM SDK x", "IDM SDK"));
  // Agrees with FoldForMatch on every pair of a few tricky inputs.
  const char* inputs[] = {
      "",   " ",    "a",        "A ",           " a", "a b",  "a  b",       "ａ\u3000ｂ", "Ａｂ",
      "ab", "a\tb", "\xEF\xBC", "\xEF\xBC\x81", "!",  "a b ", "ｉｄｍ sdk", "IDM SDK"};
  for (const char* x : inputs) {
    for (const char* y : inputs) {
      EXPECT_EQ(SameFolded(x, y), FoldForMatch(x) == FoldForMatch(y)) << x << " | " << y;
    }
  }
}

TEST(AsSentenceTest, OneCapitalStartAndOnePeriod) {
  EXPECT_EQ(AsSentence("sent to Xiaomi Inc."), "Sent to Xiaomi Inc.");
  EXPECT_EQ(AsSentence("kept with Xiaomi Inc.."), "Kept with Xiaomi Inc.");
  EXPECT_EQ(AsSentence("  No period "), "No period.");
  EXPECT_EQ(AsSentence("Done."), "Done.");
  EXPECT_EQ(AsSentence("小米."), "小米.");
}

}  // namespace
}  // namespace idflow::policy

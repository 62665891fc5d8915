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
}

}  // namespace
}  // namespace idflow::policy

// The one category list and its mirrors: the proto enum must carry the same
// names at position + 1, and every finding must be one a QA run understands.
#include "common/verdict_categories.h"

#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "idflow/v1/query.pb.h"

namespace idflow {
namespace {

TEST(VerdictCategoriesTest, ProtoEnumMirrorsTheList) {
  const google::protobuf::EnumDescriptor* d = idflow::v1::Category_descriptor();
  // CATEGORY_UNSPECIFIED plus one value per category, nothing else.
  ASSERT_EQ(static_cast<size_t>(d->value_count()), kCategoryCount + 1);
  for (const CategoryInfo& info : kCategories) {
    int number = static_cast<int>(info.category) + 1;
    const google::protobuf::EnumValueDescriptor* v = d->FindValueByNumber(number);
    ASSERT_NE(v, nullptr) << info.name;
    EXPECT_EQ(v->name(), absl::StrCat("CATEGORY_", absl::AsciiStrToUpper(std::string(info.name))));
  }
}

TEST(VerdictCategoriesTest, NamesAreUniqueAndRoundTrip) {
  std::set<std::string_view> names;
  for (const CategoryInfo& info : kCategories) {
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    auto back = CategoryFromName(info.name);
    ASSERT_TRUE(back.has_value()) << info.name;
    EXPECT_EQ(*back, info.category);
    EXPECT_NE(std::string(info.meaning), "") << info.name;
  }
  EXPECT_FALSE(CategoryFromName("no_such_category").has_value());
}

TEST(VerdictCategoriesTest, FindingsMatchTheDefinitions) {
  EXPECT_EQ(FindingOf(Category::kClear), Finding::kClear);
  for (Category c :
       {Category::kUndeclaredParty, Category::kOmitted, Category::kWrongRecipient,
        Category::kUndeclaredCookie, Category::kLifetimeExceeded, Category::kThirdPartyCookie}) {
    EXPECT_TRUE(IsViolation(c)) << CategoryName(c);
  }
  for (Category c : {Category::kLocalAcquisition, Category::kUnattributable,
                     Category::kNoCookiePolicy, Category::kSameAppIpc}) {
    EXPECT_EQ(FindingOf(c), Finding::kObservation) << CategoryName(c);
    EXPECT_FALSE(IsViolation(c));
  }
  // An unknown stored name must not pass a QA run silently.
  EXPECT_EQ(FindingOfName("from_a_newer_collector"), Finding::kViolation);
}

TEST(VerdictCategoriesTest, ProtoFindingMirrorsTheEnum) {
  EXPECT_EQ(static_cast<int>(Finding::kClear), idflow::v1::FINDING_CLEAR);
  EXPECT_EQ(static_cast<int>(Finding::kObservation), idflow::v1::FINDING_OBSERVATION);
  EXPECT_EQ(static_cast<int>(Finding::kViolation), idflow::v1::FINDING_VIOLATION);
}

}  // namespace
}  // namespace idflow

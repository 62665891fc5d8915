// docs/POLICY.md lists every verdict category of common/verdict_categories.h
// with its finding, so the documented table cannot drift from the code.
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/verdict_categories.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow {
namespace {

TEST(PolicyDocsTest, EveryCategoryHasARowWithItsFinding) {
  std::ifstream in(IDFLOW_SOURCE_DIR "/docs/POLICY.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  ASSERT_FALSE(doc.empty());
  size_t last = 0;
  for (const CategoryInfo& c : kCategories) {
    const std::string row =
        absl::StrCat("| `", c.name, "` | ", FindingName(c.finding), " | ", c.meaning, " |\n");
    const size_t at = doc.find(row);
    EXPECT_NE(at, std::string::npos) << "docs/POLICY.md lacks the row " << row;
    if (at == std::string::npos) continue;
    EXPECT_GT(at, last) << c.name << " is out of the header's order";
    last = at;
  }
}

}  // namespace
}  // namespace idflow

// The layouts corpus (tests/policy/testdata/layouts): statements and SDK
// lists written in the layouts vendors publish (labelled blocks in English
// and Chinese, Markdown, HTML and plain-text tables). Each imports to its
// checked-in expected policy, that policy loads, and lint reports exactly the
// clauses it lists as unmapped: none lost.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collector/policy/importer.h"
#include "collector/policy/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/real_policy.h"
#include "tests/testing/status_matchers.h"

namespace idflow::policy {
namespace {

namespace fs = std::filesystem;
using ::idflow::testing::IsOk;
using ::testing::HasSubstr;

const std::string kDir = std::string(IDFLOW_SOURCE_DIR) + "/tests/policy/testdata/layouts";
constexpr char kExpected[] = ".expected.yaml";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Documents() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kDir)) {
    const std::string name = e.path().filename().string();
    if (!absl::EndsWith(name, kExpected)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ExpectedPath(const std::string& doc) {
  return absl::StrCat(kDir, "/", doc.substr(0, doc.rfind('.')), kExpected);
}

PolicyFile OntologyFile() {
  return {"ontology.yaml", Slurp(std::string(IDFLOW_SOURCE_DIR) + "/policies/ontology.yaml")};
}

TEST(LayoutsCorpus, TwelveOrMoreDocumentsInEveryLayoutEachWithItsExpectedPolicy) {
  const std::vector<std::string> docs = Documents();
  EXPECT_GE(docs.size(), 12u);
  std::set<std::string> extensions;
  for (const std::string& d : docs) {
    extensions.insert(d.substr(d.rfind('.')));
    EXPECT_TRUE(fs::exists(ExpectedPath(d))) << d << " has no " << ExpectedPath(d);
  }
  EXPECT_EQ(extensions, (std::set<std::string>{".html", ".md", ".txt"}));
}

class LayoutsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LayoutsTest, ImportsToItsExpectedPolicy) {
  const std::string doc = GetParam();
  std::vector<std::string> warnings;
  auto st = ImportStatementText(Slurp(kDir + "/" + doc), doc, RealPolicy().ontology, &warnings);
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(StatementToYaml(*st), Slurp(ExpectedPath(doc)))
      << "re-generate after review: idflowctl policy import " << doc << " > " << ExpectedPath(doc);
  // Every clause kept as unmapped was reported, with the document's position.
  for (const Entry& e : st->entries) {
    for (const std::string& clause : e.unmapped) {
      EXPECT_TRUE(std::any_of(warnings.begin(), warnings.end(), [&](const std::string& w) {
        return absl::StartsWith(w, doc + ":") && absl::StrContains(w, "'" + clause + "'");
      })) << clause;
    }
  }
}

TEST_P(LayoutsTest, LintReportsExactlyTheListedUnmappedClauses) {
  const std::string doc = GetParam();
  const std::string yaml_name = doc.substr(0, doc.rfind('.')) + kExpected;
  auto p = LoadPolicyFromStrings(OntologyFile(), {{yaml_name, Slurp(ExpectedPath(doc))}}, {});
  ASSERT_THAT(p, IsOk());
  ASSERT_EQ(p->statements.size(), 1u);
  std::multiset<std::string> listed, reported;
  for (const Entry& e : p->statements[0].entries)
    listed.insert(e.unmapped.begin(), e.unmapped.end());
  for (const std::string& f : LintPolicy(*p)) {
    EXPECT_THAT(f, ::testing::Not(HasSubstr("lost to the verdicts")));
    const std::string marker = "shared-data clause '";
    if (size_t at = f.find(marker); at != std::string::npos) {
      EXPECT_THAT(f, ::testing::StartsWith(yaml_name + ":"));
      at += marker.size();
      reported.insert(f.substr(at, f.find("' maps", at) - at));
    }
  }
  EXPECT_EQ(reported, listed);
}

INSTANTIATE_TEST_SUITE_P(Corpus, LayoutsTest, ::testing::ValuesIn(Documents()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param.substr(0, p.param.rfind('.'));
                           for (char& c : n) {
                             if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(LayoutsLint, AClauseTheFileDoesNotListIsReportedLost) {
  // The expected policy of document 03 without its unmapped list.
  std::string yaml = Slurp(kDir + "/03_en_multivalue_nested.expected.yaml");
  const size_t at = yaml.find("    unmapped:\n");
  ASSERT_NE(at, std::string::npos);
  const size_t end = yaml.find("    purpose:", at);
  yaml.erase(at, end - at);
  auto p = LoadPolicyFromStrings(OntologyFile(), {{"03.yaml", yaml}}, {});
  ASSERT_THAT(p, IsOk());
  int lost = 0;
  for (const std::string& f : LintPolicy(*p)) lost += absl::StrContains(f, "lost to the verdicts");
  EXPECT_EQ(lost, 2);
}

TEST(LayoutsOptions, LayoutNamesRoundTripAndUnknownIsAnError) {
  for (const char* n : {"auto", "labelled", "markdown", "html", "text"}) {
    auto l = ParseLayout(n);
    ASSERT_THAT(l, IsOk());
    EXPECT_STREQ(LayoutName(*l), n);
  }
  EXPECT_FALSE(ParseLayout("pdf").ok());
}

}  // namespace
}  // namespace idflow::policy

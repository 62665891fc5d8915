#include "tools/report.h"

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::tools {
namespace {

using ::idflow::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<idflow::v1::Verdict> Sample() {
  idflow::v1::Verdict clear;
  clear.set_device("hub-1");
  clear.set_sdk("IDM SDK");
  clear.set_module("/opt/lib/libidm_sdk.so");
  clear.set_data_type("mac_address");
  clear.set_encoding("raw");
  clear.set_destination("idm.discovery.mi.com");
  clear.set_verdict("clear");
  clear.set_statement("interconnectivity-data-sharing");
  clear.set_statement_version("v20250508");
  clear.set_entry("idm-sdk");
  clear.set_explanation("IDM SDK sent mac_address, as declared.");
  clear.set_count(3);
  idflow::v1::Verdict bad = clear;
  bad.set_sdk("Lebo SDK");
  bad.set_module("/opt/lib/liblebo_sdk.so");
  bad.set_verdict("omitted");
  bad.set_entry("lebo-sdk");
  bad.set_explanation("Lebo SDK sent \"mac\" <&> but declares only device_name.");
  return {clear, bad};
}

TEST(ReportTest, TableShowsEveryVerdictWithExplanationAndSummary) {
  auto text = FormatVerdicts(Sample(), "table");
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("VERDICT"));
  EXPECT_THAT(*text, HasSubstr("libidm_sdk.so"));
  EXPECT_THAT(*text, HasSubstr("interconnectivity-data-sharing v20250508"));
  EXPECT_THAT(*text, HasSubstr("    IDM SDK sent mac_address, as declared."));
  EXPECT_THAT(*text, HasSubstr("2 verdict groups, 1 violations"));
}

TEST(ReportTest, JsonIsOneEscapedObjectPerVerdictWithTheContractFields) {
  auto text = FormatVerdicts(Sample(), "json");
  ASSERT_THAT(text, IsOk());
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  for (const char* field : {"device", "sdk", "module", "data_type", "encoding", "destination",
                            "verdict", "statement", "entry", "explanation", "count"}) {
    EXPECT_THAT(lines[1], HasSubstr(std::string("\"") + field + "\":")) << field;
  }
  EXPECT_THAT(lines[1], HasSubstr("\\\"mac\\\" <&>"));
  EXPECT_THAT(lines[0], HasSubstr("\"count\":3"));
}

TEST(ReportTest, JUnitFailsOnlyViolationsAndEscapesXml) {
  auto text = FormatVerdicts(Sample(), "junit");
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("tests=\"2\" failures=\"1\""));
  EXPECT_THAT(*text, HasSubstr("<failure type=\"omitted\""));
  EXPECT_THAT(*text, HasSubstr("&quot;mac&quot; &lt;&amp;&gt;"));
  EXPECT_THAT(*text, Not(HasSubstr("<&>")));
}

TEST(ReportTest, SarifListsViolationsAsResults) {
  auto text = FormatVerdicts(Sample(), "sarif");
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("\"version\":\"2.1.0\""));
  EXPECT_THAT(*text, HasSubstr("\"ruleId\":\"idflow/omitted\""));
  EXPECT_THAT(*text, Not(HasSubstr("\"ruleId\":\"idflow/clear\"")));
}

TEST(ReportTest, UnknownFormatIsAnError) { EXPECT_FALSE(FormatVerdicts(Sample(), "xml").ok()); }

}  // namespace
}  // namespace idflow::tools

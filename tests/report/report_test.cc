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
  bad.set_finding(idflow::v1::FINDING_VIOLATION);
  clear.set_finding(idflow::v1::FINDING_CLEAR);
  return {clear, bad};
}

// A program reading its own MAC: shown, never failing.
idflow::v1::Verdict Observation() {
  idflow::v1::Verdict o;
  o.set_device("hub-1");
  o.set_module("/usr/bin/cat");
  o.set_exe("/usr/bin/cat");
  o.set_data_type("mac_address");
  o.set_encoding("raw");
  o.set_action("acquire");
  o.set_verdict("local_acquisition");
  o.set_finding(idflow::v1::FINDING_OBSERVATION);
  o.set_explanation("cat read mac_address without sending it.");
  o.set_count(1);
  return o;
}

TEST(ReportTest, TableShowsEveryVerdictWithExplanationAndSummary) {
  auto text = FormatVerdicts(Sample(), "table");
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("VERDICT"));
  EXPECT_THAT(*text, HasSubstr("libidm_sdk.so"));
  EXPECT_THAT(*text, HasSubstr("interconnectivity-data-sharing v20250508"));
  EXPECT_THAT(*text, HasSubstr("    IDM SDK sent mac_address, as declared."));
  EXPECT_THAT(*text, HasSubstr("2 verdict groups: 1 violations, 0 observations, 1 clear"));
}

TEST(ReportTest, ObservationsAreCountedApartAndNeverFail) {
  std::vector<idflow::v1::Verdict> v = {Observation()};
  EXPECT_FALSE(IsViolation(v[0]));
  auto table = FormatVerdicts(v, "table");
  ASSERT_THAT(table, IsOk());
  EXPECT_THAT(*table, HasSubstr("observation  local_acquisition"));
  EXPECT_THAT(*table, HasSubstr("1 verdict groups: 0 violations, 1 observations, 0 clear"));
  auto junit = FormatVerdicts(v, "junit");
  ASSERT_THAT(junit, IsOk());
  EXPECT_THAT(*junit, HasSubstr("failures=\"0\""));
  EXPECT_THAT(*junit, HasSubstr("<system-out>observation local_acquisition"));
  auto sarif = FormatVerdicts(v, "sarif");
  ASSERT_THAT(sarif, IsOk());
  EXPECT_THAT(*sarif, HasSubstr("\"ruleId\":\"idflow/local_acquisition\",\"level\":\"note\""));
}

TEST(ReportTest, FindingFallsBackToTheCategoryName) {
  idflow::v1::Verdict v;
  v.set_verdict("same_app_ipc");
  EXPECT_EQ(FindingOfVerdict(v), Finding::kObservation);
  v.set_verdict("omitted");
  EXPECT_TRUE(IsViolation(v));
  v.set_verdict("a_category_from_the_future");
  EXPECT_TRUE(IsViolation(v));
}

TEST(ReportTest, JsonIsOneEscapedObjectPerVerdictWithTheContractFields) {
  auto text = FormatVerdicts(Sample(), "json");
  ASSERT_THAT(text, IsOk());
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  for (const char* field :
       {"device", "sdk", "module", "data_type", "encoding", "destination", "verdict", "statement",
        "entry", "explanation", "count", "finding", "call_chain"}) {
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

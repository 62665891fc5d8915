#include "tools/report.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/verdict_categories.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/report/validators.h"
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
  EXPECT_THAT(*sarif, HasSubstr("\"ruleId\":\"idflow/local_acquisition\",\"ruleIndex\":11,"
                                "\"kind\":\"fail\",\"level\":\"note\""));
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

TEST(ReportTest, SarifListsViolationsAsFailuresAndClearFlowsAsPasses) {
  auto text = FormatVerdicts(Sample(), "sarif");
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("\"version\":\"2.1.0\""));
  EXPECT_THAT(*text, HasSubstr("\"ruleId\":\"idflow/omitted\",\"ruleIndex\":2,\"kind\":\"fail\","
                               "\"level\":\"error\""));
  EXPECT_THAT(*text, HasSubstr("\"ruleId\":\"idflow/clear\",\"ruleIndex\":0,\"kind\":\"pass\","
                               "\"level\":\"none\""));
}

TEST(ReportTest, UnknownFormatIsAnError) { EXPECT_FALSE(FormatVerdicts(Sample(), "xml").ok()); }

// The demo's groups: IDM clear (twice), Lebo omitted (twice), an undeclared
// party without an entry, an observation; hostile text in explanations and
// snippets.
std::vector<idflow::v1::Verdict> DemoLike() {
  std::vector<idflow::v1::Verdict> v = Sample();
  idflow::v1::Verdict idm2 = v[0];
  idm2.set_data_type("device_id");
  v.push_back(idm2);
  idflow::v1::Verdict lebo2 = v[1];
  lebo2.set_data_type("oaid");
  lebo2.set_snippet("POST /cast?oaid=[oaid:raw] \x01 <b>&");
  lebo2.set_destination("cast.hpplay.com.cn");
  v.push_back(lebo2);
  idflow::v1::Verdict mystery;
  mystery.set_device("hub-1");
  mystery.set_module("/opt/my libs/libmystery_sdk.so");
  mystery.set_data_type("oaid");
  mystery.set_encoding("md5");
  mystery.set_destination("collect.adnet.example");
  mystery.set_action("transmit");
  mystery.set_verdict("undeclared_party");
  mystery.set_finding(idflow::v1::FINDING_VIOLATION);
  mystery.set_statement("interconnectivity-data-sharing");
  mystery.set_statement_version("v20250508");
  mystery.set_explanation("libmystery_sdk.so is named in no statement </failure>]]>");
  mystery.set_snippet("id=[oaid:md5]&t=\xff");
  mystery.set_count(2);
  v.push_back(mystery);
  v.push_back(Observation());
  return v;
}

RunSummary FailedRun() {
  RunSummary run;
  run.run_id = "run-<1>";
  run.command = {"idflow-demo-host", "--oaid", "x'y\"z"};
  run.exit_code = 3;
  run.exit_text = "exited 3";
  run.started_unix_ms = 1700000000123;
  run.finished_unix_ms = 1700000001456;
  run.events_judged = 9;
  run.events_lost = 0;
  ContextChange first, second;
  first.at_unix_ms = 1700000000200;
  first.scenarios = {"device_discovery"};
  first.consents = {{"user_experience_program", true}};
  second.at_unix_ms = 1700000000900;
  second.scenarios = {"casting<&>"};
  second.consents = {{"user_experience_program", false}};
  run.context = {first, second};
  return run;
}

RunSummary LaterRun() {
  RunSummary run = FailedRun();
  run.later = true;
  return run;
}

idflow::v1::StoredEvent EventAt(int64_t ms, const std::string& scenario, bool consent) {
  idflow::v1::StoredEvent e;
  e.mutable_event()->set_first_seen_unix_ms(ms);
  e.mutable_event()->mutable_context()->add_scenarios(scenario);
  (*e.mutable_event()->mutable_context()->mutable_consents())["ux"] = consent;
  return e;
}

TEST(ContextTimelineTest, OneChangeEachTimeTheContextDiffersInTimeOrder) {
  // Newest first, as the collector lists them.
  std::vector<idflow::v1::StoredEvent> events = {
      EventAt(500, "casting", false), EventAt(400, "casting", false),
      EventAt(300, "device_discovery", false), EventAt(100, "device_discovery", true),
      EventAt(200, "device_discovery", true)};
  std::vector<ContextChange> t = ContextTimeline(events);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].at_unix_ms, 100);
  EXPECT_EQ(t[1].at_unix_ms, 300);
  EXPECT_EQ(t[1].consents.at("ux"), false);
  EXPECT_EQ(t[2].at_unix_ms, 400);
  EXPECT_EQ(t[2].scenarios, std::vector<std::string>{"casting"});
  EXPECT_TRUE(ContextTimeline({}).empty());
}

TEST(ReportTest, EveryFormatShowsTheContextTimeline) {
  const RunSummary run = FailedRun();
  auto table = FormatReport(DemoLike(), "table", &run);
  ASSERT_THAT(table, IsOk());
  EXPECT_THAT(*table, HasSubstr("context from 2023-11-14T22:13:20.900Z: scenarios [casting<&>], "
                                "consents [user_experience_program=false]"));
  auto json = FormatReport(DemoLike(), "json", &run);
  ASSERT_THAT(json, IsOk());
  EXPECT_THAT(*json, HasSubstr("\"context_changes\":[{\"at_unix_ms\":1700000000200,"
                               "\"scenarios\":[\"device_discovery\"],"
                               "\"consents\":{\"user_experience_program\":true}}"));
  auto html = FormatReport(DemoLike(), "html", &run);
  ASSERT_THAT(html, IsOk());
  EXPECT_THAT(*html, HasSubstr("scenarios [casting&lt;&amp;&gt;]"));
  // A report made later has no command to speak of.
  const RunSummary later = LaterRun();
  auto junit = FormatReport(DemoLike(), "junit", &later);
  ASSERT_THAT(junit, IsOk());
  EXPECT_THAT(*junit, Not(HasSubstr("test command")));
  EXPECT_THAT(*FormatReport(DemoLike(), "table", &later),
              HasSubstr("run run-<1> (reported from the collector)"));
}

TEST(ReportTest, JUnitIsOneTestCasePerEntryExercisedFailingWithItsViolations) {
  auto text = FormatVerdicts(DemoLike(), "junit");
  ASSERT_THAT(text, IsOk());
  // idm-sdk, lebo-sdk, libmystery_sdk.so (no entry), cat (no entry).
  EXPECT_THAT(*text, HasSubstr("name=\"idflow.statement-entries\" tests=\"4\" failures=\"2\""));
  EXPECT_THAT(*text, HasSubstr("<testcase classname=\"interconnectivity-data-sharing v20250508\" "
                               "name=\"lebo-sdk\">\n      <failure type=\"omitted\" "
                               "message=\"2 violations (omitted): "));
  EXPECT_THAT(*text, HasSubstr("name=\"idm-sdk\">\n      <system-out>clear clear: "));
  EXPECT_THAT(*text, HasSubstr("classname=\"idflow.no-entry\" name=\"libmystery_sdk.so\""));
  EXPECT_THAT(*text, Not(HasSubstr("</failure>]]>")));
  EXPECT_THAT(*text, HasSubstr("\\x01"));
}

TEST(ReportTest, JUnitReportsTheCommandFailureApartFromTheEntries) {
  const RunSummary run = FailedRun();
  auto text = FormatReport(DemoLike(), "junit", &run);
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("<testsuites name=\"idflow\" tests=\"5\" failures=\"2\" "
                               "errors=\"1\">"));
  EXPECT_THAT(*text, HasSubstr("<error type=\"command_failed\" message=\"the test command "
                               "exited 3\"/>"));
  EXPECT_THAT(*text, HasSubstr("<property name=\"run_id\" value=\"run-&lt;1&gt;\"/>"));
}

TEST(ReportTest, SarifHasOneRulePerCategoryAndResultsCarryTheFlow) {
  const RunSummary run = FailedRun();
  auto text = FormatReport(DemoLike(), "sarif", &run);
  ASSERT_THAT(text, IsOk());
  const auto doc = nlohmann::json::parse(*text);
  const auto& sarif_run = doc["runs"][0];
  const auto& rules = sarif_run["tool"]["driver"]["rules"];
  ASSERT_EQ(rules.size(), kCategoryCount);
  for (size_t i = 0; i < kCategoryCount; ++i) {
    EXPECT_EQ(rules[i]["id"], absl::StrCat("idflow/", kCategories[i].name));
  }
  const auto& results = sarif_run["results"];
  ASSERT_EQ(results.size(), DemoLike().size());
  const auto& mystery = results[4];
  EXPECT_EQ(mystery["ruleId"], "idflow/undeclared_party");
  EXPECT_EQ(rules[mystery["ruleIndex"].get<int>()]["id"], "idflow/undeclared_party");
  EXPECT_EQ(mystery["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "file:///opt/my%20libs/libmystery_sdk.so");
  EXPECT_EQ(mystery["properties"]["module"], "/opt/my libs/libmystery_sdk.so");
  EXPECT_EQ(mystery["properties"]["destination"], "collect.adnet.example");
  EXPECT_EQ(mystery["properties"]["encoding"], "md5");
  EXPECT_EQ(mystery["properties"]["snippet"], "id=[oaid:md5]&t=\\xff");
  EXPECT_FALSE(results[0]["properties"].contains("snippet"));  // the verdict has none
  EXPECT_EQ(sarif_run["properties"]["command_exit_code"], 3);
  EXPECT_EQ(sarif_run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"],
            "the test command exited 3");
}

TEST(ReportTest, HtmlIsOnePageWithInlineStyleAndEveryTextEscaped) {
  const RunSummary run = FailedRun();
  auto text = FormatReport(DemoLike(), "html", &run);
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(*text, HasSubstr("<style>"));
  for (const char* external :
       {"<link", "<script", "src=", "href=", "http://", "https://", "url("}) {
    EXPECT_THAT(*text, Not(HasSubstr(external))) << external;
  }
  EXPECT_THAT(*text, HasSubstr("&quot;mac&quot; &lt;&amp;&gt;"));
  EXPECT_THAT(*text, HasSubstr("&lt;/failure&gt;]]&gt;"));
  EXPECT_THAT(*text, HasSubstr("&lt;b&gt;&amp;"));
  EXPECT_THAT(*text, Not(HasSubstr("<b>")));
  EXPECT_THAT(*text, HasSubstr("run-&lt;1&gt;"));
  EXPECT_THAT(*text, HasSubstr("x&#39;y&quot;z"));
  EXPECT_THAT(*text, HasSubstr("class=\"failed\">exited 3"));
  EXPECT_THAT(*text, HasSubstr("6 verdict groups: <strong>3 violations</strong>, 1 observations, "
                               "2 clear."));
}

std::string WriteReport(const std::string& name, const std::string& text) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/report_test-", ::getpid(), "-", name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Every shape a report takes: empty, clear only, with violations, with the
// run and a failed command.
std::vector<std::pair<std::string, std::string>> EveryReport(const std::string& format) {
  const RunSummary run = FailedRun(), later = LaterRun();
  std::vector<std::pair<std::string, std::string>> out;
  const std::vector<idflow::v1::Verdict> clear_only = {Sample()[0]};
  int i = 0;
  for (const auto& [verdicts, with_run] :
       std::vector<std::pair<std::vector<idflow::v1::Verdict>, const RunSummary*>>{
           {{}, nullptr},
           {clear_only, nullptr},
           {DemoLike(), nullptr},
           {DemoLike(), &run},
           {{}, &run},
           {DemoLike(), &later}}) {
    auto text = FormatReport(verdicts, format, with_run);
    EXPECT_THAT(text, IsOk());
    if (text.ok()) out.emplace_back(WriteReport(absl::StrCat(format, "-", i++), *text), *text);
  }
  return out;
}

TEST(ReportValidation, JUnitPassesXmllintAgainstTheJUnitSchema) {
  for (const auto& [path, text] : EveryReport("junit")) {
    EXPECT_TRUE(idflow::testing::ValidJUnit(path)) << text;
  }
}

TEST(ReportValidation, SchemaRefusesWhatJUnitReadersRefuse) {
  // The check is real: a test case without a name is refused.
  const std::string path = WriteReport(
      "bad.xml",
      "<testsuites><testsuite name=\"s\" tests=\"1\"><testcase/></testsuite></testsuites>");
  EXPECT_FALSE(idflow::testing::ValidJUnit(path));
}

TEST(ReportValidation, SarifPassesTheSarif210SchemaWithAjv) {
  IDFLOW_REQUIRE_SARIF_VALIDATOR();
  for (const auto& [path, text] : EveryReport("sarif")) {
    EXPECT_TRUE(idflow::testing::ValidSarif(path)) << text;
  }
  // The check is real: a result without a message is refused.
  const std::string bad =
      WriteReport("bad.sarif",
                  "{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"x\"}},"
                  "\"results\":[{\"ruleId\":\"r\"}]}]}");
  EXPECT_FALSE(idflow::testing::ValidSarif(bad));
}

}  // namespace
}  // namespace idflow::tools

// `idflowctl qa` as a QA pipeline runs it: an embedded agent and collector,
// the test command under the tap, a report every reader accepts, and exit
// codes that gate the run.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/report/validators.h"
#include "tests/tools/ctl_runner.h"

namespace idflow::tools {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Test data, not real identifiers (the demo's values).
constexpr char kDeviceId[] = "c3f19a7e42d86b05";
constexpr char kOaid[] = "5a0e3c7f-21d4-4b8e-9c6a-0f7e2d1b3a49";

std::string Identity() {
  const std::string path = TempPath("identity.yaml");
  Spit(path, absl::StrCat("device:\n  id: qa-test-0001\n  class: qa-phone\nidentifiers:\n"
                          "  - kind: oaid\n    value: \"",
                          kOaid, "\"\n  - kind: device_id\n    value: \"", kDeviceId, "\"\n"));
  return path;
}

// The demo app: Lebo omits what it sends, an undeclared SDK sends the OAID.
// Wrapped so that the command itself fails too (exit 3), which must not
// hide the violations.
std::vector<std::string> LeakingFailingCommand() {
  return {"sh",     "-c", "\"$0\" \"$@\"; exit 3", DEMO_HOST_PATH, "--device-id", kDeviceId,
          "--oaid", kOaid};
}

std::vector<std::string> Qa(const std::vector<std::string>& flags,
                            const std::vector<std::string>& command) {
  std::vector<std::string> args = {"qa", "--identity", Identity(), "--scenario",
                                   "device_discovery"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

TEST(QaCommandTest, LeakingCommandExits1WithAJUnitReportXmllintAccepts) {
  const std::string out = TempPath("leak.xml");
  Result r =
      Ctl(Qa({"--format", "junit", "--out", out, "--run-id", "ci-42"}, LeakingFailingCommand()));
  EXPECT_EQ(r.exit, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("the test command exited 3"));
  EXPECT_THAT(r.out, Not(HasSubstr("<testsuites")));  // the report went to --out
  const std::string xml = Slurp(out);
  EXPECT_THAT(xml, HasSubstr("<failure type=\"undeclared_party\""));
  EXPECT_THAT(xml, HasSubstr("name=\"lebo-sdk\">\n      <failure type=\"omitted\""));
  EXPECT_THAT(xml, HasSubstr("name=\"idm-sdk\">\n      <system-out>clear clear: "));
  EXPECT_THAT(xml,
              HasSubstr("<error type=\"command_failed\" message=\"the test command exited 3\""));
  EXPECT_THAT(xml, HasSubstr("<property name=\"run_id\" value=\"ci-42\"/>"));
  EXPECT_TRUE(idflow::testing::ValidJUnit(out)) << xml;
}

TEST(QaCommandTest, LeakingCommandExits1WithASarifReportTheSchemaAccepts) {
  IDFLOW_REQUIRE_SARIF_VALIDATOR();
  const std::string out = TempPath("leak.sarif");
  Result r = Ctl(Qa({"--format", "sarif", "--out", out}, LeakingFailingCommand()));
  EXPECT_EQ(r.exit, 1) << r.err;
  const std::string sarif = Slurp(out);
  EXPECT_THAT(sarif, HasSubstr("\"ruleId\":\"idflow/undeclared_party\""));
  EXPECT_THAT(sarif, HasSubstr("\"destination\":\"collect.adnet.example\""));
  EXPECT_THAT(sarif, HasSubstr("\"command_exit_code\":3"));
  EXPECT_TRUE(idflow::testing::ValidSarif(out)) << sarif;
}

TEST(QaCommandTest, CompliantCommandExits0AndSaysHowMuchWasJudged) {
  Result r = Ctl(Qa({"--format", "json"}, {"sh", "-c", "echo nothing to share"}));
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"exit_code\":0"));
  EXPECT_THAT(r.out, HasSubstr("\"violations\":0"));
  EXPECT_THAT(r.err, HasSubstr(": 0 violations in 0 verdict groups; 0 events judged, 0 lost"));
}

TEST(QaCommandTest, FailingCommandWithoutViolationsIsReportedAndExits0) {
  const std::string out = TempPath("failing.html");
  Result r = Ctl(Qa({"--format", "html", "--out", out}, {"sh", "-c", "exit 5"}));
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("the test command exited 5"));
  EXPECT_THAT(Slurp(out), HasSubstr("class=\"failed\">exited 5"));
}

TEST(QaCommandTest, UsageErrorsExit2) {
  EXPECT_EQ(Ctl({"qa"}).exit, 2);
  EXPECT_EQ(Ctl({"qa", "--"}).exit, 2);
  EXPECT_EQ(Ctl({"qa", "--format", "xml", "--", "true"}).exit, 2);
  EXPECT_EQ(Ctl({"qa", "--consent", "ux", "--", "true"}).exit, 2);
  EXPECT_EQ(Ctl({"qa", "--no-such-flag", "--", "true"}).exit, 2);
  EXPECT_EQ(Ctl({"qa", "--timeout", "0", "--", "true"}).exit, 2);
  EXPECT_EQ(Ctl({"qa", "--policies", TempPath("no-such-dir"), "--", "true"}).exit, 2);
  Result r = Ctl({"qa", "--identity", TempPath("no-such-identity.yaml"), "--", "true"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, HasSubstr("no-such-identity.yaml"));
}

}  // namespace
}  // namespace idflow::tools

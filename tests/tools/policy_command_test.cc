// `idflowctl policy …` as a subprocess: exit codes, output, files written.
#include <unistd.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow::tools {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

const std::string kSource = IDFLOW_SOURCE_DIR;
// Seed 002 as checked in with the fuzz corpus (same bytes as ../shared/seeds).
const std::string kSeed002 = kSource + "/tests/fuzz/corpus/fuzz_statement_importer/seed002.txt";
const std::string kPolicies = kSource + "/policies";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string Quote(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

struct Result {
  int exit = -1;
  std::string out;
  std::string err;
};

// Runs idflowctl with `args` from `cwd`, capturing stdout and stderr in files.
Result Ctl(const std::vector<std::string>& args, const std::string& cwd = kSource) {
  // Per process: ctest runs the tests of this binary in parallel processes.
  const std::string dir = absl::StrCat(::testing::TempDir(), "/policy_command_test-", ::getpid());
  fs::create_directories(dir);
  const std::string out = dir + "/idflowctl.out";
  const std::string err = dir + "/idflowctl.err";
  std::string cmd = absl::StrCat("cd ", Quote(cwd), " && ", Quote(IDFLOWCTL_PATH));
  for (const std::string& a : args) absl::StrAppend(&cmd, " ", Quote(a));
  absl::StrAppend(&cmd, " >", Quote(out), " 2>", Quote(err));
  const int status = std::system(cmd.c_str());
  Result r;
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

std::string TempPath(const std::string& name) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/policy_command_test-", ::getpid());
  fs::create_directories(dir);
  return dir + "/" + name;
}

// A scratch dir holding seeds/002_46d1b234ed020678.txt, so that the import
// cites it as seeds/<name> like the checked-in statement does.
std::string SeedDir() {
  const std::string dir = TempPath("seedroot");
  fs::create_directories(dir + "/seeds");
  const std::string seed = Slurp(kSeed002);
  EXPECT_FALSE(seed.empty()) << "missing test data " << kSeed002;
  Spit(dir + "/seeds/002_46d1b234ed020678.txt", seed);
  return dir;
}

// ---- import ----------------------------------------------------------------

TEST(PolicyImportTest, SeedReproducesCheckedInStatement) {
  Result r = Ctl({"policy", "import", "seeds/002_46d1b234ed020678.txt"}, SeedDir());
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_EQ(r.out, Slurp(kPolicies + "/statements/interconnectivity-v20250508.yaml"));
}

TEST(PolicyImportTest, AbsolutePathUnderSeedsCitesSeedsRelative) {
  const std::string out = TempPath("imported.yaml");
  fs::remove(out);
  Result r =
      Ctl({"policy", "import", SeedDir() + "/seeds/002_46d1b234ed020678.txt", "-o", out}, "/");
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(Slurp(out), Slurp(kPolicies + "/statements/interconnectivity-v20250508.yaml"));
}

TEST(PolicyImportTest, ErrorHasPositionExit2AndWritesNothing) {
  const std::string in = TempPath("bad.txt");
  Spit(in, "Version: v1\n\xE2\x80\xA2 Third party name: Nobody Inc.\n");
  const std::string out = TempPath("never.yaml");
  fs::remove(out);
  Result r = Ctl({"policy", "import", in, "-o", out});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, StartsWith(in + ":2:21: error: third party 'Nobody Inc.'"));
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

TEST(PolicyImportTest, ErrorAsJson) {
  const std::string in = TempPath("noversion.txt");
  Spit(in, "Heading\n\xE2\x80\xA2 Third party name: Xiaomi Inc.\n");
  Result r = Ctl({"policy", "import", in, "--format", "json"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err,
            absl::StrCat("{\"severity\":\"error\",\"file\":\"", in,
                         "\",\"line\":1,\"column\":1,\"message\":\"no 'Version:' line\"}\n"));
}

TEST(PolicyImportTest, FailedImportLeavesExistingOutputUntouched) {
  const std::string in = TempPath("truncated.txt");
  Spit(in, "Version: v2\n");
  const std::string out = TempPath("existing.yaml");
  Spit(out, "previous content\n");
  Result r = Ctl({"policy", "import", in, "-o", out});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, HasSubstr(":1: error: no entries"));
  EXPECT_EQ(Slurp(out), "previous content\n");
}

TEST(PolicyImportTest, WarningsGoToStderrWithPosition) {
  const std::string in = TempPath("warn.txt");
  Spit(in,
       "Version: v9\n"
       "Lebocast\n"
       "\xE2\x80\xA2 Third party name: Shenzhen Lebo Technology Co., Ltd.\n"
       "\xE2\x80\xA2 Sharing type: SDK (Lebo SDK)\n"
       "\xE2\x80\xA2 Shared data: TV name, shoe size\n"
       "\xE2\x80\xA2 Related permissions: none\n");
  Result r = Ctl({"policy", "import", in});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(in + ":5:"));
  EXPECT_THAT(r.err, HasSubstr("warning: shared data item 'shoe size' maps to no data type"));
  EXPECT_THAT(r.err, HasSubstr(in + ":6:3: warning: label 'Related permissions' ignored"));
  // Kept, never dropped.
  EXPECT_THAT(r.out, HasSubstr("\"shoe size\""));
}

TEST(PolicyImportTest, UsageErrors) {
  EXPECT_EQ(Ctl({"policy", "import"}).exit, 2);
  EXPECT_EQ(Ctl({"policy", "import", "a", "b"}).exit, 2);
  Result r = Ctl({"policy", "import", "x", "--kind", "pdf"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, HasSubstr("--kind must be statement or cookies"));
  r = Ctl({"policy", "import", "/nonexistent/file.txt"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, StartsWith("/nonexistent/file.txt:1:1: error: cannot read"));
  EXPECT_EQ(Ctl({"policy"}).exit, 2);
  EXPECT_EQ(Ctl({"policy", "frobnicate"}).exit, 2);
}

// ---- lint ------------------------------------------------------------------

TEST(PolicyLintTest, RealPoliciesLoadClean) {
  Result r = Ctl({"policy", "lint", "policies"});
  EXPECT_EQ(r.exit, 0) << r.err << r.out;
  EXPECT_THAT(r.err, HasSubstr("0 errors"));
}

// A copy of policies/ with one file replaced.
std::string PolicyCopy(const std::string& name) {
  const std::string dir = TempPath(name);
  fs::remove_all(dir);
  fs::copy(kPolicies, dir, fs::copy_options::recursive);
  return dir;
}

TEST(PolicyLintTest, LoadErrorIsExit2WithPosition) {
  const std::string dir = PolicyCopy("lint-error");
  std::string st = Slurp(dir + "/statements/interconnectivity-v20250508.yaml");
  st = absl::StrReplaceAll(st, {{"entity: lebo\n", "entity: lebo_typo\n"}});
  Spit(dir + "/statements/interconnectivity-v20250508.yaml", st);
  Result r = Ctl({"policy", "lint", dir});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, HasSubstr("interconnectivity-v20250508.yaml:76:13: error: unknown entity "
                               "'lebo_typo'"));
  r = Ctl({"policy", "lint", dir, "--format", "json"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, AllOf(StartsWith("{\"severity\":\"error\""), HasSubstr("\"line\":76"),
                           HasSubstr("\"column\":13")));
}

TEST(PolicyLintTest, WarningsPrintedExit0UnlessWerror) {
  const std::string dir = PolicyCopy("lint-warn");
  std::string st = Slurp(dir + "/statements/interconnectivity-v20250508.yaml");
  st = absl::StrReplaceAll(st, {{"      - \"TV name and type\"\n",
                                 "      - \"TV name and type\"\n      - \"shoe size\"\n"}});
  Spit(dir + "/statements/interconnectivity-v20250508.yaml", st);
  Result r = Ctl({"policy", "lint", dir});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("interconnectivity-v20250508.yaml:73: warning: entry lebo-sdk: "
                               "shared-data item 'shoe size' maps to no ontology data type"));
  EXPECT_EQ(Ctl({"policy", "lint", dir, "--werror"}).exit, 1);
  r = Ctl({"policy", "lint", dir, "--format", "json"});
  EXPECT_THAT(r.out, HasSubstr("{\"severity\":\"warning\",\"file\":\""));
  EXPECT_THAT(r.out, HasSubstr("\"line\":73,\"column\":0,\"message\":\"entry lebo-sdk: "));
}

TEST(PolicyLintTest, BadRuntimeListOrSdkBoundTwiceIsExit2WithPosition) {
  const std::string dir = PolicyCopy("lint-bindings");
  std::string rt = Slurp(dir + "/bindings/runtime.yaml");
  ASSERT_THAT(rt, HasSubstr("  - soname: libc.so.6\n"));
  Spit(dir + "/bindings/runtime.yaml",
       absl::StrReplaceAll(rt, {{"  - soname: libc.so.6\n", "  - regex: \"libc.*\"\n"}}));
  Result r = Ctl({"policy", "lint", dir});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, HasSubstr("bindings/runtime.yaml:19:5: error: unknown pattern kind 'regex'"));
  Spit(dir + "/bindings/runtime.yaml", rt);
  Spit(dir + "/bindings/zz-more.yaml",
       "schema: idflow.policy/v1\nkind: bindings\nbindings:\n  - sdk: Lebo SDK\n"
       "    modules: [\"*/liblebo2.so\"]\n");
  r = Ctl({"policy", "lint", dir});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("bindings/zz-more.yaml:4:10: error: SDK 'Lebo SDK' is "
                                     "already bound at "),
                           HasSubstr("bindings/demo.yaml:")));
}

TEST(PolicyLintTest, MissingDirIsExit2) {
  Result r = Ctl({"policy", "lint", "/nonexistent-dir"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, HasSubstr("ontology.yaml:1:1: error: cannot read ontology"));
}

// ---- diff ------------------------------------------------------------------

TEST(PolicyDiffTest, IdenticalIsExit0) {
  const std::string f = kPolicies + "/statements/interconnectivity-v20250508.yaml";
  Result r = Ctl({"policy", "diff", f, f});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(Ctl({"policy", "diff", "policies", "policies"}).exit, 0);
}

TEST(PolicyDiffTest, ShowsDataTypesPerSdkAndEntries) {
  const std::string f = kPolicies + "/statements/interconnectivity-v20250508.yaml";
  std::string st = Slurp(f);
  st = absl::StrReplaceAll(
      st, {{"version: v20250508", "version: v20250601"},
           {"data_types: [device_name, device_type]", "data_types: [device_name, mac_address]"},
           {"  - id: search-services\n", "  - id: search-services-v2\n"}});
  const std::string g = TempPath("v20250601.yaml");
  Spit(g, st);
  Result r = Ctl({"policy", "diff", f, g});
  EXPECT_EQ(r.exit, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("~ statement interconnectivity-data-sharing: version v20250508 -> "
                               "v20250601\n"));
  EXPECT_THAT(r.out, HasSubstr("SDK Lebo SDK:\n  + data type mac_address\n  - data type "
                               "device_type\n  ~ entry lebo-sdk: data_types [device_name, "
                               "device_type] -> [device_name, mac_address]\n"));
  EXPECT_THAT(r.out, HasSubstr("SDK search services:\n  + entry search-services-v2\n  - entry "
                               "search-services\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("SDK IDM SDK")));
}

TEST(PolicyDiffTest, BadInputIsExit2) {
  const std::string g = TempPath("broken.yaml");
  Spit(g, "schema: idflow.policy/v1\nkind: statement\nid: x\nversion: [\n");
  Result r = Ctl({"policy", "diff", "policies", g});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, HasSubstr(g + ":"));
  EXPECT_EQ(Ctl({"policy", "diff", "policies"}).exit, 2);
}

// ---- explain ---------------------------------------------------------------

TEST(PolicyExplainTest, LeboMacAddressIsOmittedNamingLebocast) {
  // Default --policies: <dir of idflowctl>/../../policies, else ./policies.
  Result r = Ctl({"policy", "explain", "--sdk", "Lebo SDK", "--data", "mac_address"}, "/");
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("verdict:     omitted\n"));
  EXPECT_THAT(r.out, HasSubstr("statement:   interconnectivity-data-sharing v20250508\n"));
  EXPECT_THAT(r.out, HasSubstr("entry:       lebo-sdk (\"Lebocast\""));
  EXPECT_THAT(r.out, HasSubstr("explanation: Lebo SDK sent mac_address, but entry lebo-sdk"));
}

TEST(PolicyExplainTest, ContextFlagsReachJudge) {
  Result r = Ctl({"policy", "explain", "--policies", kPolicies, "--sdk", "OneTrack SDK", "--data",
                  "oaid", "--consent", "user_experience_program=false", "--format", "json"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("\"verdict\":\"no_consent\""),
                           HasSubstr("\"entry\":\"onetrack-sdk\"")));
  r = Ctl({"policy", "explain", "--sdk", "IDM SDK", "--data", "mac_address", "--host", "idm.mi.com",
           "--scenario", "device_discovery"});
  EXPECT_THAT(r.out, HasSubstr("verdict:     clear\n"));
  r = Ctl({"policy", "explain", "--sdk", "IDM SDK", "--data", "mac_address", "--host",
           "evil.example.com"});
  EXPECT_THAT(r.out, HasSubstr("verdict:     wrong_recipient\n"));
  r = Ctl({"policy", "explain", "--module", "/opt/app/lib/liblebo_sdk.so", "--data", "device_name",
           "--scenario", "casting", "--action", "acquire"});
  EXPECT_THAT(r.out, HasSubstr("verdict:     clear\n"));
}

TEST(PolicyExplainTest, ModuleChainIsResolvedByTheBindings) {
  // The MAC read through libstdc++ by the demo host itself: an observation.
  Result r =
      Ctl({"policy", "explain", "--module", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "--module",
           "/opt/idflow/bin/idflow-demo-host", "--exe", "/opt/idflow/bin/idflow-demo-host",
           "--data", "mac_address", "--action", "acquire"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("verdict:     local_acquisition\nfinding:     observation\n"));
  EXPECT_THAT(r.out, HasSubstr("module /opt/idflow/bin/idflow-demo-host\n"));
  // The mystery SDK behind libc sending the OAID: a violation.
  r = Ctl({"policy", "explain", "--module", "/lib/libc.so.6", "--module",
           "/opt/idflow/lib/libmystery_sdk.so", "--data", "oaid", "--host", "collect.adnet.example",
           "--format", "json"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("\"verdict\":\"undeclared_party\""),
                           HasSubstr("\"finding\":\"violation\""),
                           HasSubstr("\"module\":\"/opt/idflow/lib/libmystery_sdk.so\"")));
  // Lebo behind zlib: Lebo, never the runtime library.
  r = Ctl({"policy", "explain", "--module", "/lib/libz.so.1", "--module",
           "/opt/idflow/lib/liblebo_sdk.so", "--data", "mac_address", "--format", "json"});
  EXPECT_THAT(r.out,
              AllOf(HasSubstr("\"sdk\":\"Lebo SDK\""), HasSubstr("\"verdict\":\"omitted\"")));
  // Passing a URL to another process of the same browser.
  r = Ctl({"policy", "explain", "--exe", "/usr/lib/chromium/chromium", "--peer-exe",
           "/usr/lib/chromium/chromium", "--channel", "unix", "--data", "oaid"});
  EXPECT_THAT(r.out, HasSubstr("verdict:     same_app_ipc\n"));
}

TEST(PolicyExplainTest, UsageErrors) {
  EXPECT_EQ(Ctl({"policy", "explain", "--sdk", "Lebo SDK"}).exit, 2);
  EXPECT_EQ(Ctl({"policy", "explain", "--data", "mac_address"}).exit, 2);
  Result r = Ctl({"policy", "explain", "--sdk", "X", "--data", "y", "--consent", "ux"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, HasSubstr("--consent takes KEY=true|false"));
  r = Ctl({"policy", "explain", "--sdk", "X", "--data", "y", "--policies", "/nonexistent"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/ontology.yaml:1:1: error:"));
}

}  // namespace
}  // namespace idflow::tools

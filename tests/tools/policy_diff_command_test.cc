// `idflowctl policy diff` as a subprocess.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/ctl_runner.h"

namespace idflow::tools {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

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

// A scratch copy of the checked-in policies/ dir named `name`.
std::string CopyPolicies(const std::string& name) {
  const std::string dir = TempPath(name);
  fs::remove_all(dir);
  fs::copy(kPolicies, dir, fs::copy_options::recursive);
  return dir;
}

// Replaces `from` (which must occur) by `to` in `path`.
void Edit(const std::string& path, const std::string& from, const std::string& to) {
  std::string text = Slurp(path);
  ASSERT_THAT(text, HasSubstr(from)) << path;
  Spit(path, absl::StrReplaceAll(text, {{from, to}}));
}

// NEW = policies/ with the three changes the statement-only diff missed: a
// shorter cookie lifetime, a consent requirement dropped, an ontology edge cut.
std::string ChangedPolicies() {
  const std::string dir = CopyPolicies("new-policies");
  Edit(dir + "/cookies/xiaomi-account.yaml",
       "duration: \"7 days\"\n    session: false\n    max_age_seconds: 604800",
       "duration: \"1 day\"\n    session: false\n    max_age_seconds: 86400");
  Edit(dir + "/apps/mijia-mini-program.yaml", "    requires_consent: [wechat_user_info]\n", "");
  Edit(dir + "/ontology.yaml", "  - id: oaid\n    parents: [device_id]\n", "  - id: oaid\n");
  return dir;
}

TEST(PolicyDiffTest, DirsCoverCookiesAppsOntologyAndVerdicts) {
  const std::string old_dir = CopyPolicies("old-policies");
  const std::string new_dir = ChangedPolicies();
  Result r = Ctl({"policy", "diff", old_dir, new_dir});
  EXPECT_EQ(r.exit, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("cookie policy xiaomi-account-cookies:\n"
                               "  ~ cookie uLocale: duration \"7 days\" -> \"1 day\"\n"
                               "  ~ cookie uLocale: max_age_seconds 604800 -> 86400\n"));
  EXPECT_THAT(r.out, HasSubstr("app policy mijia-mini-program:\n  ~ feature wechat-user-info: "
                               "requires_consent [wechat_user_info] -> []\n"));
  EXPECT_THAT(r.out, HasSubstr("ontology:\n  ~ data type oaid: parents [device_id] -> []\n"));
  EXPECT_THAT(r.out, HasSubstr("  ~ IDM SDK / oaid: vague -> omitted\n"));
  EXPECT_THAT(r.out, HasSubstr("  ~ account.xiaomi.com / cookie uLocale (7d): clear -> "
                               "lifetime_exceeded\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("statement")));
  // The reverse diff is the mirror image.
  Result back = Ctl({"policy", "diff", new_dir, old_dir});
  EXPECT_EQ(back.exit, 1);
  EXPECT_THAT(back.out, HasSubstr("  ~ IDM SDK / oaid: omitted -> vague\n"));
  EXPECT_THAT(back.out, HasSubstr("  ~ account.xiaomi.com / cookie uLocale (7d): "
                                  "lifetime_exceeded -> clear\n"));
}

TEST(PolicyDiffTest, JsonIsOneDocument) {
  Result r =
      Ctl({"policy", "diff", CopyPolicies("old-policies"), ChangedPolicies(), "--format", "json"});
  EXPECT_EQ(r.exit, 1) << r.err;
  const auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_FALSE(j["identical"].get<bool>());
  std::vector<std::string> sections;
  for (const auto& g : j["groups"]) sections.push_back(g["section"]);
  EXPECT_THAT(sections, ElementsAre("cookies", "app", "ontology"));
  bool idm = false;
  for (const auto& v : j["verdicts"]) {
    EXPECT_EQ(v["data_type"], "oaid");
    EXPECT_EQ(v["old"]["category"], "vague");
    EXPECT_EQ(v["new"]["category"], "omitted");
    idm = idm || v["sdk"] == "IDM SDK";
  }
  EXPECT_TRUE(idm) << r.out;
  ASSERT_EQ(j["cookie_verdicts"].size(), 1u) << r.out;
  EXPECT_EQ(j["cookie_verdicts"][0]["cookie"], "uLocale");
  EXPECT_EQ(j["cookie_verdicts"][0]["max_age_seconds"], 604800);
  EXPECT_EQ(j["cookie_verdicts"][0]["new"]["category"], "lifetime_exceeded");
  EXPECT_EQ(j["cookie_verdicts"][0]["new"]["policy"], "xiaomi-account-cookies");

  Result same = Ctl({"policy", "diff", "policies", "policies", "--format=json"});
  EXPECT_EQ(same.exit, 0) << same.err;
  const auto k = nlohmann::json::parse(same.out, nullptr, false);
  ASSERT_FALSE(k.is_discarded()) << same.out;
  EXPECT_TRUE(k["identical"].get<bool>());
  EXPECT_THAT(k["groups"], IsEmpty());
  EXPECT_EQ(k["hypothetical_flow"]["channel"], "tcp");
}

TEST(PolicyDiffTest, StatementFileAgainstDirComparesStatementsOnly) {
  // The dir's cookies, apps and bindings are not compared with a lone statement.
  const std::string f = kPolicies + "/statements/interconnectivity-v20250508.yaml";
  Result r = Ctl({"policy", "diff", "policies", f});
  EXPECT_EQ(r.exit, 0) << r.out << r.err;
  EXPECT_THAT(r.out, IsEmpty());
  const std::string g = TempPath("no-lebo.yaml");
  std::string st = Slurp(f);
  Spit(g, absl::StrReplaceAll(
              st, {{"data_types: [device_name, device_type]", "data_types: [device_name]"}}));
  r = Ctl({"policy", "diff", f, g});
  EXPECT_EQ(r.exit, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("  ~ Lebo SDK / device_type: clear -> omitted\n"));
}

TEST(PolicyDiffTest, BadFormatAndJsonErrors) {
  EXPECT_EQ(Ctl({"policy", "diff", "policies", "policies", "--format", "xml"}).exit, 2);
  const std::string g = TempPath("broken.yaml");
  Spit(g, "schema: idflow.policy/v1\nkind: statement\nid: x\nversion: [\n");
  Result r = Ctl({"policy", "diff", g, "policies", "--format", "json"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.out, IsEmpty());
  const auto j = nlohmann::json::parse(r.err, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.err;
  EXPECT_EQ(j["severity"], "error");
  EXPECT_EQ(j["file"], g);
  EXPECT_GT(j["line"].get<int>(), 0);
}

}  // namespace
}  // namespace idflow::tools

// Cookie importer (seed layouts and real tables), YAML round trip, loader, verdicts.
#include "collector/policy/cookies.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "collector/policy/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/real_policy.h"
#include "tests/policy/sample_flows.h"
#include "tests/testing/status_matchers.h"

namespace idflow::policy {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

const std::string kSource = IDFLOW_SOURCE_DIR;
// The seeds and real cookie tables, checked in with the fuzz corpus (same
// bytes as ../shared/seeds and ../shared/corpus/cookies): never skipped.
const std::string kCorpus = kSource + "/tests/fuzz/corpus/fuzz_cookie_importer";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A corpus file; an empty or missing one fails the test that needs it.
std::string Corpus(const std::string& name) {
  std::string text = Slurp(kCorpus + "/" + name);
  EXPECT_FALSE(text.empty()) << "missing test data " << kCorpus << "/" << name;
  return text;
}

constexpr int64_t kH = 3600, kD = 86400;

struct Want {
  const char* name;
  const char* category;
  const char* duration;
  int64_t seconds;  // 0 = session
  const char* source;
  bool purpose = true;  // the row has a purpose (its own, or carried down where the layout does)
};

void ExpectRows(const CookiePolicy& p, const std::vector<Want>& want) {
  ASSERT_THAT(p.cookies, SizeIs(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    const CookieRow& r = p.cookies[i];
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(r.name, want[i].name);
    EXPECT_EQ(r.category, want[i].category);
    EXPECT_EQ(r.duration, want[i].duration);
    EXPECT_EQ(r.max_age_seconds, want[i].seconds);
    EXPECT_EQ(r.session, want[i].seconds == 0);
    EXPECT_EQ(r.source, want[i].source);
    EXPECT_EQ(!r.purpose.empty(), want[i].purpose) << r.purpose;
    EXPECT_TRUE(r.first_party);
  }
}

CookieImportOptions CommunityOptions() {
  CookieImportOptions o;
  o.id = "xiaomi-community-cookies";
  o.title = "Xiaomi Community Cookie Policy";
  o.sites = {"c.mi.com", "*.c.mi.com"};
  return o;
}

CookieImportOptions AccountOptions() {
  CookieImportOptions o;
  o.id = "xiaomi-account-cookies";
  o.sites = {"account.xiaomi.com", "*.account.xiaomi.com"};
  return o;
}

TEST(CookieImportTest, Seed000PipeTablesEveryRow) {
  const std::string text = Corpus("seed000.txt");
  std::vector<std::string> warnings;
  auto p = ImportCookieText(text, "seeds/000_c81f9a0d41524cab.txt", CommunityOptions(), &warnings);
  ASSERT_THAT(p, IsOk());
  // The one name listed twice with different lifetimes, at the second row.
  EXPECT_THAT(warnings, ::testing::ElementsAre(
                            "seeds/000_c81f9a0d41524cab.txt:45:1: cookie MS2Y_409f_ulastactivity "
                            "is listed again with lifetime '4 Hours' (line 33: '4 Day'); verdicts "
                            "allow the longest declared lifetime"));
  EXPECT_FALSE(p->first_party_only);
  const int64_t kMonth = 30 * kD, kYear = 365 * kD;
  ExpectRows(*p, {
                     {"MS2Y_409f_saltkey", "essential", "1 Month", kMonth, "Xiaomi"},
                     {"MS2Y_409f_loginuser", "essential", "Session", 0, "Xiaomi"},
                     {"MS2Y_409f_sid", "essential", "2 Days", 2 * kD, "Xiaomi"},
                     {"MS2Y_409f_st_p", "essential", "1 Day", kD, "Xiaomi"},
                     {"MS2Y_409f_auth", "essential", "1 Month", kMonth, "Xiaomi"},
                     {"bbs_serviceToken", "essential", "Session", 0, "Xiaomi"},
                     {"cUserId", "essential", "Session", 0, "Xiaomi"},
                     {"mUserId", "essential", "Session", 0, "Xiaomi"},
                     {"APP_LOCAL", "essential", "4 Hours", 4 * kH, "Xiaomi"},
                     {"TIME_ZONE_ID", "essential", "Session", 0, "Xiaomi"},
                     {"MS2Y_409f_atarget", "essential", "1 Month", kMonth, "Xiaomi"},
                     {"userId", "essential", "1 Month", kMonth, "Xiaomi"},
                     {"userPhoto", "essential", "1 Day", kD, "Xiaomi"},
                     {"username", "essential", "1 Day", kD, "Xiaomi"},
                     {"MS2Y_409f_visitedfid", "essential", "1 Month", kMonth, "Xiaomi"},
                     {"MS2Y_409f_lastvisit", "essential", "1 Month", kMonth, "Xiaomi"},
                     {"MS2Y_409f_pmnum", "essential", "1 Day", kD, "Xiaomi"},
                     {"MS2Y_409f_ulastactivity", "essential", "4 Day", 4 * kD, "Xiaomi"},
                     {"MS2Y_409f_sendmail", "essential", "4 Hour", 4 * kH, "Xiaomi"},
                     {"xm_bbs_oc_sid", "essential", "Session", 0, "Xiaomi"},
                     {"MS2Y_409f_st_t", "essential", "Session", 0, "Xiaomi"},
                     {"MS2Y_409f_home_diymode", "essential", "Session", 0, "Xiaomi"},
                     {"oc_privacy_agreed", "essential", "1 Year", kYear, "Xiaomi"},
                     {"MS2Y_409f_forum_lastvisit", "essential", "7 Days", 7 * kD, "Xiaomi"},
                     {"MS2Y_409f_smile", "essential", "1 Year", kYear, "Xiaomi"},
                     {"Discuz_isblind", "essential", "Session", 0, "Xiaomi"},
                     {"MS2Y_409f_ulastactivity", "analytics", "4 Hours", 4 * kH, "Xiaomi"},
                     // Shifted rows: "msttime1 | 1 Day | ||" has no purpose cell, and a
                     // pipe table carries down only the source: the purpose stays empty.
                     {"msttime1", "analytics", "1 Day", kD, "Xiaomi", false},
                     {"xm_vistor", "analytics", "Session", 0, "Xiaomi Analytic", false},
                     {"mstz", "analytics", "Session", 0, "Xiaomi Analytic", false},
                     {"msttime", "analytics", "1 Day", kD, "Xiaomi Analytic", false},
                     {"oc_download_win", "analytics", "1 Day", kD, "Xiaomi Analytic", false},
                 });
  // Carry-down: the second row's empty source; never another row's purpose.
  EXPECT_EQ(p->cookies[1].source, "Xiaomi");
  EXPECT_EQ(p->cookies[27].purpose, "");
  EXPECT_EQ(p->cookies[0].source_line, 16);
}

TEST(CookieImportTest, Seed001WhitespaceTableEveryRow) {
  const std::string text = Corpus("seed001.txt");
  std::vector<std::string> warnings;
  auto p = ImportCookieText(text, "seeds/001_41a0a47b32ed79ed.txt", AccountOptions(), &warnings);
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(warnings, IsEmpty());
  EXPECT_TRUE(p->first_party_only);
  EXPECT_EQ(p->title, "Cookie Policy");
  const int64_t k3y = 3 * 365 * kD;
  ExpectRows(*p, {
                     {"userId", "essential", "Session", 0, "Xiaomi"},
                     {"userName", "essential", "Session", 0, "Xiaomi"},
                     {"pass_ua", "essential", "3 years", k3y, "Xiaomi"},
                     {"uLocale", "essential", "7 days", 7 * kD, "Xiaomi"},
                     {"passToken", "essential", "Session", 0, "Xiaomi"},
                     {"serviceToken", "essential", "Session", 0, "Xiaomi"},
                     {"pass_trace", "essential", "3 years", k3y, "Xiaomi"},
                     {"passInfo", "essential", "Session", 0, "Xiaomi"},
                     {"cUserId", "essential", "Session", 0, "Xiaomi"},
                     {"deviceId", "essential", "3 years", k3y, "Xiaomi"},
                     {"tick", "essential", "30 minutes", 1800, "Xiaomi"},
                     {"passport_ph", "essential", "Session", 0, "Xiaomi"},
                     {"pass_ptd", "essential", "3 years", k3y, "Xiaomi"},
                     {"pExpireTime", "essential", "Session", 0, "Xiaomi"},
                     {"ick", "essential", "Session", 0, "Xiaomi"},
                     {"captchaToken", "essential", "Session", 0, "Xiaomi"},
                     {"passport_slh", "essential", "Session", 0, "Xiaomi"},
                 });
  EXPECT_EQ(p->cookies[0].purpose, "To recognize the user in order to provide services.");
  EXPECT_EQ(p->cookies[1].purpose, p->cookies[0].purpose);  // carried down
  EXPECT_EQ(p->cookies[5].purpose,
            "These cookies are used for security purposes and risk control.");
}

TEST(CookieImportTest, SeedsRoundTripToCheckedInYaml) {
  const std::string s0 = Corpus("seed000.txt");
  const std::string s1 = Corpus("seed001.txt");
  auto p0 = ImportCookieText(s0, "seeds/000_c81f9a0d41524cab.txt", CommunityOptions());
  auto p1 = ImportCookieText(s1, "seeds/001_41a0a47b32ed79ed.txt", AccountOptions());
  ASSERT_THAT(p0, IsOk());
  ASSERT_THAT(p1, IsOk());
  EXPECT_EQ(CookiePolicyToYaml(*p0), Slurp(kSource + "/policies/cookies/xiaomi-community.yaml"));
  EXPECT_EQ(CookiePolicyToYaml(*p1), Slurp(kSource + "/policies/cookies/xiaomi-account.yaml"));
  // And what the YAML says is what was imported.
  auto back = ParseCookiePolicyYaml(CookiePolicyToYaml(*p0), "x.yaml");
  ASSERT_THAT(back, IsOk());
  ASSERT_EQ(back->cookies.size(), p0->cookies.size());
  for (size_t i = 0; i < back->cookies.size(); ++i) {
    EXPECT_EQ(back->cookies[i].name, p0->cookies[i].name);
    EXPECT_EQ(back->cookies[i].max_age_seconds, p0->cookies[i].max_age_seconds);
    EXPECT_EQ(back->cookies[i].purpose, p0->cookies[i].purpose);
    EXPECT_EQ(back->cookies[i].source_line, p0->cookies[i].source_line);
  }
}

TEST(CookieImportTest, GithubMarkdownTable) {
  const std::string text = Corpus("github-cookies.md");
  std::vector<std::string> warnings;
  auto p = ImportCookieText(text, "github-cookies.md", {}, &warnings);
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->cookies, SizeIs(93));
  EXPECT_EQ(p->id, "github-cookies");
  EXPECT_EQ(p->title, "GitHub Cookies");
  auto find = [&](const std::string& name) -> const CookieRow& {
    for (const CookieRow& r : p->cookies) {
      if (r.name == name) return r;
    }
    static const CookieRow kNone;
    ADD_FAILURE() << "no row " << name;
    return kNone;
  };
  EXPECT_EQ(find("app_manifest_token").max_age_seconds, 300);  // "Five minutes"
  EXPECT_EQ(find("_gh_ent").max_age_seconds, 14 * kD);         // "Two weeks"
  EXPECT_TRUE(find("saml_csrf_token").session);                // "Until user closes browser or …"
  EXPECT_EQ(find("gist_oauth_csrf").max_age_seconds, -1);      // no lifetime named: kept, warned
  EXPECT_EQ(find("IDE").max_age_seconds, 24 * 30 * kD);        // the longest one named
  EXPECT_EQ(find("BizographicsOptOutBizographicsOptOut").max_age_seconds, 10 * 365 * kD);
  EXPECT_EQ(find("bscookie").source, "LinkedIn");  // name without backticks, link unwrapped
  EXPECT_TRUE(find("_octo").first_party);
  EXPECT_FALSE(find("ai_user").first_party);  // Microsoft on GitHub's site
  EXPECT_EQ(find("ai_user").max_age_seconds, 1800);
  EXPECT_EQ(find("_fbp").category, "advertising");
  EXPECT_EQ(find("li_giant").max_age_seconds, 7 * kD);  // stray fifth cell ignored
  EXPECT_THAT(warnings, ::testing::Contains(HasSubstr("gist_oauth_csrf")));
  EXPECT_THAT(warnings,
              ::testing::Contains(StartsWith("github-cookies.md:110:1: row has 5 cells")));
}

TEST(CookieImportTest, GovukHtmlTables) {
  const std::string text = Corpus("govuk-notify-cookies-2024.html");
  auto p = ImportCookieText(text, "govuk.html", {});
  ASSERT_THAT(p, IsOk());
  ASSERT_THAT(p->cookies, SizeIs(4));
  EXPECT_EQ(p->cookies[0].name, "notify_admin_session");
  EXPECT_EQ(p->cookies[0].category, "essential");
  EXPECT_EQ(p->cookies[0].max_age_seconds, 20 * kH);
  EXPECT_EQ(p->cookies[0].purpose, "Used to keep you signed in");
  EXPECT_EQ(p->cookies[1].name, "cookie_policy");
  EXPECT_EQ(p->cookies[1].max_age_seconds, 365 * kD);
  EXPECT_EQ(p->cookies[2].name, "_ga");
  EXPECT_EQ(p->cookies[2].category, "analytics");
  EXPECT_EQ(p->cookies[2].max_age_seconds, 2 * 365 * kD);
  EXPECT_EQ(p->cookies[3].name, "_gid");
  EXPECT_EQ(p->cookies[3].max_age_seconds, 24 * kH);
}

TEST(CookieImportTest, DurationsNormalise) {
  struct {
    const char* text;
    bool ok, session;
    int64_t seconds;
  } cases[] = {
      {"Session", true, true, 0},
      {"30 minutes", true, false, 1800},
      {"4 Hours", true, false, 4 * kH},
      {"7 days", true, false, 7 * kD},
      {"1 Month", true, false, 30 * kD},
      {"1 Year", true, false, 365 * kD},
      {"3 years", true, false, 3 * 365 * kD},
      {"One hour", true, false, kH},
      {"an hour", true, false, kH},
      {"Deleted when done", false, false, 0},
      {"", false, false, 0},
      {"99999999999999 years", false, false, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    Duration d = ParseDuration(c.text);
    EXPECT_EQ(d.ok, c.ok);
    EXPECT_EQ(d.session, c.session);
    EXPECT_EQ(d.seconds, c.seconds);
  }
}

TEST(CookieImportTest, NoTableIsAnErrorWithPosition) {
  auto p = ImportCookieText("Cookie Policy\n\nWe use cookies.\n", "x.txt", {});
  EXPECT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(p.status().message()), StartsWith("x.txt:4:1: no cookie table"));
  // A header without rows is no table either; truncated tables keep what is there.
  EXPECT_FALSE(ImportCookieText("Cookie | Purpose | Duration\n---|---|---\n", "y", {}).ok());
  std::vector<std::string> warnings;
  auto t = ImportCookieText("Cookie | Purpose | Duration\n---|---|---\na | b | 1 Day\nc | d |", "t",
                            {}, &warnings);
  ASSERT_THAT(t, IsOk());
  EXPECT_THAT(t->cookies, SizeIs(2));
  // A pipe table's empty duration cell is no lifetime, not the row above's.
  EXPECT_EQ(t->cookies[1].max_age_seconds, -1);
  EXPECT_THAT(warnings, ::testing::ElementsAre(HasSubstr("t:4:1: cookie c: lifetime ''")));
}

TEST(CookieImportTest, CarryDownPerLayout) {
  // Pipe tables: only the source carries down.
  auto pipe = ImportCookieText(
      "Cookie | Purpose | Duration | Source\n---|---|---|---\na | Login | 1 Day | Acme\n"
      "b | | 2 Days | \n",
      "p.md", {});
  ASSERT_THAT(pipe, IsOk());
  ASSERT_THAT(pipe->cookies, SizeIs(2));
  EXPECT_EQ(pipe->cookies[1].purpose, "");
  EXPECT_EQ(pipe->cookies[1].source, "Acme");
  EXPECT_EQ(pipe->cookies[1].max_age_seconds, 2 * kD);
  // HTML tables likewise.
  auto html = ImportCookieText(
      "<table><tr><th>Name</th><th>Purpose</th><th>Expires</th><th>Provider</th></tr>"
      "<tr><td>a</td><td>Login</td><td>1 day</td><td>Acme</td></tr>"
      "<tr><td>b</td><td></td><td>2 days</td><td></td></tr></table>",
      "h.html", {});
  ASSERT_THAT(html, IsOk());
  ASSERT_THAT(html->cookies, SizeIs(2));
  EXPECT_EQ(html->cookies[1].purpose, "");
  EXPECT_EQ(html->cookies[1].source, "Acme");
  // Whitespace tables (flattened merged cells): purpose and source carry down.
  auto words = ImportCookieText(
      "Cookie Purpose Duration Source\na Login check. Session Acme\n"
      "b 3 years\n",
      "w.txt", {});
  ASSERT_THAT(words, IsOk());
  ASSERT_THAT(words->cookies, SizeIs(2));
  EXPECT_EQ(words->cookies[1].purpose, "Login check.");
  EXPECT_EQ(words->cookies[1].source, "Acme");
}

TEST(CookieImportTest, DuplicateNamesWithDifferentLifetimesWarn) {
  std::vector<std::string> warnings;
  auto p = ImportCookieText(
      "Cookie | Purpose | Duration\n---|---|---\nsid | x | 1 Day\nsid | y | 1 Day\n"
      "sid | z | Session\nuid | u | 2 Hours\nuid | v | 3 Hours\n",
      "d.md", {}, &warnings);
  ASSERT_THAT(p, IsOk());
  // Same lifetime twice is no finding; each differing row is reported once, at its own line.
  EXPECT_THAT(warnings, ::testing::ElementsAre(
                            "d.md:5:1: cookie sid is listed again with lifetime 'Session' (line 3: "
                            "'1 Day'); verdicts allow the longest declared lifetime",
                            "d.md:7:1: cookie uid is listed again with lifetime '3 Hours' (line 6: "
                            "'2 Hours'); verdicts allow the longest declared lifetime"));
}

TEST(CookieLintTest, DuplicateNamesCiteTheYamlLineOfTheSecondRow) {
  auto p = LoadPolicyDir(kSource + "/policies");
  ASSERT_THAT(p, IsOk());
  std::vector<std::string> findings;
  for (const CookiePolicy& c : p->cookie_policies) {
    for (std::string& f : LintCookiePolicy(c)) findings.push_back(std::move(f));
  }
  const std::string yaml = Slurp(kSource + "/policies/cookies/xiaomi-community.yaml");
  // The second MS2Y_409f_ulastactivity row's "- name:" line in the YAML.
  const size_t first = yaml.find("name: \"MS2Y_409f_ulastactivity\"");
  const size_t second = yaml.find("name: \"MS2Y_409f_ulastactivity\"", first + 1);
  ASSERT_NE(second, std::string::npos);
  const int line = 1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + second, '\n'));
  const int first_line = 1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + first, '\n'));
  ASSERT_THAT(findings, SizeIs(1));
  EXPECT_THAT(findings[0],
              ::testing::EndsWith(absl::StrCat(
                  "policies/cookies/xiaomi-community.yaml:", line,
                  ": cookie MS2Y_409f_ulastactivity is listed again with lifetime "
                  "'4 Hours' (line ",
                  first_line, ": '4 Day'); verdicts allow the longest declared lifetime")));
  // LintPolicy passes them on.
  EXPECT_THAT(LintPolicy(*p), ::testing::Contains(findings[0]));
}

// ---- loader -----------------------------------------------------------------

TEST(CookieLoaderTest, PolicyDirLoadsCookiePolicies) {
  auto p = LoadPolicyDir(kSource + "/policies");
  ASSERT_THAT(p, IsOk());
  ASSERT_THAT(p->cookie_policies, SizeIs(2));
  EXPECT_EQ(p->cookie_policies[0].id, "xiaomi-account-cookies");
  EXPECT_THAT(p->cookie_policies[0].cookies, SizeIs(17));
  EXPECT_EQ(p->cookie_policies[1].id, "xiaomi-community-cookies");
  EXPECT_THAT(p->cookie_policies[1].cookies, SizeIs(32));
}

TEST(CookieLoaderTest, SchemaErrorsCiteLineAndColumn) {
  const std::string head =
      "schema: idflow.policy/v1\nkind: cookies\nid: c\nversion: v1\nsites: [a.com]\ncookies:\n";
  auto bad_session = ParseCookiePolicyYaml(
      head + "  - name: x\n    category: essential\n    session: true\n    max_age_seconds: 60\n",
      "c.yaml");
  EXPECT_THAT(bad_session, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(bad_session.status().message()), StartsWith("c.yaml:10:22: "));
  auto unknown =
      ParseCookiePolicyYaml(head + "  - name: x\n    category: essential\n    ttl: 5\n", "c.yaml");
  EXPECT_THAT(std::string(unknown.status().message()), StartsWith("c.yaml:9:5: unknown key 'ttl'"));
  auto bad_site = ParseCookiePolicyYaml(
      absl::StrReplaceAll(head, {{"[a.com]", "[\"*\"]"}}) + "  - name: x\n    category: e\n",
      "c.yaml");
  EXPECT_THAT(std::string(bad_site.status().message()), HasSubstr("must be 'host.tld'"));
  EXPECT_FALSE(ParseCookiePolicyYaml("cookies: [", "c.yaml").ok());
}

// ---- verdicts ---------------------------------------------------------------

// A Set-Cookie from `host`; `domain` is its Domain attribute ("" = host-only).
CookieObservation Obs(std::string host, std::string name, int64_t max_age,
                      std::string domain = "") {
  return SetCookie(std::move(host), std::move(name), max_age, std::move(domain));
}

TEST(JudgeCookieTest, Verdicts) {
  struct Case {
    CookieObservation obs;
    Category want;
    const char* policy;
    const char* explanation;
  } cases[] = {
      {Obs("account.xiaomi.com", "passToken", 0), Category::kClear, "xiaomi-account-cookies",
       "as declared by row passToken (essential, Session, line 26) of cookie policy "
       "xiaomi-account-cookies unversioned."},
      {Obs("account.xiaomi.com", "pass_ua", 3 * 365 * kD), Category::kClear,
       "xiaomi-account-cookies", "3 year(s)"},
      {Obs("account.xiaomi.com", "passToken", 30 * kD), Category::kLifetimeExceeded,
       "xiaomi-account-cookies", "lives 30 day(s), longer than row passToken (essential, Session"},
      {Obs("account.xiaomi.com", "tick", 2 * kH), Category::kLifetimeExceeded,
       "xiaomi-account-cookies", "row tick (essential, 30 minutes, line 32)"},
      {Obs("account.xiaomi.com", "tracker_id", 0), Category::kUndeclaredCookie,
       "xiaomi-account-cookies",
       "Cookie tracker_id set by account.xiaomi.com is declared by no row of cookie policy "
       "xiaomi-account-cookies unversioned."},
      // A Domain outside the policy's sites on a first-party-only site.
      {Obs("eu.account.xiaomi.com", "deviceId", kD, "tracker.example"), Category::kThirdPartyCookie,
       "xiaomi-account-cookies",
       "for domain tracker.example is third-party, but cookie policy xiaomi-account-cookies "
       "unversioned says the site uses first-party cookies only."},
      // ...even for a name the policy does not list.
      {Obs("account.xiaomi.com", "_ga", kD, ".xiaomi.com"), Category::kThirdPartyCookie,
       "xiaomi-account-cookies", "first-party cookies only"},
      // A Domain within the sites is first-party.
      {Obs("eu.account.xiaomi.com", "deviceId", kD, ".account.xiaomi.com"), Category::kClear,
       "xiaomi-account-cookies", "(first-party, 1 day(s))"},
      {Obs("new.c.mi.com", "APP_LOCAL", 4 * kH), Category::kClear, "xiaomi-community-cookies",
       "as declared"},
      {Obs("new.c.mi.com", "userId", 31 * kD), Category::kClear, "xiaomi-community-cookies",
       "as declared"},  // a 31-day month is within the declared "1 Month"
      {Obs("new.c.mi.com", "userId", 40 * kD), Category::kLifetimeExceeded,
       "xiaomi-community-cookies", "1 Month"},
      // Listed in two tables (4 Day essential, 4 Hours analytics): the longer row applies.
      {Obs("c.mi.com", "MS2Y_409f_ulastactivity", 3 * kD), Category::kClear,
       "xiaomi-community-cookies", "(essential, 4 Day"},
      // Domain=mi.com reaches beyond c.mi.com: third-party, and the row is first-party.
      {Obs("c.mi.com", "mstz", 0, "mi.com"), Category::kThirdPartyCookie,
       "xiaomi-community-cookies", "declares it first-party."},
      {Obs("new.c.mi.com", "tracker", 0), Category::kUndeclaredCookie, "xiaomi-community-cookies",
       "declared by no row"},
      {Obs("www.example.com", "passToken", 0), Category::kNoCookiePolicy, "",
       "Cookie passToken set by www.example.com is covered by no loaded cookie policy."},
      {Obs("notaccount.xiaomi.com", "passToken", 0), Category::kNoCookiePolicy, "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.obs.host + " " + c.obs.name + " " + c.obs.domain);
    CookieVerdict v = JudgeCookie(RealPolicy(), c.obs);
    EXPECT_EQ(CategoryName(v.category), CategoryName(c.want)) << v.explanation;
    EXPECT_EQ(v.finding, FindingOf(c.want));
    EXPECT_EQ(v.policy, c.policy);
    EXPECT_THAT(v.explanation, HasSubstr(c.explanation));
    ASSERT_FALSE(v.explanation.empty());
    EXPECT_EQ(v.explanation.back(), '.');
  }
}

TEST(JudgeCookieTest, FirstPartyFromPolicySitesVersusDomain) {
  EXPECT_TRUE(JudgeCookie(RealPolicy(), Obs("account.xiaomi.com", "passToken", 0)).first_party);
  EXPECT_TRUE(
      JudgeCookie(RealPolicy(), Obs("account.xiaomi.com", "passToken", 0, "ACCOUNT.xiaomi.com."))
          .first_party);
  EXPECT_TRUE(JudgeCookie(RealPolicy(), Obs("c.mi.com", "userId", 0, ".sub.c.mi.com")).first_party);
  EXPECT_FALSE(JudgeCookie(RealPolicy(), Obs("c.mi.com", "userId", 0, "mi.com")).first_party);
  EXPECT_FALSE(JudgeCookie(RealPolicy(), Obs("c.mi.com", "userId", 0, "ads.example")).first_party);
  // No policy: the host itself decides, as a browser would.
  CookieVerdict none = JudgeCookie(RealPolicy(), Obs("www.example.com", "sid", 0, ".example.com"));
  EXPECT_EQ(none.category, Category::kNoCookiePolicy);
  EXPECT_EQ(none.finding, Finding::kObservation);
  EXPECT_TRUE(none.first_party);
  EXPECT_FALSE(
      JudgeCookie(RealPolicy(), Obs("www.example.com", "sid", 0, "other.net")).first_party);
}

TEST(JudgeCookieTest, SentCookiesHaveNoLifetimeToCheck) {
  CookieObservation o = Obs("account.xiaomi.com", "passToken", -1);
  o.direction = CookieDirection::kSentByClient;
  CookieVerdict v = JudgeCookie(RealPolicy(), o);
  EXPECT_EQ(v.category, Category::kClear);
  EXPECT_THAT(v.explanation, HasSubstr("sent to account.xiaomi.com"));
  EXPECT_THAT(v.explanation, HasSubstr("lifetime unknown"));
  o.max_age_seconds = 400 * kD;  // ignored for a Cookie request header
  EXPECT_EQ(JudgeCookie(RealPolicy(), o).category, Category::kClear);
  // The same lifetime on a Set-Cookie exceeds the declared session.
  o.direction = CookieDirection::kSetByServer;
  EXPECT_EQ(JudgeCookie(RealPolicy(), o).category, Category::kLifetimeExceeded);
  // An undeclared name is undeclared whichever way it travels.
  o = Obs("account.xiaomi.com", "nope", -1);
  o.direction = CookieDirection::kSentByClient;
  EXPECT_EQ(JudgeCookie(RealPolicy(), o).category, Category::kUndeclaredCookie);
}

}  // namespace
}  // namespace idflow::policy

namespace idflow::policy {
namespace {

// A name listed several times is judged against its longest declared lifetime,
// wherever that row stands: a cookie within any declared lifetime is never
// lifetime_exceeded.
TEST(JudgeCookieTest, DuplicatedNameUsesTheLongestDeclaredLifetime) {
  // Seed 000: essential 4 Day (line 33), analytics 4 Hours (line 45).
  CookieVerdict within = JudgeCookie(RealPolicy(), Obs("c.mi.com", "MS2Y_409f_ulastactivity", kD));
  EXPECT_EQ(within.category, Category::kClear);
  EXPECT_EQ(within.source_line, 33);
  CookieVerdict beyond =
      JudgeCookie(RealPolicy(), Obs("c.mi.com", "MS2Y_409f_ulastactivity", 5 * kD));
  EXPECT_EQ(beyond.category, Category::kLifetimeExceeded);
  EXPECT_EQ(beyond.source_line, 33);
  EXPECT_THAT(beyond.explanation,
              HasSubstr("row MS2Y_409f_ulastactivity (essential, 4 Day, line 33)"));

  auto row = [](std::string duration, int64_t seconds, int line) {
    CookieRow r;
    r.name = "sid";
    r.category = "essential";
    r.duration = std::move(duration);
    r.session = seconds == 0;
    r.max_age_seconds = seconds;
    r.source_line = line;
    return r;
  };
  Policy policy;
  CookiePolicy cp;
  cp.id = "p";
  cp.version = "v1";
  cp.sites = {"a.example"};
  // The longer row last, a session row first: order does not matter.
  cp.cookies = {row("Session", 0, 1), row("1 Hour", kH, 2), row("1 Day", kD, 3)};
  policy.cookie_policies = {cp};
  CookieVerdict v = JudgeCookie(policy, Obs("a.example", "sid", 12 * kH));
  EXPECT_EQ(v.category, Category::kClear) << v.explanation;
  EXPECT_EQ(v.source_line, 3);
  EXPECT_EQ(JudgeCookie(policy, Obs("a.example", "sid", 2 * kD)).category,
            Category::kLifetimeExceeded);
  // Equal lifetimes: the first such row is named.
  policy.cookie_policies[0].cookies = {row("1 Day", kD, 1), row("24 hours", kD, 2)};
  EXPECT_EQ(JudgeCookie(policy, Obs("a.example", "sid", kH)).source_line, 1);
  // A row naming no lifetime is never lifetime-checked, so it is the longest.
  policy.cookie_policies[0].cookies = {row("1 Hour", kH, 1), row("Until logout", -1, 2)};
  policy.cookie_policies[0].cookies[1].session = false;
  CookieVerdict unknown = JudgeCookie(policy, Obs("a.example", "sid", 100 * kD));
  EXPECT_EQ(unknown.category, Category::kClear);
  EXPECT_EQ(unknown.source_line, 2);
}

}  // namespace
}  // namespace idflow::policy

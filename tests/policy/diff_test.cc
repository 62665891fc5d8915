// Policy diff: every section, the verdict changes it explains, text and JSON.
#include "collector/policy/diff.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_replace.h"
#include "collector/policy/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/policy/real_policy.h"

namespace idflow::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kOntology[] = R"(schema: idflow.policy/v1
kind: ontology
data_types:
  - id: device_id
  - id: oaid
    parents: [device_id]
  - id: mac_address
entities:
  - id: acme
    name: Acme Ltd.
    aliases: [Acme]
    domains: ["*.acme.com"]
scenarios:
  - id: casting
  - id: pairing
sharing_methods:
  - id: sdk_local_acquisition
    actions: [acquire, transmit]
consents:
  - id: ux
  - id: feedback
)";

constexpr char kStatement[] = R"(schema: idflow.policy/v1
kind: statement
id: s
version: v1
entries:
  - id: foo-sdk
    third_party: Acme Ltd.
    entity: acme
    sdk: Foo SDK
    data_types: [device_id]
    scenarios: [casting]
    sharing_methods: [sdk_local_acquisition]
    requires_consent: [ux]
)";

constexpr char kBindings[] = R"(schema: idflow.policy/v1
kind: bindings
bindings:
  - sdk: Foo SDK
    modules: ["*/libfoo.so"]
runtime:
  - soname: libc.so.6
first_party:
  - path: "*/bin/host"
)";

constexpr char kCookies[] = R"(schema: idflow.policy/v1
kind: cookies
id: acme-cookies
version: v1
sites: ["acme.com", "*.acme.com"]
first_party_only: false
cookies:
  - name: sid
    category: essential
    duration: "30 days"
    max_age_seconds: 2592000
  - name: ads
    category: advertising
    duration: "1 day"
    max_age_seconds: 86400
    first_party: false
)";

constexpr char kApp[] = R"(schema: idflow.policy/v1
kind: app
id: mini
version: v1
entity: acme
sdks: [Mini]
features:
  - id: devices
    section: "1"
    data_types: [device_id, mac_address]
    requires_consent: [ux]
consent_purposes:
  - id: analytics
    consent: ux
    section: "2"
    data_types: [mac_address]
)";

// The base files with `edits` ({file, {{from, to}...}}) applied.
struct Edit {
  std::string file;  // "ontology", "statement", "bindings", "cookies", "app"
  std::vector<std::pair<std::string, std::string>> replace;
};

Policy Load(const std::vector<Edit>& edits = {}) {
  PolicyFiles f;
  f.ontology = {"ontology.yaml", kOntology};
  f.statements = {{"s.yaml", kStatement}};
  f.bindings = {{"b.yaml", kBindings}};
  f.cookies = {{"c.yaml", kCookies}};
  f.apps = {{"a.yaml", kApp}};
  for (const Edit& e : edits) {
    PolicyFile* file = e.file == "ontology"    ? &f.ontology
                       : e.file == "statement" ? &f.statements[0]
                       : e.file == "bindings"  ? &f.bindings[0]
                       : e.file == "cookies"   ? &f.cookies[0]
                                               : &f.apps[0];
    for (const auto& [from, to] : e.replace) {
      EXPECT_THAT(file->text, HasSubstr(from)) << "edit of " << e.file << " matches nothing";
      file->text = absl::StrReplaceAll(file->text, {{from, to}});
    }
  }
  auto p = LoadPolicyFromStrings(f);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : Policy{};
}

std::string Text(const std::vector<Edit>& edits) {
  return FormatDiff(DiffPolicies(Load(), Load(edits)));
}

TEST(PolicyDiffTest, IdenticalPoliciesHaveNoChanges) {
  const PolicyDiff d = DiffPolicies(Load(), Load());
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(FormatDiff(d), "");
  EXPECT_TRUE(nlohmann::json::parse(DiffToJson(d))["identical"].get<bool>());
  EXPECT_TRUE(DiffPolicies(RealPolicy(), RealPolicy()).empty());
}

// Miss 1 of the old diff: a cookie lifetime got shorter.
TEST(PolicyDiffTest, CookieLifetimeShorterTurnsClearIntoLifetimeExceeded) {
  const PolicyDiff d =
      DiffPolicies(Load(), Load({{"cookies",
                                  {{"duration: \"30 days\"\n    max_age_seconds: 2592000",
                                    "duration: \"7 days\"\n    max_age_seconds: 604800"}}}}));
  ASSERT_THAT(d.groups, SizeIs(1));
  EXPECT_EQ(FormatDiff(d),
            "cookie policy acme-cookies:\n"
            "  ~ cookie sid: duration \"30 days\" -> \"7 days\"\n"
            "  ~ cookie sid: max_age_seconds 2592000 -> 604800\n"
            "cookie verdicts (each declared cookie set by each site of its policy with its "
            "declared lifetime):\n"
            "  ~ acme.com / cookie sid (30d): clear -> lifetime_exceeded\n");
  ASSERT_THAT(d.cookie_verdicts, SizeIs(1));
  EXPECT_EQ(d.cookie_verdicts[0].after.policy, "acme-cookies");
  EXPECT_EQ(d.cookie_verdicts[0].after.cookie, "sid");
  // A longer lifetime makes the longer cookie clear instead.
  EXPECT_THAT(Text({{"cookies", {{"max_age_seconds: 86400\n", "max_age_seconds: 172800\n"}}}}),
              HasSubstr("  ~ acme.com / cookie ads (2d, third-party): lifetime_exceeded -> "
                        "clear\n"));
}

// Miss 2: an app policy dropped a consent requirement.
TEST(PolicyDiffTest, ConsentRequirementRemovedIsShownWithoutVerdictChange) {
  const PolicyDiff d =
      DiffPolicies(Load(), Load({{"app",
                                  {{"    requires_consent: [ux]\n", ""},
                                   {"consent_purposes:\n  - id: analytics\n    consent: ux\n"
                                    "    section: \"2\"\n    data_types: [mac_address]\n",
                                    ""}}}}));
  EXPECT_EQ(FormatDiff(d),
            "app policy mini:\n"
            "  ~ feature devices: requires_consent [ux] -> []\n"
            "  - consent purpose analytics\n");
  // The hypothetical flows report no consent: nothing is withheld on either side.
  EXPECT_THAT(d.verdicts, IsEmpty());
  // A statement entry dropping it is a field change of its entry.
  EXPECT_EQ(Text({{"statement", {{"    requires_consent: [ux]\n", ""}}}}),
            "SDK Foo SDK:\n  ~ entry foo-sdk: requires_consent [ux] -> []\n");
}

// Miss 3: an ontology edge that changes a verdict.
TEST(PolicyDiffTest, OntologyEdgeRemovedTurnsVagueIntoOmitted) {
  const PolicyDiff d =
      DiffPolicies(Load(), Load({{"ontology", {{"    parents: [device_id]\n", ""}}}}));
  EXPECT_EQ(FormatDiff(d),
            "ontology:\n"
            "  ~ data type oaid: parents [device_id] -> []\n"
            "verdicts (each SDK transmits each data type over tcp, no host, scenario or "
            "consent):\n"
            "  ~ Foo SDK / oaid: vague -> omitted\n"
            "  ~ Mini / oaid: vague -> omitted\n");
  ASSERT_THAT(d.verdicts, SizeIs(2));
  EXPECT_EQ(d.verdicts[0].before.entry, "foo-sdk");
  EXPECT_EQ(d.verdicts[0].after.category, Category::kOmitted);
  // The other way round.
  EXPECT_THAT(
      FormatDiff(DiffPolicies(Load({{"ontology", {{"    parents: [device_id]\n", ""}}}}), Load())),
      HasSubstr("  ~ Foo SDK / oaid: omitted -> vague\n"));
}

TEST(PolicyDiffTest, StatementFieldsAndVersion) {
  const std::string out = Text({{"statement",
                                 {{"version: v1", "version: v2"},
                                  {"data_types: [device_id]", "data_types: [oaid, mac_address]"},
                                  {"scenarios: [casting]", "scenarios: [pairing]"},
                                  {"third_party: Acme Ltd.", "third_party: Acme"}}}});
  EXPECT_EQ(out,
            "~ statement s: version v1 -> v2\n"
            "SDK Foo SDK:\n"
            "  + data type mac_address\n"
            "  + data type oaid\n"
            "  - data type device_id\n"
            "  ~ entry foo-sdk: third_party \"Acme Ltd.\" -> Acme\n"
            "  ~ entry foo-sdk: data_types [device_id] -> [oaid, mac_address]\n"
            "  ~ entry foo-sdk: scenarios [casting] -> [pairing]\n"
            "verdicts (each SDK transmits each data type over tcp, no host, scenario or "
            "consent):\n"
            "  ~ Foo SDK / device_id: clear -> omitted\n"
            "  ~ Foo SDK / mac_address: omitted -> clear\n"
            "  ~ Foo SDK / oaid: vague -> clear\n");
}

TEST(PolicyDiffTest, SdkAddedOrRemoved) {
  const std::string bar =
      "  - id: bar-sdk\n    third_party: Acme Ltd.\n    entity: acme\n    sdk: Bar SDK\n"
      "    data_types: [mac_address]\n    sharing_methods: [sdk_local_acquisition]\n";
  const Policy with_bar = Load({{"statement", {{"entries:\n", "entries:\n" + bar}}}});
  const PolicyDiff d = DiffPolicies(Load(), with_bar);
  const std::string out = FormatDiff(d);
  EXPECT_THAT(out,
              HasSubstr("SDK Bar SDK (added):\n  + data type mac_address\n  + entry bar-sdk\n"));
  EXPECT_THAT(out, HasSubstr("  ~ Bar SDK / mac_address: undeclared_party -> clear\n"
                             "  ~ Bar SDK / oaid: undeclared_party -> omitted\n"));
  EXPECT_THAT(out, Not(HasSubstr("Foo SDK")));
  EXPECT_THAT(d.verdicts, SizeIs(3));  // every data type of the ontology
  EXPECT_THAT(FormatDiff(DiffPolicies(with_bar, Load())),
              HasSubstr("SDK Bar SDK (removed):\n  - data type mac_address\n  - entry bar-sdk\n"));
}

TEST(PolicyDiffTest, CookieRowsSitesAndParty) {
  const std::string out =
      Text({{"cookies",
             {{"version: v1", "version: v2"},
              {"sites: [\"acme.com\", \"*.acme.com\"]", "sites: [\"acme.com\"]"},
              {"first_party_only: false", "first_party_only: true"},
              {"  - name: sid\n", "  - name: token\n"}}}});
  EXPECT_EQ(out,
            "cookie policy acme-cookies:\n"
            "  ~ version v1 -> v2\n"
            "  ~ sites [acme.com, *.acme.com] -> [acme.com]\n"
            "  ~ first_party_only false -> true\n"
            "  + cookie token\n"
            "  - cookie sid\n"
            "cookie verdicts (each declared cookie set by each site of its policy with its "
            "declared lifetime):\n"
            "  ~ acme.com / cookie ads (1d, third-party): clear -> third_party_cookie\n"
            "  ~ acme.com / cookie sid (30d): clear -> undeclared_cookie\n"
            "  ~ acme.com / cookie token (30d): undeclared_cookie -> clear\n");
  EXPECT_THAT(Text({{"cookies", {{"    first_party: false\n", ""}}}}),
              HasSubstr("  ~ cookie ads: first_party false -> true\n"));
}

TEST(PolicyDiffTest, CookiePolicyAddedListsItsRows) {
  const Policy a = Load({{"cookies", {{"id: acme-cookies", "id: other"}}}});
  const PolicyDiff d = DiffPolicies(a, Load());
  EXPECT_THAT(FormatDiff(d), HasSubstr("cookie policy acme-cookies (added):\n  + cookie ads\n"
                                       "  + cookie sid\ncookie policy other (removed):\n"
                                       "  - cookie ads\n  - cookie sid\n"));
  // Same rows, same sites: every cookie judges alike on both sides.
  EXPECT_THAT(d.cookie_verdicts, IsEmpty());
}

TEST(PolicyDiffTest, AppFeaturesAndDataTypes) {
  const std::string out =
      Text({{"app",
             {{"version: v1", "version: v2"},
              {"data_types: [device_id, mac_address]", "data_types: [oaid]"},
              {"  - id: devices\n", "  - id: devices\n    optional: true\n"}}}});
  EXPECT_EQ(out,
            "app policy mini:\n"
            "  ~ version v1 -> v2\n"
            "  ~ feature devices: optional false -> true\n"
            "  ~ feature devices: data_types [device_id, mac_address] -> [oaid]\n"
            "verdicts (each SDK transmits each data type over tcp, no host, scenario or "
            "consent):\n"
            "  ~ Mini / device_id: clear -> omitted\n"
            "  ~ Mini / mac_address: clear -> omitted\n"
            "  ~ Mini / oaid: vague -> clear\n");
}

TEST(PolicyDiffTest, BindingsAndModulePatterns) {
  const std::string out =
      Text({{"bindings",
             {{"\"*/libfoo.so\"", "\"*/libfoo2.so\""},
              {"  - soname: libc.so.6\n", "  - soname: libc.so.6\n  - glob: \"libz.so*\"\n"},
              {"first_party:\n  - path: \"*/bin/host\"\n", ""}}}});
  EXPECT_EQ(out,
            "binding Foo SDK:\n"
            "  ~ modules [*/libfoo.so] -> [*/libfoo2.so]\n"
            "bindings runtime:\n"
            "  + glob libz.so*\n"
            "bindings first_party:\n"
            "  - path */bin/host\n");
  EXPECT_THAT(
      Text({{"bindings", {{"bindings:\n  - sdk: Foo SDK\n    modules: [\"*/libfoo.so\"]\n", ""}}}}),
      HasSubstr("binding Foo SDK (removed):\n  ~ modules [*/libfoo.so] -> []\n"));
}

TEST(PolicyDiffTest, OntologyItems) {
  const std::string out =
      Text({{"ontology",
             {{"  - id: mac_address\n", "  - id: mac_address\n  - id: imei\n"},
              {"aliases: [Acme]", "aliases: [Acme, ACME Group]"},
              {"domains: [\"*.acme.com\"]", "domains: [\"*.acme.net\"]"},
              {"  - id: pairing\n", ""},
              {"actions: [acquire, transmit]", "actions: [transmit]"},
              {"  - id: feedback\n", "  - id: feedback\n  - id: location\n"}}}});
  EXPECT_EQ(out,
            "ontology:\n"
            "  + data type imei\n"
            "  ~ entity acme: aliases [Acme] -> [Acme, ACME Group]\n"
            "  ~ entity acme: domains [*.acme.com] -> [*.acme.net]\n"
            "  - scenario pairing\n"
            "  ~ sharing method sdk_local_acquisition: actions [acquire, transmit] -> [transmit]\n"
            "  + consent location\n");
}

TEST(PolicyDiffTest, VerdictsAreSortedAndCoverBothOntologies) {
  // A type only NEW knows is judged on both sides (OLD: not an ontology type).
  const PolicyDiff d = DiffPolicies(
      Load(),
      Load({{"ontology", {{"  - id: mac_address\n", "  - id: mac_address\n  - id: imei\n"}}},
            {"statement", {{"data_types: [device_id]", "data_types: [device_id, imei]"}}}}));
  ASSERT_THAT(d.verdicts, SizeIs(1));
  EXPECT_EQ(d.verdicts[0].sdk, "Foo SDK");
  EXPECT_EQ(d.verdicts[0].data_type, "imei");
  EXPECT_EQ(d.verdicts[0].before.category, Category::kOmitted);
  EXPECT_EQ(d.verdicts[0].after.category, Category::kClear);

  const PolicyDiff e =
      DiffPolicies(Load(), Load({{"statement", {{"sdk: Foo SDK", "sdk: Zed SDK"}}},
                                 {"bindings", {{"sdk: Foo SDK", "sdk: Zed SDK"}}}}));
  std::vector<std::pair<std::string, std::string>> keys;
  for (const VerdictChange& v : e.verdicts) keys.emplace_back(v.sdk, v.data_type);
  using Key = std::pair<std::string, std::string>;
  EXPECT_THAT(keys, ElementsAre(Key{"Foo SDK", "device_id"}, Key{"Foo SDK", "mac_address"},
                                Key{"Foo SDK", "oaid"}, Key{"Zed SDK", "device_id"},
                                Key{"Zed SDK", "mac_address"}, Key{"Zed SDK", "oaid"}));
}

TEST(PolicyDiffTest, RepeatedCookieNamesPairByPosition) {
  const std::string twice =
      "  - name: sid\n    category: analytics\n    duration: \"4 hours\"\n"
      "    max_age_seconds: 14400\n";
  const Policy a = Load({{"cookies", {{"cookies:\n", "cookies:\n" + twice}}}});
  const std::string b_row =
      absl::StrReplaceAll(twice, {{"4 hours", "5 hours"}, {"14400", "18000"}});
  const Policy b = Load({{"cookies", {{"cookies:\n", "cookies:\n" + b_row}}}});
  EXPECT_EQ(FormatDiff(DiffPolicies(a, b)),
            "cookie policy acme-cookies:\n"
            "  ~ cookie sid: duration \"4 hours\" -> \"5 hours\"\n"
            "  ~ cookie sid: max_age_seconds 14400 -> 18000\n");
  EXPECT_THAT(FormatDiff(DiffPolicies(Load(), a)), HasSubstr("  + cookie sid #2\n"));
}

TEST(PolicyDiffTest, StatementsInSeveralVersionsPairByVersion) {
  std::vector<Statement> a = Load().statements;
  std::vector<Statement> b = a;
  b.push_back(a[0]);
  b.back().version = "v2";
  b.back().entries.clear();
  EXPECT_EQ(FormatDiff(DiffStatements(a, b)), "+ statement s v2\n");
  b.erase(b.begin());
  EXPECT_EQ(FormatDiff(DiffStatements(a, b)),
            "~ statement s: version v1 -> v2\nSDK Foo SDK (removed):\n  - data type device_id\n"
            "  - entry foo-sdk\n");
}

TEST(PolicyDiffTest, JsonCarriesEveryChange) {
  const auto j = nlohmann::json::parse(DiffToJson(DiffPolicies(
      Load(), Load({{"ontology", {{"    parents: [device_id]\n", ""}}},
                    {"cookies", {{"max_age_seconds: 2592000", "max_age_seconds: 604800"}}}}))));
  EXPECT_FALSE(j["identical"].get<bool>());
  ASSERT_EQ(j["groups"].size(), 2u);
  EXPECT_EQ(j["groups"][0]["section"], "cookies");
  EXPECT_EQ(j["groups"][0]["name"], "acme-cookies");
  EXPECT_EQ(j["groups"][0]["status"], "changed");
  EXPECT_EQ(j["groups"][0]["changes"][0],
            nlohmann::json::parse(R"({"op":"changed","kind":"cookie","id":"sid",
                "field":"max_age_seconds","old":"2592000","new":"604800"})"));
  EXPECT_EQ(j["groups"][1]["section"], "ontology");
  EXPECT_EQ(j["groups"][1]["changes"][0]["old"], nlohmann::json::array({"device_id"}));
  EXPECT_EQ(j["groups"][1]["changes"][0]["new"], nlohmann::json::array());
  ASSERT_EQ(j["verdicts"].size(), 2u);  // Foo SDK, then Mini
  EXPECT_EQ(j["verdicts"][0]["sdk"], "Foo SDK");
  EXPECT_EQ(j["verdicts"][0]["data_type"], "oaid");
  EXPECT_EQ(j["verdicts"][0]["old"]["category"], "vague");
  EXPECT_EQ(j["verdicts"][0]["new"]["category"], "omitted");
  EXPECT_EQ(j["verdicts"][0]["new"]["finding"], "violation");
  EXPECT_EQ(j["verdicts"][0]["new"]["entry"], "foo-sdk");
  ASSERT_EQ(j["cookie_verdicts"].size(), 1u);
  EXPECT_EQ(j["cookie_verdicts"][0]["host"], "acme.com");
  EXPECT_EQ(j["cookie_verdicts"][0]["max_age_seconds"], 2592000);
  EXPECT_EQ(j["cookie_verdicts"][0]["new"]["category"], "lifetime_exceeded");
  EXPECT_EQ(j["hypothetical_flow"]["action"], "transmit");
  EXPECT_EQ(j["hypothetical_flow"]["channel"], "tcp");
}

}  // namespace
}  // namespace idflow::policy

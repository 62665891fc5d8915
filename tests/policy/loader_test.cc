// Loader: stages, schema strictness, FILE:LINE:COLUMN errors, the real policies/ dir.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "collector/policy/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::policy {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kOntology[] = R"(schema: idflow.policy/v1
kind: ontology
data_types:
  - id: device_id
    terms: [device ID]
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
sharing_methods:
  - id: sdk_local_acquisition
    actions: [acquire, transmit]
consents:
  - id: ux
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
    processes: ["/usr/bin/foo*"]
)";

absl::StatusOr<Policy> Load(const std::string& ontology, const std::string& statement = kStatement,
                            const std::string& bindings = kBindings) {
  return LoadPolicyFromStrings({"ontology.yaml", ontology}, {{"st.yaml", statement}},
                               {{"b.yaml", bindings}});
}

TEST(LoaderTest, LoadsMinimalPolicy) {
  auto p = Load(kOntology);
  ASSERT_THAT(p, IsOk());
  ASSERT_EQ(p->statements.size(), 1u);
  const Entry& e = p->statements[0].entries[0];
  EXPECT_EQ(e.id, "foo-sdk");
  EXPECT_EQ(e.line, 6);
  EXPECT_THAT(e.data_types, ElementsAre("device_id"));
  EXPECT_EQ(p->statements[0].file, "st.yaml");
  EXPECT_TRUE(p->ontology.Subsumes("device_id", "oaid"));
  EXPECT_TRUE(p->ontology.Subsumes("oaid", "oaid"));
  EXPECT_FALSE(p->ontology.Subsumes("oaid", "device_id"));
  EXPECT_FALSE(p->ontology.Subsumes("device_id", "mac_address"));
  EXPECT_THAT(p->ontology.scenarios, ElementsAre("casting"));
}

TEST(LoaderTest, BindingSdkNamesMatchStatementsFolded) {
  auto p = Load(kOntology, kStatement,
                "schema: idflow.policy/v1\nkind: bindings\nbindings:\n  - sdk: \"foo  sdk\"\n"
                "    modules: [\"*/libfoo.so\"]\n");
  ASSERT_THAT(p, IsOk());
  // A second binding spelled differently is still the same SDK: refused.
  auto twice = Load(kOntology, kStatement,
                    "schema: idflow.policy/v1\nkind: bindings\nbindings:\n  - sdk: Foo SDK\n"
                    "    modules: [\"*/libfoo.so\"]\n  - sdk: \"ＦＯＯ SDK\"\n"
                    "    modules: [\"*/libfoo2.so\"]\n");
  EXPECT_THAT(twice.status().message(), ::testing::HasSubstr("is already bound at"));
}

// The mini program is declared by an app policy alone: a binding may name it
// (apps load before bindings), so its flows are judged by the app policy.
TEST(LoaderTest, BindingMayNameAnSdkOnlyAnAppPolicyDeclares) {
  constexpr char kApp[] = R"(schema: idflow.policy/v1
kind: app
id: mini
version: "1"
entity: acme
sdks: ["Mini Program"]
features:
  - id: f
    section: "1"
    data_types: [device_id]
)";
  constexpr char kAppBindings[] = R"(schema: idflow.policy/v1
kind: bindings
bindings:
  - sdk: mini  program
    modules: ["*/libmini.so"]
)";
  PolicyFiles files;
  files.ontology = {"ontology.yaml", kOntology};
  files.statements = {{"st.yaml", kStatement}};
  files.bindings = {{"b.yaml", kAppBindings}};
  files.apps = {{"mini.yaml", kApp}};
  auto p = LoadPolicyFromStrings(files);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->SdkForModule("/opt/lib/libmini.so", ""), "mini  program");
  Flow f;
  f.call_chain = {"/opt/lib/libmini.so"};
  f.data_type = "device_id";
  f.action = "transmit";
  f.channel = "tcp";
  f.dest_host = "api.acme.com";
  Verdict v = Judge(*p, f);
  EXPECT_EQ(CategoryName(v.category), std::string("clear")) << v.explanation;
  EXPECT_EQ(v.statement, "mini");
  EXPECT_EQ(v.sdk, "Mini Program");
  // Without the app policy nothing declares it.
  files.apps.clear();
  EXPECT_THAT(LoadPolicyFromStrings(files).status().message(),
              HasSubstr("b.yaml:4:10: SDK 'mini  program' is named in no loaded statement or app "
                        "policy"));
}

TEST(LoaderTest, SharingMethodChannelsAreNetworkOrLocal) {
  const std::string ok = absl::StrReplaceAll(
      kOntology, {{"    actions: [acquire, transmit]\n",
                   "    actions: [acquire, transmit]\n    channels: [network, local]\n"}});
  auto p = Load(ok);
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->ontology.FindSharingMethod("sdk_local_acquisition")->channels,
              ElementsAre("network", "local"));
  const std::string bad = absl::StrReplaceAll(
      kOntology, {{"    actions: [acquire, transmit]\n",
                   "    actions: [acquire, transmit]\n    channels: [bluetooth]\n"}});
  EXPECT_THAT(Load(bad).status().message(),
              HasSubstr("ontology.yaml:19:16: unknown channel class 'bluetooth' (expected network "
                        "or local)"));
}

TEST(LoaderTest, StatementEntitiesJoinTheOntologyAndCannotRedefineOne) {
  const std::string st = absl::StrReplaceAll(
      kStatement,
      {{"id: s\n", "id: s\nentities:\n  - id: newco\n    name: \"New Co.\"\n"},
       {"third_party: Acme Ltd.\n    entity: acme", "third_party: New Co.\n    entity: newco"}});
  auto p = Load(kOntology, st);
  ASSERT_THAT(p, IsOk());
  ASSERT_NE(p->ontology.FindEntity("newco"), nullptr);
  EXPECT_EQ(p->statements[0].entities.size(), 1u);
  const std::string clash = absl::StrReplaceAll(
      kStatement, {{"id: s\n", "id: s\nentities:\n  - id: acme\n    name: \"Other Name\"\n"}});
  auto bad = Load(kOntology, clash);
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("is already defined as"));
}

struct BadCase {
  std::string name;
  std::string file;  // which file is broken: "ontology", "statement", "bindings"
  std::string text;
  std::string prefix;  // expected "FILE:LINE:COLUMN:" prefix
  std::string message;
  friend void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }
};

class LoaderErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(LoaderErrorTest, ReportsFileLineColumn) {
  const BadCase& c = GetParam();
  absl::StatusOr<Policy> p = c.file == "ontology"    ? Load(c.text)
                             : c.file == "statement" ? Load(kOntology, c.text)
                                                     : Load(kOntology, kStatement, c.text);
  ASSERT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(p.status().message()), StartsWith(c.prefix));
  EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, LoaderErrorTest,
    ::testing::Values(
        BadCase{"SyntaxError", "ontology", "schema: idflow.policy/v1\nkind: [ontology\n",
                "ontology.yaml:3:1:", "end of sequence"},
        BadCase{"BadIndent", "statement",
                "schema: idflow.policy/v1\nkind: statement\nid: s\n  version: v1\n",
                "st.yaml:4:10:", "illegal map value"},
        BadCase{"WrongSchema", "ontology", "schema: idflow.policy/v2\nkind: ontology\n",
                "ontology.yaml:1:9:", "unsupported schema"},
        BadCase{"WrongKind", "statement", "schema: idflow.policy/v1\nkind: ontology\n",
                "st.yaml:2:7:", "expected kind 'statement'"},
        BadCase{"NotAMap", "bindings", "- a\n- b\n", "b.yaml:1:1:", "expected a mapping"},
        BadCase{"UnknownTopKey", "ontology",
                "schema: idflow.policy/v1\nkind: ontology\ndatatypes: []\n",
                "ontology.yaml:3:1:", "unknown key 'datatypes'"},
        BadCase{"UnknownEntryKey", "statement", absl::StrCat(kStatement, "    purpose_of_use: x\n"),
                "st.yaml:14:5:", "unknown key 'purpose_of_use' in entry"},
        BadCase{"UnknownParent", "ontology",
                "schema: idflow.policy/v1\nkind: ontology\ndata_types:\n  - id: a\n    parents: "
                "[b]\n",
                "ontology.yaml:5:15:", "unknown parent data type 'b'"},
        BadCase{"ParentCycle", "ontology",
                "schema: idflow.policy/v1\nkind: ontology\ndata_types:\n  - id: a\n    parents: "
                "[b]\n  - id: b\n    parents: [a]\n",
                "ontology.yaml:5:15:", "its own ancestor"},
        BadCase{"DuplicateType", "ontology",
                "schema: idflow.policy/v1\nkind: ontology\ndata_types:\n  - id: a\n  - id: a\n",
                "ontology.yaml:5:9:", "duplicate data type 'a'"},
        BadCase{"BadDomain", "ontology",
                "schema: idflow.policy/v1\nkind: ontology\nentities:\n  - id: e\n    name: E\n"
                "    domains: [\"a.*.com\"]\n",
                "ontology.yaml:6:15:", "domain 'a.*.com'"},
        BadCase{"BadAction", "ontology",
                "schema: idflow.policy/v1\nkind: ontology\nsharing_methods:\n  - id: m\n"
                "    actions: [send]\n",
                "ontology.yaml:5:15:", "unknown action 'send'"},
        BadCase{"UnknownDataType", "statement",
                "schema: idflow.policy/v1\nkind: statement\nid: s\nversion: v1\nentries:\n"
                "  - id: e\n    third_party: Acme\n    entity: acme\n    sdk: Foo SDK\n"
                "    data_types: [device_id, mac_adress]\n",
                "st.yaml:10:29:", "unknown data type 'mac_adress'"},
        BadCase{"UnknownScenario", "statement",
                "schema: idflow.policy/v1\nkind: statement\nid: s\nversion: v1\nentries:\n"
                "  - id: e\n    third_party: Acme\n    entity: acme\n    sdk: Foo SDK\n"
                "    data_types: []\n    scenarios: [castng]\n",
                "st.yaml:11:17:", "unknown scenario 'castng'"},
        BadCase{"UnknownEntity", "statement",
                "schema: idflow.policy/v1\nkind: statement\nid: s\nversion: v1\nentries:\n"
                "  - id: e\n    third_party: Acme\n    entity: acne\n    sdk: Foo SDK\n"
                "    data_types: []\n",
                "st.yaml:8:13:", "unknown entity 'acne'"},
        BadCase{"ThirdPartyNotEntity", "statement",
                "schema: idflow.policy/v1\nkind: statement\nid: s\nversion: v1\nentries:\n"
                "  - id: e\n    third_party: Other Corp\n    entity: acme\n    sdk: Foo SDK\n"
                "    data_types: []\n",
                "st.yaml:7:18:", "not a name or alias of entity 'acme'"},
        BadCase{"UnknownConsent", "statement",
                "schema: idflow.policy/v1\nkind: statement\nid: s\nversion: v1\nentries:\n"
                "  - id: e\n    third_party: Acme\n    entity: acme\n    sdk: Foo SDK\n"
                "    data_types: []\n    requires_consent: [ux, gdpr]\n",
                "st.yaml:11:28:", "unknown consent 'gdpr'"},
        BadCase{"MissingSdk", "statement",
                "schema: idflow.policy/v1\nkind: statement\nid: s\nversion: v1\nentries:\n"
                "  - id: e\n    third_party: Acme\n    entity: acme\n    data_types: []\n",
                "st.yaml:6:5:", "missing required key 'sdk'"},
        BadCase{"DuplicateEntry", "statement",
                absl::StrCat(kStatement,
                             "  - id: foo-sdk\n    third_party: Acme\n    entity: acme\n"
                             "    sdk: Foo SDK\n    data_types: []\n"),
                "st.yaml:14:9:", "duplicate entry id 'foo-sdk'"},
        BadCase{"ListExpected", "statement",
                "schema: idflow.policy/v1\nkind: statement\nid: s\nversion: v1\nentries:\n"
                "  - id: e\n    third_party: Acme\n    entity: acme\n    sdk: Foo SDK\n"
                "    data_types: device_id\n",
                "st.yaml:10:17:", "'data_types' must be a list"},
        BadCase{"BindingUnknownSdk", "bindings",
                "schema: idflow.policy/v1\nkind: bindings\nbindings:\n  - sdk: Bar SDK\n"
                "    modules: [\"*/libbar.so\"]\n",
                "b.yaml:4:10:", "SDK 'Bar SDK' is named in no loaded statement"},
        BadCase{"BindingWithoutPatterns", "bindings",
                "schema: idflow.policy/v1\nkind: bindings\nbindings:\n  - sdk: Foo SDK\n",
                "b.yaml:4:5:", "at least one of 'modules' or 'processes'"},
        BadCase{"BindingTypo", "bindings",
                "schema: idflow.policy/v1\nkind: bindings\nbindings:\n  - sdk: Foo SDK\n"
                "    module: [\"*/libfoo.so\"]\n",
                "b.yaml:5:5:", "unknown key 'module' in binding"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return p.param.name; });

TEST(LoaderTest, DuplicateStatementAcrossFiles) {
  auto p = LoadPolicyFromStrings({"o.yaml", kOntology},
                                 {{"a.yaml", kStatement}, {"b.yaml", kStatement}}, {});
  ASSERT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(p.status().message()), StartsWith("b.yaml:3:5:"));
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("already loaded from a.yaml"));
}

TEST(LoaderTest, MissingDirectoryNamesOntologyFile) {
  auto p = LoadPolicyDir("/nonexistent/idflow-policies");
  ASSERT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(p.status().message()),
              StartsWith("/nonexistent/idflow-policies/ontology.yaml:1:1:"));
}

TEST(OntologyTest, FindEntityByHost) {
  auto p = Load(kOntology);
  ASSERT_THAT(p, IsOk());
  const Ontology& o = p->ontology;
  ASSERT_NE(o.FindEntityByHost("a.acme.com"), nullptr);
  EXPECT_EQ(o.FindEntityByHost("a.acme.com")->id, "acme");
  EXPECT_NE(o.FindEntityByHost("acme.com"), nullptr);
  EXPECT_NE(o.FindEntityByHost("X.B.ACME.COM."), nullptr);
  EXPECT_NE(o.FindEntityByHost("api.acme.com:443"), nullptr);
  EXPECT_EQ(o.FindEntityByHost("notacme.com"), nullptr);
  EXPECT_EQ(o.FindEntityByHost("acme.com.evil.net"), nullptr);
  EXPECT_EQ(o.FindEntityByHost(""), nullptr);
  EXPECT_EQ(o.FindEntityByName("ACME"), &o.entities[0]);
  EXPECT_EQ(o.FindEntityByName("acme ltd."), &o.entities[0]);
  EXPECT_EQ(o.FindEntityByName("Acme Inc."), nullptr);
}

TEST(PolicyTest, SdkForModuleThenProcess) {
  auto p = Load(kOntology);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->SdkForModule("/data/app/x/lib/arm64/libfoo.so", ""), "Foo SDK");
  EXPECT_EQ(p->SdkForModule("/data/app/x/lib/arm64/libfoo.so.1", ""), "");
  EXPECT_EQ(p->SdkForModule("/lib/libc.so.6", "/usr/bin/foobar"), "Foo SDK");
  EXPECT_EQ(p->SdkForModule("/lib/libc.so.6", "/usr/bin/curl"), "");
  EXPECT_EQ(p->SdkForModule("", ""), "");
}

TEST(LintTest, ReportsIncompleteEntriesAndUnusedTypes) {
  const std::string statement = R"(schema: idflow.policy/v1
kind: statement
id: s
version: v1
entries:
  - id: bare
    third_party: Acme
    entity: acme
    sdk: Foo SDK
    data_types: []
)";
  auto p = Load(kOntology, statement);
  ASSERT_THAT(p, IsOk());
  std::vector<std::string> findings = LintPolicy(*p);
  EXPECT_THAT(findings, ::testing::Contains("st.yaml:6: entry bare: declares no data type"));
  EXPECT_THAT(findings,
              ::testing::Contains("ontology: data type mac_address is declared by no entry"));
  EXPECT_THAT(findings, ::testing::Contains("ontology: scenario casting is used by no entry"));
}

TEST(LoaderTest, DirectoryOrderIsSortedAndStatementsOptional) {
  const std::string dir = ::testing::TempDir() + "/idflow_policy_dir_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/statements");
  auto write = [](const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  };
  write(dir + "/ontology.yaml", kOntology);
  {
    auto p = LoadPolicyDir(dir);
    ASSERT_THAT(p, IsOk());
    EXPECT_TRUE(p->statements.empty());
  }
  std::string second = kStatement;
  second.replace(second.find("version: v1"), 11, "version: v2");
  write(dir + "/statements/b.yml", kStatement);
  write(dir + "/statements/a.yaml", second);
  write(dir + "/statements/notes.txt", "ignored");
  auto p = LoadPolicyDir(dir);
  ASSERT_THAT(p, IsOk());
  ASSERT_EQ(p->statements.size(), 2u);
  EXPECT_EQ(p->statements[0].version, "v2");
  EXPECT_EQ(p->statements[0].file, dir + "/statements/a.yaml");
  EXPECT_EQ(p->statements[1].version, "v1");
  std::filesystem::remove_all(dir);
}

// ---- the checked-in policies/ directory ------------------------------------

class RealPolicyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = LoadPolicyDir(absl::StrCat(IDFLOW_SOURCE_DIR, "/policies"));
    ASSERT_THAT(p, IsOk());
    policy_ = new Policy(*std::move(p));
  }
  static void TearDownTestSuite() { delete policy_; }
  static const Policy* policy_;
};
const Policy* RealPolicyTest::policy_ = nullptr;

TEST_F(RealPolicyTest, InterconnectivityStatementHasAllFifteenEntries) {
  ASSERT_EQ(policy_->statements.size(), 1u);
  const Statement& s = policy_->statements[0];
  EXPECT_EQ(s.id, "interconnectivity-data-sharing");
  EXPECT_EQ(s.version, "v20250508");
  std::vector<std::string> ids;
  for (const Entry& e : s.entries) ids.push_back(e.id);
  EXPECT_THAT(ids,
              ElementsAre("tianqin-sdk-device-discovery", "idm-sdk", "onetrack-sdk", "lebo-sdk",
                          "xiaomi-home", "mi-fitness", "mis-sdk", "yunkong-sdk",
                          "device-interconnectivity-services-sdk", "quick-apps-service-framework",
                          "tianqin-sdk-wps-media-insert", "xiaomi-account-sdk", "mi-ai-engine",
                          "cross-device-identity-verification-sdk", "search-services"));
  const Entry& lebo = s.entries[3];
  EXPECT_EQ(lebo.third_party, "Shenzhen Lebo Technology Co., Ltd.");
  EXPECT_EQ(lebo.sdk, "Lebo SDK");
  EXPECT_THAT(lebo.shared_data, ElementsAre("TV name and type"));
  EXPECT_THAT(lebo.data_types, ElementsAre("device_name", "device_type"));
  EXPECT_EQ(lebo.usage_scenario, "during casting");
  EXPECT_EQ(lebo.rules_link, "https://cdn.hpplay.com.cn/xm/privacy.html");
  for (const Entry& e : s.entries) {
    EXPECT_FALSE(e.data_types.empty()) << e.id;
    EXPECT_FALSE(e.scenarios.empty()) << e.id;
    EXPECT_EQ(e.sharing_methods.size(), 1u) << e.id;
  }
}

TEST_F(RealPolicyTest, DemoBindings) {
  EXPECT_EQ(policy_->SdkForModule("/opt/demo/lib/libidm_sdk.so", "/opt/demo/bin/app"), "IDM SDK");
  EXPECT_EQ(policy_->SdkForModule("/opt/demo/lib/liblebo_sdk.so", ""), "Lebo SDK");
  EXPECT_EQ(policy_->SdkForModule("/opt/demo/lib/libonetrack_sdk.so", ""), "OneTrack SDK");
  EXPECT_EQ(policy_->SdkForModule("/opt/demo/lib/libmystery_sdk.so", "/opt/demo/bin/app"), "");
  // The scenario suite's SDKs, among them one only an app policy declares.
  EXPECT_EQ(policy_->SdkForModule("/b/fixtures/scenarios/libsearch_services_sdk.so", ""),
            "search services");
  EXPECT_EQ(policy_->SdkForModule("/b/fixtures/scenarios/libmijia_mini_program.so", ""),
            "Mijia Mini Program");
  EXPECT_EQ(policy_->SdkForModule("/b/fixtures/scenarios/libadnet_sdk.so", ""), "");
  EXPECT_EQ(policy_->SdkForModule("/usr/lib/x86_64-linux-gnu/libcurl.so.4", "/usr/bin/curl"), "");
}

TEST_F(RealPolicyTest, EntitiesAndDomains) {
  const Ontology& o = policy_->ontology;
  EXPECT_EQ(o.FindEntityByHost("privacy.mi.com")->id, "xiaomi");
  EXPECT_EQ(o.FindEntityByHost("tracking.xiaomi.net")->id, "xiaomi");
  EXPECT_EQ(o.FindEntityByHost("cdn.hpplay.com.cn")->id, "lebo");
  EXPECT_EQ(o.FindEntityByHost("privacy.wps.cn")->id, "kingsoft_office");
  EXPECT_EQ(o.FindEntityByHost("www.wps.com")->id, "kingsoft_office");
  EXPECT_EQ(o.FindEntityByName("Xiaomi EV Technology Co., Ltd.")->id, "xiaomi");
  EXPECT_EQ(o.FindEntityByName("Beijing Xiaomi Mobile Software Co., Ltd.")->id, "xiaomi");
  EXPECT_TRUE(o.Subsumes("network_address", "bluetooth_address"));
  EXPECT_TRUE(o.Subsumes("device_id", "car_device_id"));
  EXPECT_TRUE(o.Subsumes("device_id", "oaid"));
}

TEST_F(RealPolicyTest, LintIsQuietOnEntries) {
  for (const std::string& finding : LintPolicy(*policy_)) {
    EXPECT_THAT(finding, ::testing::Not(HasSubstr("entry "))) << finding;
  }
}

}  // namespace
}  // namespace idflow::policy

// SummarizeSdks / FormatSdkSummary: per SDK, declared data types against
// observed ones, then the violations (the README's demo prints this).
#include "tools/sdk_summary.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow::tools {
namespace {

using ::testing::ElementsAre;

constexpr char kOntology[] = R"(schema: idflow.policy/v1
kind: ontology
data_types:
  - id: device_id
  - id: oaid
    parents: [device_id]
  - id: mac_address
  - id: usage_stats
entities:
  - id: acme
    name: Acme Ltd.
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
  - id: foo-casting
    third_party: Acme Ltd.
    entity: acme
    sdk: Foo SDK
    data_types: [device_id]
  - id: foo-discovery
    third_party: Acme Ltd.
    entity: acme
    sdk: Foo SDK
    data_types: [mac_address, device_id]
)";

constexpr char kApp[] = R"(schema: idflow.policy/v1
kind: app
id: mini
version: "1"
entity: acme
sdks: ["Mini Program"]
features:
  - id: analytics
    section: "2"
    data_types: [usage_stats]
)";

policy::Policy TestPolicy() {
  policy::PolicyFiles files;
  files.ontology = {"ontology.yaml", kOntology};
  files.statements = {{"s.yaml", kStatement}};
  files.apps = {{"mini.yaml", kApp}};
  auto p = policy::LoadPolicyFromStrings(files);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

idflow::v1::Verdict V(std::string sdk, std::string module, std::string data_type,
                      std::string verdict, idflow::v1::Finding finding,
                      std::string explanation = "") {
  idflow::v1::Verdict v;
  v.set_sdk(std::move(sdk));
  v.set_module(std::move(module));
  v.set_data_type(std::move(data_type));
  v.set_verdict(std::move(verdict));
  v.set_finding(finding);
  v.set_action("transmit");
  v.set_destination("api.acme.com");
  v.set_explanation(std::move(explanation));
  return v;
}

constexpr auto kClear = idflow::v1::FINDING_CLEAR;
constexpr auto kViolation = idflow::v1::FINDING_VIOLATION;

std::vector<idflow::v1::Verdict> Sample() {
  std::vector<idflow::v1::Verdict> vs = {
      V("Foo SDK", "/lib/libfoo.so", "device_id", "clear", kClear),
      V("Foo SDK", "/lib/libfoo.so", "device_id", "out_of_scenario", kViolation,
        "Foo SDK sent device_id during casting."),
      V("Foo SDK", "/lib/libfoo.so", "oaid", "vague", kViolation, "Foo SDK sent oaid."),
      V("Foo SDK", "/lib/libfoo2.so", "usage_stats", "omitted", kViolation,
        "Foo SDK sent usage_stats."),
      V("", "/lib/libad.so", "oaid", "undeclared_party", kViolation, "Module sent oaid."),
      V("Mini Program", "/lib/libmini.so", "usage_stats", "no_consent", kViolation,
        "Mini Program sent usage_stats."),
      // Nobody is responsible: no SDK block.
      V("", "", "mac_address", "unattributable", idflow::v1::FINDING_OBSERVATION),
  };
  idflow::v1::Verdict cookie = V("Foo SDK", "/lib/libfoo.so", "cookie", "undeclared_cookie",
                                 kViolation, "Cookie t is declared by no row.");
  cookie.set_cookie_name("t");
  cookie.set_destination("www.acme.com");
  vs.push_back(cookie);
  return vs;
}

TEST(SdkSummaryTest, DeclaredAgainstObservedPerSdk) {
  const std::vector<SdkSummary> s = SummarizeSdks(TestPolicy(), Sample());
  ASSERT_EQ(s.size(), 3u);
  // Declared SDKs first, by name; then modules no declaration names.
  EXPECT_EQ(s[0].sdk, "Foo SDK");
  EXPECT_THAT(s[0].modules, ElementsAre("/lib/libfoo.so", "/lib/libfoo2.so"));
  // Over all its entries, in file order, each once.
  EXPECT_THAT(s[0].declared, ElementsAre("device_id", "mac_address"));
  ASSERT_EQ(s[0].observed.size(), 3u);
  EXPECT_EQ(s[0].observed[0].data_type, "device_id");
  EXPECT_EQ(s[0].observed[0].coverage, Coverage::kDeclared);
  EXPECT_THAT(s[0].observed[0].categories, ElementsAre("clear", "out_of_scenario"));
  EXPECT_EQ(s[0].observed[1].data_type, "oaid");
  EXPECT_EQ(s[0].observed[1].coverage, Coverage::kBroader);
  EXPECT_EQ(s[0].observed[1].via, "device_id");
  EXPECT_EQ(s[0].observed[2].data_type, "usage_stats");
  EXPECT_EQ(s[0].observed[2].coverage, Coverage::kUndeclared);
  ASSERT_EQ(s[0].cookies.size(), 1u);
  EXPECT_EQ(s[0].cookies[0].name, "t");
  // An SDK only an app policy declares: its features' data types.
  EXPECT_EQ(s[1].sdk, "Mini Program");
  EXPECT_THAT(s[1].declared, ElementsAre("usage_stats"));
  EXPECT_EQ(s[1].observed[0].coverage, Coverage::kDeclared);
  // No declaration: keyed by module, nothing declared.
  EXPECT_EQ(s[2].sdk, "");
  EXPECT_THAT(s[2].modules, ElementsAre("/lib/libad.so"));
  EXPECT_TRUE(s[2].declared.empty());
  EXPECT_EQ(s[2].observed[0].coverage, Coverage::kUndeclared);
}

TEST(SdkSummaryTest, FormatsBlocksThenViolationsWithExplanations) {
  const std::vector<idflow::v1::Verdict> vs = Sample();
  EXPECT_EQ(FormatSdkSummary(SummarizeSdks(TestPolicy(), vs), vs),
            R"(SDKs: declared data types against observed ones
Foo SDK (libfoo.so, libfoo2.so)
  declared  device_id, mac_address
  observed  device_id (declared: clear, out_of_scenario), oaid (only as device_id: vague), usage_stats (not declared: omitted)
  cookies   t (undeclared_cookie)
Mini Program (libmini.so)
  declared  usage_stats
  observed  usage_stats (declared: no_consent)
libad.so
  declared  nothing (no statement names it)
  observed  oaid (not declared: undeclared_party)

Violations (6)
  omitted  Foo SDK (libfoo2.so)  transmit usage_stats to api.acme.com
    Foo SDK sent usage_stats.
  out_of_scenario  Foo SDK (libfoo.so)  transmit device_id to api.acme.com
    Foo SDK sent device_id during casting.
  undeclared_cookie  Foo SDK (libfoo.so)  cookie t of www.acme.com
    Cookie t is declared by no row.
  vague  Foo SDK (libfoo.so)  transmit oaid to api.acme.com
    Foo SDK sent oaid.
  no_consent  Mini Program (libmini.so)  transmit usage_stats to api.acme.com
    Mini Program sent usage_stats.
  undeclared_party  libad.so  transmit oaid to api.acme.com
    Module sent oaid.
)");
}

TEST(SdkSummaryTest, NothingObserved) {
  EXPECT_EQ(FormatSdkSummary({}, {}), "no verdicts\n");
  // Only verdicts nobody is responsible for: no block, no violation.
  const std::vector<idflow::v1::Verdict> vs = {
      V("", "", "mac_address", "unattributable", idflow::v1::FINDING_OBSERVATION)};
  EXPECT_EQ(FormatSdkSummary(SummarizeSdks(TestPolicy(), vs), vs),
            "SDKs: declared data types against observed ones\n\nViolations (0)\n");
}

}  // namespace
}  // namespace idflow::tools

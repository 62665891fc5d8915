// Judge(): table-driven over the real policies/ dir (a clear and a violating
// flow for each of the 15 entries, every category), plus precedence on a
// synthetic policy.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/policy/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/real_policy.h"
#include "tests/policy/sample_flows.h"
#include "tests/testing/status_matchers.h"

namespace idflow::policy {
namespace {

using ::idflow::testing::IsOk;
using ::testing::HasSubstr;

// A flow together with the SDK the table holds responsible for it ("" =
// an unbound module): the real bindings name only the demo SDKs, so the
// table judges through JudgeResolved; resolution has its own tests below.
struct SdkFlow {
  std::string sdk;
  Flow flow;
};

constexpr const char* kModule = kSampleModule;

Verdict JudgeAs(const Policy& p, const SdkFlow& f) {
  Responsible r;
  r.role = f.sdk.empty() ? Responsible::Role::kUnbound : Responsible::Role::kSdk;
  r.module = kModule;
  r.sdk = f.sdk;
  return JudgeResolved(p, r, f.flow);
}

struct Case {
  std::string name;
  SdkFlow flow;
  Category want;
  std::string entry;        // expected entry id ("" for undeclared_party)
  std::string explanation;  // substring expected in the explanation
  friend void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }
};

SdkFlow F(std::string sdk, std::string data_type, std::string action = "transmit",
          std::string host = "", std::vector<std::string> scenarios = {},
          std::map<std::string, bool> consents = {}) {
  return {std::move(sdk), SampleFlow(std::move(data_type), std::move(action), std::move(host),
                                     std::move(scenarios), std::move(consents))};
}

class RealVerdictTest : public ::testing::TestWithParam<Case> {};

TEST_P(RealVerdictTest, Judges) {
  const Case& c = GetParam();
  Verdict v = JudgeAs(RealPolicy(), c.flow);
  EXPECT_EQ(CategoryName(v.category), std::string(CategoryName(c.want))) << v.explanation;
  EXPECT_EQ(v.entry, c.entry) << v.explanation;
  // Every verdict names the statement it was judged against; an undeclared
  // party has no entry, and its explanation names the statements searched.
  EXPECT_EQ(v.statement, "interconnectivity-data-sharing");
  EXPECT_EQ(v.version, "v20250508");
  if (c.want == Category::kUndeclaredParty) {
    EXPECT_THAT(v.explanation, HasSubstr("interconnectivity-data-sharing v20250508"));
  }
  EXPECT_THAT(v.explanation, HasSubstr(c.explanation));
  // One sentence: ends with a period.
  ASSERT_FALSE(v.explanation.empty());
  EXPECT_EQ(v.explanation.back(), '.');
  EXPECT_EQ(IsViolation(v.category), c.want != Category::kClear);
  EXPECT_EQ(v.finding, FindingOf(c.want));
  EXPECT_EQ(v.sdk, c.flow.sdk);
  EXPECT_EQ(v.module, kModule);
}

const std::map<std::string, bool> kUxOn = {{"user_experience_program", true},
                                           {"privacy_policy", true}};
const std::map<std::string, bool> kUxOff = {{"user_experience_program", false}};

INSTANTIATE_TEST_SUITE_P(
    Entries, RealVerdictTest,
    ::testing::Values(
        // 1 tianqin-sdk-device-discovery (Tianqin is in two entries).
        Case{"TianqinDiscoveryClear",
             F("Tianqin SDK", "file_info", "transmit", "p2p.mi.com", {"device_discovery"}),
             Category::kClear, "tianqin-sdk-device-discovery", "as declared by entry"},
        Case{"TianqinDiscoveryWrongRecipient",
             F("Tianqin SDK", "mac_address", "transmit", "tracker.example.com"),
             Category::kWrongRecipient, "tianqin-sdk-device-discovery",
             "which belongs to no known entity"},
        Case{"TianqinVagueOaid", F("Tianqin SDK", "oaid", "acquire"), Category::kVague,
             "tianqin-sdk-device-discovery", "only through the broader term device_id"},
        Case{"TianqinOmittedNamesBothEntries", F("Tianqin SDK", "search_keywords"),
             Category::kOmitted, "tianqin-sdk-device-discovery",
             "none of its entries (tianqin-sdk-device-discovery, tianqin-sdk-wps-media-insert)"},
        // 2 idm-sdk
        Case{"IdmClear",
             F("IDM SDK", "mac_address", "transmit", "idm.mi.com", {"device_discovery"}),
             Category::kClear, "idm-sdk", "IDM SDK sent mac_address to idm.mi.com (Xiaomi Inc.)"},
        Case{"IdmOmitted", F("IDM SDK", "file_info"), Category::kOmitted, "idm-sdk",
             "declares only device_id, ip_address"},
        Case{"IdmOutOfScenario", F("IDM SDK", "bluetooth_address", "acquire", "", {"casting"}),
             Category::kOutOfScenario, "idm-sdk", "declares it only for device_discovery"},
        // 3 onetrack-sdk
        Case{"OneTrackClear",
             F("OneTrack SDK", "oaid", "transmit", "tracking.xiaomi.net", {"app_features"}, kUxOn),
             Category::kClear, "onetrack-sdk", "as declared"},
        Case{"OneTrackNoConsent",
             F("OneTrack SDK", "oaid", "transmit", "tracking.xiaomi.net", {}, kUxOff),
             Category::kNoConsent, "onetrack-sdk", "consent user_experience_program was false"},
        Case{"OneTrackRawDeviceIdOmitted", F("OneTrack SDK", "device_id"), Category::kOmitted,
             "onetrack-sdk", "declares only oaid"},
        // 4 lebo-sdk
        Case{"LeboClear",
             F("Lebo SDK", "device_name", "transmit", "API.hpplay.com.cn.:443", {"casting"}),
             Category::kClear, "lebo-sdk", "Shenzhen Lebo"},
        Case{"LeboOmitted", F("Lebo SDK", "mac_address", "transmit", "api.hpplay.com.cn"),
             Category::kOmitted, "lebo-sdk",
             "Lebo SDK sent mac_address, but entry lebo-sdk of statement "
             "interconnectivity-data-sharing v20250508 declares only device_name, device_type."},
        Case{"LeboWrongRecipient", F("Lebo SDK", "device_type", "transmit", "data.mi.com"),
             Category::kWrongRecipient, "lebo-sdk", "which belongs to Xiaomi Inc."},
        // 5 xiaomi-home
        Case{"XiaomiHomeClear", F("Xiaomi Home", "mac_address", "acquire"), Category::kClear,
             "xiaomi-home", "read mac_address"},
        Case{"XiaomiHomeOmitted", F("Xiaomi Home", "bluetooth_address", "acquire"),
             Category::kOmitted, "xiaomi-home", "declares only device_id, device_icon"},
        // 6 mi-fitness
        Case{"MiFitnessClear",
             F("Mi Fitness", "battery_level", "acquire", "", {"wearable_control"}),
             Category::kClear, "mi-fitness", "as declared"},
        Case{"MiFitnessOutOfScenario", F("Mi Fitness", "battery_level", "acquire", "", {"casting"}),
             Category::kOutOfScenario, "mi-fitness", "during casting"},
        // 7 mis-sdk
        Case{"MisClear", F("MIS SDK", "car_device_id", "transmit", "car.xiaomi.com"),
             Category::kClear, "mis-sdk", "as declared"},
        Case{"MisPhoneDeviceIdOmitted", F("MIS SDK", "device_id"), Category::kOmitted, "mis-sdk",
             "declares only car_device_id, mac_address"},
        // 8 yunkong-sdk
        Case{"YunkongClear", F("Yunkong SDK", "oaid", "transmit", "", {"interconnectivity_launch"}),
             Category::kClear, "yunkong-sdk", "no destination known"},
        Case{"YunkongOmitted", F("Yunkong SDK", "mac_address"), Category::kOmitted, "yunkong-sdk",
             "declares only oaid"},
        // 9 device-interconnectivity-services-sdk
        Case{"DisClear",
             F("Device interconnectivity services SDK", "photo", "transmit", "10.0.0.7"),
             Category::kClear, "device-interconnectivity-services-sdk",
             "an IP address, so the recipient is unverified"},
        Case{"DisWrongRecipient",
             F("Device interconnectivity services SDK", "photo", "transmit", "upload.example.org"),
             Category::kWrongRecipient, "device-interconnectivity-services-sdk", "example.org"},
        // 10 quick-apps-service-framework
        Case{"QuickAppsClear",
             F("Quick apps Service Framework", "notification", "acquire", "",
               {"notification_transfer"}),
             Category::kClear, "quick-apps-service-framework", "as declared"},
        Case{"QuickAppsOutOfScenario",
             F("Quick apps Service Framework", "notification", "acquire", "", {"file_search"}),
             Category::kOutOfScenario, "quick-apps-service-framework", "notification_transfer"},
        // 11 tianqin-sdk-wps-media-insert
        Case{"TianqinWpsClear", F("Tianqin SDK", "media", "transmit", "docs.wps.cn"),
             Category::kClear, "tianqin-sdk-wps-media-insert", "Zhuhai Kingsoft"},
        Case{"TianqinWpsVaguePhoto", F("Tianqin SDK", "photo", "transmit", "www.wps.com"),
             Category::kVague, "tianqin-sdk-wps-media-insert", "broader term media"},
        // Device discovery declares media ("content such as images and video")
        // for Xiaomi: Lebo's host is the wrong recipient.
        Case{"TianqinMediaWrongRecipient",
             F("Tianqin SDK", "media", "transmit", "api.hpplay.com.cn"), Category::kWrongRecipient,
             "tianqin-sdk-device-discovery", "declares Xiaomi Inc. as the recipient"},
        // 12 xiaomi-account-sdk
        Case{"AccountClear",
             F("Xiaomi Account SDK", "account_id", "transmit", "account.xiaomi.com"),
             Category::kClear, "xiaomi-account-sdk", "as declared"},
        Case{"AccountOmitted", F("Xiaomi Account SDK", "ip_address"), Category::kOmitted,
             "xiaomi-account-sdk", "declares only account_id, device_fid"},
        // 13 mi-ai-engine
        Case{"MiAiClear", F("Mi AI Engine", "business_device_id", "acquire"), Category::kClear,
             "mi-ai-engine", "as declared"},
        Case{"MiAiWrongRecipient", F("Mi AI Engine", "device_name", "transmit", "ai.wps.cn"),
             Category::kWrongRecipient, "mi-ai-engine", "belongs to Zhuhai Kingsoft"},
        // 14 cross-device-identity-verification-sdk
        Case{"CrossDeviceClear",
             F("Cross-device identity verification SDK", "service_id", "transmit", "id.mi.com"),
             Category::kClear, "cross-device-identity-verification-sdk", "as declared"},
        Case{"CrossDeviceRawIdOmitted", F("Cross-device identity verification SDK", "device_fid"),
             Category::kOmitted, "cross-device-identity-verification-sdk",
             "declares only service_id"},
        // 15 search-services
        Case{"SearchClear", F("search services", "search_keywords", "transmit", "search.mi.com"),
             Category::kClear, "search-services", "as declared"},
        Case{"SearchMethodMismatch", F("search services", "search_keywords", "acquire"),
             Category::kMethodMismatch, "search-services", "declares only backend_api_transfer"},
        // A backend API transfer never passes through another process on the device.
        Case{"SearchOverLocalIpcMethodMismatch",
             [] {
               SdkFlow f = F("search services", "search_keywords", "transmit");
               f.flow.channel = "unix";
               f.flow.peer_exe = "/usr/bin/indexer";
               return f;
             }(),
             Category::kMethodMismatch, "search-services",
             "over a local unix channel to /usr/bin/indexer, but entry search-services of "
             "statement interconnectivity-data-sharing v20250508 declares only "
             "backend_api_transfer, which takes only network channels."},
        Case{"SearchOverTlsClear",
             [] {
               SdkFlow f = F("search services", "search_keywords", "transmit", "search.mi.com");
               f.flow.channel = "tls-openssl";
               return f;
             }(),
             Category::kClear, "search-services", "as declared"},
        // On-device methods name how data is obtained, not the only path it takes.
        Case{"LocalMethodOverUnixClear",
             [] {
               SdkFlow f = F("Quick apps Service Framework", "notification", "transmit", "",
                             {"notification_transfer"});
               f.flow.channel = "unix";
               f.flow.peer_exe = "/usr/bin/peer";
               return f;
             }(),
             Category::kClear, "quick-apps-service-framework", "as declared"},
        // Undeclared parties and odd inputs.
        Case{"NoSdk", F("", "mac_address"), Category::kUndeclaredParty, "",
             "Module /opt/demo/lib/libsdk.so maps to no SDK declared in"},
        Case{"SdkInNoStatement", F("Mystery SDK", "mac_address"), Category::kUndeclaredParty, "",
             "Mystery SDK (module /opt/demo/lib/libsdk.so) is named in none of"},
        Case{"EmptyDataType", F("Lebo SDK", ""), Category::kOmitted, "lebo-sdk",
             "an unnamed data item"},
        Case{"UnknownDataType", F("Lebo SDK", "shoe_size"), Category::kOmitted, "lebo-sdk",
             "shoe_size (not a data type in the ontology)"},
        Case{"UnixSocketNoRecipientCheck",
             [] {
               SdkFlow f = F("Lebo SDK", "device_name", "transmit", "/usr/bin/peer");
               f.flow.channel = "unix";
               f.flow.peer_exe = "/usr/bin/peer";
               return f;
             }(),
             Category::kClear, "lebo-sdk", "as declared"},
        Case{"ScenarioOverlapIsEnough",
             F("Lebo SDK", "device_name", "transmit", "", {"app_features", "casting"}),
             Category::kClear, "lebo-sdk", "as declared"},
        Case{"ConsentTrueOrAbsentIsFine",
             F("OneTrack SDK", "app_id", "transmit", "", {}, {{"privacy_policy", true}}),
             Category::kClear, "onetrack-sdk", "as declared"}),
    [](const ::testing::TestParamInfo<Case>& p) { return p.param.name; });

// The policy namespace sees the one list (common/verdict_categories.h).
TEST(CategoryTest, Names) {
  EXPECT_EQ(CategoryName(Category::kClear), "clear");
  EXPECT_EQ(CategoryName(Category::kUndeclaredParty), "undeclared_party");
  EXPECT_EQ(CategoryName(Category::kLocalAcquisition), "local_acquisition");
  EXPECT_FALSE(IsViolation(Category::kClear));
  EXPECT_TRUE(IsViolation(Category::kVague));
  EXPECT_FALSE(IsViolation(Category::kSameAppIpc));
  EXPECT_EQ(FindingOf(Category::kUnattributable), Finding::kObservation);
}

// Precedence across entries of one SDK on a synthetic policy.
class PrecedenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string ontology = R"(schema: idflow.policy/v1
kind: ontology
data_types:
  - id: device_id
  - id: oaid
    parents: [device_id]
entities:
  - id: a
    name: A Corp
    domains: ["*.a.com"]
  - id: b
    name: B Corp
    domains: ["*.b.com"]
scenarios:
  - id: x
  - id: y
)";
    const std::string statement = R"(schema: idflow.policy/v1
kind: statement
id: st
version: v1
entries:
  - id: to-a-in-x
    third_party: A Corp
    entity: a
    sdk: S
    data_types: [device_id]
    scenarios: [x]
  - id: to-b-in-y
    third_party: B Corp
    entity: b
    sdk: S
    data_types: [device_id]
    scenarios: [y]
  - id: to-b-oaid-in-y
    third_party: B Corp
    entity: b
    sdk: S
    data_types: [oaid]
    scenarios: [y]
)";
    auto p = LoadPolicyFromStrings({"o.yaml", ontology}, {{"s.yaml", statement}}, {});
    ASSERT_THAT(p, IsOk());
    policy_ = *std::move(p);
  }
  Policy policy_;
};

TEST_F(PrecedenceTest, ContextBeatsWrongRecipient) {
  // to-a-in-x: wrong_recipient; to-b-in-y: out_of_scenario.
  Verdict v = JudgeAs(policy_, F("S", "device_id", "transmit", "api.b.com", {"x"}));
  EXPECT_EQ(v.category, Category::kOutOfScenario);
  EXPECT_EQ(v.entry, "to-b-in-y");
}

TEST_F(PrecedenceTest, ClearBeatsVague) {
  // to-b-in-y declares oaid vaguely (device_id), to-b-oaid-in-y exactly.
  Verdict v = JudgeAs(policy_, F("S", "oaid", "transmit", "api.b.com", {"y"}));
  EXPECT_EQ(v.category, Category::kClear);
  EXPECT_EQ(v.entry, "to-b-oaid-in-y");
}

TEST_F(PrecedenceTest, VagueBeatsContextViolation) {
  Verdict v = JudgeAs(policy_, F("S", "oaid", "transmit", "api.a.com", {"x"}));
  EXPECT_EQ(v.category, Category::kVague);
  EXPECT_EQ(v.entry, "to-a-in-x");
}

TEST_F(PrecedenceTest, TiesKeepFileOrder) {
  // No host and no scenario: both device_id entries are clear; the first wins.
  Verdict v = JudgeAs(policy_, F("S", "device_id"));
  EXPECT_EQ(v.category, Category::kClear);
  EXPECT_EQ(v.entry, "to-a-in-x");
}

TEST_F(PrecedenceTest, WrongRecipientBeatsOmitted) {
  Verdict v = JudgeAs(policy_, F("S", "device_id", "transmit", "evil.example"));
  EXPECT_EQ(v.category, Category::kWrongRecipient);
  EXPECT_EQ(v.entry, "to-a-in-x");
}

TEST_F(PrecedenceTest, IpLiteralIsNotWrongRecipient) {
  for (const char* host : {"203.0.113.9", "203.0.113.9:443", "[2001:db8::1]:443", "2001:db8::1"}) {
    Verdict v = JudgeAs(policy_, F("S", "device_id", "transmit", host, {"x"}));
    EXPECT_EQ(v.category, Category::kClear) << host << ": " << v.explanation;
    EXPECT_THAT(v.explanation, HasSubstr("unverified")) << host;
  }
}

}  // namespace
}  // namespace idflow::policy

namespace idflow::policy {
namespace {

// SDK names match after FoldForMatch (case, full-width letters, spaces), and
// the verdict names the SDK as the declarations spell it.
TEST(SdkNameFoldingTest, JudgeResolvedMatchesFoldedNames) {
  for (const std::string name :
       {"IDM SDK", "idm sdk", "ｉｄｍ sdk", "ＩＤＭ\u3000ＳＤＫ", " IDM  SDK "}) {
    SCOPED_TRACE(name);
    Verdict v = JudgeAs(RealPolicy(),
                        F(name, "mac_address", "transmit", "idm.mi.com", {"device_discovery"}));
    EXPECT_EQ(v.category, Category::kClear) << v.explanation;
    EXPECT_EQ(v.entry, "idm-sdk");
    EXPECT_EQ(v.sdk, "IDM SDK");
    EXPECT_THAT(v.explanation, ::testing::StartsWith("IDM SDK sent mac_address"));
  }
  // App policies too.
  Verdict app = JudgeAs(RealPolicy(), F("ｍｉｊｉａ mini PROGRAM", "device_name"));
  EXPECT_EQ(app.statement, "mijia-mini-program");
  EXPECT_EQ(app.sdk, "Mijia Mini Program");
  // Folding is not fuzzy matching.
  EXPECT_EQ(JudgeAs(RealPolicy(), F("IDMSDK", "mac_address")).category, Category::kUndeclaredParty);
}

TEST(SdkNameFoldingTest, BindingsMatchStatementsSpelledDifferently) {
  // The bindings say "Lebo SDK"; statements spelling it "ｌｅｂｏ sdk" declare it.
  Policy p = RealPolicy();
  for (Statement& s : p.statements) {
    for (Entry& e : s.entries) {
      if (e.sdk == "Lebo SDK") e.sdk = "ｌｅｂｏ sdk";
    }
  }
  Flow f;
  f.call_chain = {"/opt/idflow/lib/liblebo_sdk.so"};
  f.data_type = "device_name";
  f.action = "transmit";
  f.channel = "tcp";
  f.scenarios = {"casting"};
  Verdict v = Judge(p, f);
  EXPECT_EQ(v.category, Category::kClear) << v.explanation;
  EXPECT_EQ(v.entry, "lebo-sdk");
  EXPECT_EQ(v.sdk, "ｌｅｂｏ sdk");
}

}  // namespace
}  // namespace idflow::policy

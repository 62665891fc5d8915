// The mini-program policy (seed 003): loading, and Judge on its consent keys.
#include <string>

#include "collector/policy/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/real_policy.h"
#include "tests/testing/status_matchers.h"

namespace idflow::policy {
namespace {

using ::idflow::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

// The mini program is named by no binding: judged as resolved to its SDK.
constexpr char kMiniModule[] = "/data/app/mijia/libmini.so";

Verdict JudgeAs(const std::string& sdk, const Flow& f) {
  return JudgeResolved(RealPolicy(), {Responsible::Role::kSdk, kMiniModule, sdk}, f);
}

Flow MiniProgram(std::string data, std::map<std::string, bool> consents = {},
                 std::string host = "") {
  Flow f;
  f.call_chain = {kMiniModule};
  f.data_type = std::move(data);
  f.action = "transmit";
  f.channel = "tls-openssl";
  f.dest_host = std::move(host);
  f.consents = std::move(consents);
  return f;
}

TEST(AppPolicyTest, LoadsWithSections) {
  ASSERT_THAT(RealPolicy().app_policies, SizeIs(1));
  const AppPolicy& a = RealPolicy().app_policies[0];
  EXPECT_EQ(a.id, "mijia-mini-program");
  EXPECT_EQ(a.version, "2022-06-08");
  EXPECT_EQ(a.source, "seeds/003_94552398a2ab9915.txt");
  EXPECT_THAT(a.features, SizeIs(7));
  EXPECT_THAT(a.consent_purposes, SizeIs(3));
  for (const AppFeature& f : a.features) {
    EXPECT_FALSE(f.section.empty()) << f.id;
    EXPECT_FALSE(f.collected.empty()) << f.id;
    EXPECT_FALSE(f.data_types.empty()) << f.id;
  }
  EXPECT_TRUE(a.features[4].optional);  // user feedback
  EXPECT_EQ(a.consent_purposes[0].consent, "user_experience_program");
}

struct Case {
  Flow flow;
  Category want;
  const char* entry;
  const char* explanation;
};

TEST(AppPolicyTest, JudgeUsesConsentKeys) {
  const Case cases[] = {
      {MiniProgram("page_view", {{"user_experience_program", true}}, "api.io.mi.com"),
       Category::kClear, "usage-analytics", "as declared by feature usage-analytics (section "},
      {MiniProgram("page_view", {{"user_experience_program", false}}), Category::kNoConsent,
       "usage-analytics", "while consent user_experience_program was false"},
      {MiniProgram("usage_stats"), Category::kClear, "usage-analytics", "as declared"},
      {MiniProgram("wechat_user_info", {{"wechat_user_info", false}}), Category::kNoConsent,
       "wechat-user-info", "consent wechat_user_info was false"},
      {MiniProgram("wechat_user_info", {{"wechat_user_info", true}}), Category::kClear,
       "wechat-user-info", "section 一（一）（1）; 四（一）"},
      {MiniProgram("contact_info", {{"user_feedback", false}}), Category::kNoConsent,
       "user-feedback", "consent user_feedback was false"},
      {MiniProgram("home_info"), Category::kClear, "home-management", "as declared"},
      {MiniProgram("oaid"), Category::kOmitted, "smart-device-management",
       "no feature of app policy mijia-mini-program 2022-06-08 collects it."},
      {MiniProgram("account_id", {}, "tracker.example.net"), Category::kWrongRecipient,
       "smart-device-management", "keeps it with Xiaomi Inc."},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.flow.data_type);
    Verdict v = JudgeAs("Mijia Mini Program", c.flow);
    EXPECT_EQ(CategoryName(v.category), CategoryName(c.want));
    EXPECT_EQ(v.statement, "mijia-mini-program");
    EXPECT_EQ(v.version, "2022-06-08");
    EXPECT_EQ(v.entry, c.entry);
    EXPECT_THAT(v.explanation, HasSubstr(c.explanation));
    EXPECT_EQ(v.explanation.back(), '.');
  }
}

TEST(AppPolicyTest, StatementSdksUnchangedWithoutAnApp) {
  // OneTrack is named by the statement only: the app policy does not touch it.
  Flow f = MiniProgram("oaid", {{"user_experience_program", true}, {"privacy_policy", true}},
                       "tracking.xiaomi.net");
  EXPECT_EQ(JudgeAs("OneTrack SDK", f).category, Category::kClear);
}

TEST(AppPolicyTest, LoaderRejectsUnknownConsentWithPosition) {
  const std::string onto =
      "schema: idflow.policy/v1\nkind: ontology\ndata_types:\n  - id: page_view\n"
      "entities:\n  - id: x\n    name: X\nconsents:\n  - id: ux\n";
  PolicyFiles files;
  files.ontology = {"o.yaml", onto};
  files.apps = {{"a.yaml",
                 "schema: idflow.policy/v1\nkind: app\nid: a\nversion: v1\nentity: x\n"
                 "sdks: [A]\nfeatures:\n  - id: f\n    section: s\n    data_types: [page_view]\n"
                 "    requires_consent: [nope]\n"}};
  auto p = LoadPolicyFromStrings(files);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()),
              StartsWith("a.yaml:11:24: unknown consent 'nope'"));
  files.apps[0].text =
      "schema: idflow.policy/v1\nkind: app\nid: a\nversion: v1\nentity: y\nsdks: [A]\n";
  p = LoadPolicyFromStrings(files);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), StartsWith("a.yaml:5:9: unknown entity 'y'"));
}

}  // namespace
}  // namespace idflow::policy

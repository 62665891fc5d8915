// Every verdict explanation is one well-formed English sentence: a sample flow
// for every category of IDFLOW_VERDICT_CATEGORIES (cookie categories through
// JudgeCookie), including the names that used to break sentences (a legal name
// ending in a period, an SDK without a module, a lowercase SDK name).
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "collector/policy/cookies.h"
#include "collector/policy/policy.h"
#include "common/verdict_categories.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/real_policy.h"
#include "tests/policy/sample_flows.h"

namespace idflow::policy {
namespace {

// What is wrong with `s` as one sentence, "" when nothing is.
std::string SentenceProblem(const std::string& s) {
  if (s.empty()) return "empty";
  if (!absl::ascii_isupper(static_cast<unsigned char>(s.front()))) {
    return "does not start with a capital letter";
  }
  if (s.back() != '.') return "does not end with a period";
  if (absl::StrContains(s, "..")) return "has a double period";
  if (absl::StrContains(s, "  ")) return "has a double space";
  if (absl::StrContains(s, " .") || absl::StrContains(s, " ,")) return "has a space before .,";
  if (absl::StrContains(s, "()") || absl::StrContains(s, "( ") || absl::StrContains(s, " )")) {
    return "has an empty or padded parenthesis";
  }
  for (const char* placeholder : {"an unknown module", "(module )", "(unknown)", "SDK An "}) {
    if (absl::StrContains(s, placeholder)) return std::string("has placeholder ") + placeholder;
  }
  std::string previous;
  for (absl::string_view word : absl::StrSplit(s, ' ', absl::SkipEmpty())) {
    std::string w = absl::AsciiStrToLower(word);
    if (!previous.empty() && w == previous) return "repeats the word '" + w + "'";
    previous = w;
  }
  return "";
}

TEST(SentenceProblemTest, CatchesTheKnownBadForms) {
  EXPECT_EQ(SentenceProblem("IDM SDK sent mac_address, as declared."), "");
  EXPECT_NE(SentenceProblem("mac_address passed over a unix channel."), "");
  EXPECT_NE(SentenceProblem("It keeps it with Xiaomi Inc.."), "");
  EXPECT_NE(SentenceProblem("SDK Unknown SDK (module an unknown module) is named in none."), "");
  EXPECT_NE(SentenceProblem("SDK X (module ) is named in none."), "");
  EXPECT_NE(SentenceProblem("The SDK SDK sent it."), "");
  EXPECT_NE(SentenceProblem("No period"), "");
}

struct Sample {
  std::string name;
  Category category;
  std::string explanation;
};

Verdict As(Responsible::Role role, std::string sdk, std::string module, const Flow& f) {
  Responsible r;
  r.role = role;
  r.sdk = std::move(sdk);
  r.module = std::move(module);
  return JudgeResolved(RealPolicy(), r, f);
}

std::vector<Sample> Samples() {
  using Role = Responsible::Role;
  const std::string kLib = kSampleModule;
  std::vector<Sample> out;
  auto flow = [&](std::string name, const Verdict& v) {
    out.push_back({std::move(name), v.category, v.explanation});
  };
  auto cookie = [&](std::string name, const CookieObservation& o) {
    CookieVerdict v = JudgeCookie(RealPolicy(), o);
    out.push_back({std::move(name), v.category, v.explanation});
  };
  // Statement entries.
  flow("clear", As(Role::kSdk, "IDM SDK", kLib,
                   SampleFlow("mac_address", "transmit", "idm.mi.com", {"device_discovery"})));
  flow("clear-ip", As(Role::kSdk, "Device interconnectivity services SDK", kLib,
                      SampleFlow("photo", "transmit", "10.0.0.7")));
  flow("clear-no-destination",
       As(Role::kSdk, "Yunkong SDK", kLib,
          SampleFlow("oaid", "transmit", "", {"interconnectivity_launch"})));
  flow("clear-lowercase-sdk", As(Role::kSdk, "search services", kLib,
                                 SampleFlow("search_keywords", "transmit", "search.mi.com")));
  flow("clear-folded-sdk",
       As(Role::kSdk, "ｉｄｍ sdk", kLib, SampleFlow("mac_address", "transmit", "idm.mi.com")));
  flow("vague", As(Role::kSdk, "Tianqin SDK", kLib, SampleFlow("oaid", "acquire")));
  flow("omitted", As(Role::kSdk, "Lebo SDK", kLib, SampleFlow("mac_address")));
  flow("omitted-several-entries",
       As(Role::kSdk, "Tianqin SDK", kLib, SampleFlow("search_keywords")));
  flow("omitted-empty-type", As(Role::kSdk, "Lebo SDK", kLib, SampleFlow("")));
  flow("omitted-unknown-type", As(Role::kSdk, "Lebo SDK", kLib, SampleFlow("shoe_size")));
  flow("wrong-recipient-unknown", As(Role::kSdk, "Tianqin SDK", kLib,
                                     SampleFlow("mac_address", "transmit", "tracker.example")));
  flow("wrong-recipient-other-party",
       As(Role::kSdk, "Lebo SDK", kLib, SampleFlow("device_type", "transmit", "data.mi.com")));
  flow("out-of-scenario", As(Role::kSdk, "IDM SDK", kLib,
                             SampleFlow("bluetooth_address", "acquire", "", {"casting"})));
  flow("no-consent", As(Role::kSdk, "OneTrack SDK", kLib,
                        SampleFlow("oaid", "transmit", "tracking.xiaomi.net", {},
                                   {{"user_experience_program", false}})));
  flow("method-mismatch-lowercase-sdk",
       As(Role::kSdk, "search services", kLib, SampleFlow("search_keywords", "acquire")));
  // The app policy (features instead of entries); its keeper is "Xiaomi Inc.".
  flow("app-clear", As(Role::kSdk, "Mijia Mini Program", kLib,
                       SampleFlow("device_name", "transmit", "home.mi.com")));
  flow("app-omitted", As(Role::kSdk, "Mijia Mini Program", kLib, SampleFlow("photo")));
  flow("app-wrong-recipient", As(Role::kSdk, "Mijia Mini Program", kLib,
                                 SampleFlow("device_name", "transmit", "tracker.example")));
  flow("app-no-consent",
       As(Role::kSdk, "Mijia Mini Program", kLib,
          SampleFlow("wechat_user_info", "transmit", "", {}, {{"wechat_user_info", false}})));
  flow("app-purpose-no-consent",
       As(Role::kSdk, "Mijia Mini Program", kLib,
          SampleFlow("usage_stats", "transmit", "", {}, {{"user_experience_program", false}})));
  // Nobody declares the module.
  flow("undeclared-sdk-without-module",
       As(Role::kSdk, "Unknown SDK", "", SampleFlow("mac_address")));
  flow("undeclared-sdk", As(Role::kSdk, "Mystery SDK", kLib, SampleFlow("mac_address")));
  flow("undeclared-sdk-no-sdk-word", As(Role::kSdk, "libmystery", kLib, SampleFlow("oaid")));
  flow("undeclared-unbound", As(Role::kUnbound, "", kLib, SampleFlow("mac_address")));
  flow("undeclared-first-party", As(Role::kFirstParty, "", kLib, SampleFlow("mac_address")));
  flow("local-acquisition-unbound",
       As(Role::kUnbound, "", "/usr/bin/cat", SampleFlow("mac_address", "acquire")));
  flow("local-acquisition-first-party",
       As(Role::kFirstParty, "", kLib, SampleFlow("mac_address", "acquire")));
  {
    Flow f = SampleFlow("mac_address");
    f.call_chain.clear();
    flow("unattributable", As(Role::kNone, "", "", f));
    f.exe.clear();
    flow("unattributable-no-exe", As(Role::kNone, "", "", f));
  }
  {
    Flow f = SampleFlow("mac_address");
    f.channel = "unix";
    f.peer_exe = f.exe;
    flow("same-app-ipc", As(Role::kUnbound, "", kLib, f));
    f.data_type.clear();
    flow("same-app-ipc-unnamed", As(Role::kUnbound, "", kLib, f));
  }
  // Cookies.
  cookie("cookie-clear", SetCookie("account.xiaomi.com", "passToken", 0));
  cookie("undeclared-cookie", SetCookie("account.xiaomi.com", "tracker_id", 0));
  cookie("lifetime-exceeded", SetCookie("account.xiaomi.com", "tick", 2 * 3600));
  cookie("third-party-cookie-only-first-party",
         SetCookie("account.xiaomi.com", "_ga", 86400, ".xiaomi.com"));
  cookie("third-party-cookie-row", SetCookie("c.mi.com", "mstz", 0, "mi.com"));
  cookie("no-cookie-policy", SetCookie("www.example.com", "sid", 0));
  {
    CookieObservation sent = SetCookie("account.xiaomi.com", "passToken", -1);
    sent.direction = CookieDirection::kSentByClient;
    cookie("cookie-sent", sent);
  }
  return out;
}

TEST(ExplanationTest, EveryCategoryHasASample) {
  std::set<Category> seen;
  for (const Sample& s : Samples()) seen.insert(s.category);
#define IDFLOW_EXPECT_SAMPLE_(e, name, finding, meaning) \
  EXPECT_TRUE(seen.count(Category::e)) << "no sample flow for " << name;
  IDFLOW_VERDICT_CATEGORIES(IDFLOW_EXPECT_SAMPLE_)
#undef IDFLOW_EXPECT_SAMPLE_
}

TEST(ExplanationTest, EveryExplanationIsOneWellFormedSentence) {
  for (const Sample& s : Samples()) {
    EXPECT_EQ(SentenceProblem(s.explanation), "")
        << s.name << " (" << CategoryName(s.category) << "): " << s.explanation;
  }
}

// The cases that used to read badly, pinned word for word.
TEST(ExplanationTest, KnownBadCasesReadWell) {
  std::map<std::string, std::string> by_name;
  for (const Sample& s : Samples()) by_name[s.name] = s.explanation;
  EXPECT_THAT(by_name["app-wrong-recipient"], ::testing::EndsWith("keeps it with Xiaomi Inc."));
  EXPECT_THAT(by_name["undeclared-sdk-without-module"],
              ::testing::StartsWith("Unknown SDK is named in none of "));
  EXPECT_THAT(by_name["undeclared-sdk-no-sdk-word"],
              ::testing::StartsWith("SDK libmystery (module /opt/demo/lib/libsdk.so) is named"));
  EXPECT_THAT(by_name["method-mismatch-lowercase-sdk"],
              ::testing::StartsWith("The search services read search_keywords on the device"));
  EXPECT_THAT(by_name["same-app-ipc"],
              ::testing::StartsWith("The mac_address passed over a unix channel"));
  EXPECT_THAT(by_name["same-app-ipc-unnamed"], ::testing::StartsWith("An unnamed data item"));
  EXPECT_THAT(by_name["clear-folded-sdk"], ::testing::StartsWith("IDM SDK sent mac_address"));
  EXPECT_THAT(by_name["unattributable-no-exe"], ::testing::HasSubstr("the process is unknown"));
}

}  // namespace
}  // namespace idflow::policy

// `idflowctl policy explain` as a subprocess.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/ctl_runner.h"

namespace idflow::tools {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

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

TEST(PolicyExplainTest, UnknownIdsAreErrorsListingTheKnownOnes) {
  const std::vector<std::string> base = {"policy", "explain", "--policies", kPolicies};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return Ctl(args);
  };
  Result r = run({"--sdk", "IDM SDK", "--data", "mac_address", "--scenario", "device_discovry"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, AllOf(HasSubstr("unknown --scenario 'device_discovry' (known scenarios are "),
                           HasSubstr("device_discovery"), HasSubstr("casting")));
  r = run({"--sdk", "OneTrack SDK", "--data", "oaid", "--consent", "ux_program=false"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("unknown --consent 'ux_program' (known consent keys are "),
                           HasSubstr("user_experience_program"), HasSubstr("privacy_policy")));
  r = run({"--sdk", "Lebo SDK", "--data", "shoe_size"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("unknown --data 'shoe_size' (known data types are "),
                           HasSubstr("mac_address"), HasSubstr("oaid")));
  r = run({"--sdk", "Mystery SDK", "--data", "oaid"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("unknown --sdk 'Mystery SDK' (known SDKs are "),
                           HasSubstr("IDM SDK"), HasSubstr("Lebo SDK"),
                           HasSubstr("Mijia Mini Program"), HasSubstr("search services")));
  // JSON errors are one object per line.
  r = run({"--sdk", "Lebo SDK", "--data", "shoe_size", "--format", "json"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_THAT(r.err, StartsWith("{\"severity\":\"error\""));
  // Known ones still answer, and --module needs no --sdk check.
  EXPECT_EQ(run({"--module", "/opt/idflow/lib/libmystery_sdk.so", "--data", "oaid"}).exit, 0);
}

TEST(PolicyExplainTest, SdkNamesMatchWhateverTheCaseAndWidth) {
  for (const std::string name :
       {"IDM SDK", "idm sdk", "ｉｄｍ sdk", "ＩＤＭ\u3000ＳＤＫ", "  Idm   Sdk "}) {
    SCOPED_TRACE(name);
    Result r = Ctl({"policy", "explain", "--policies", kPolicies, "--sdk", name, "--data",
                    "mac_address", "--host", "idm.mi.com", "--scenario", "device_discovery"});
    EXPECT_EQ(r.exit, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("verdict:     clear\n"));
    // Named as the statement spells it.
    EXPECT_THAT(r.out, HasSubstr("responsible: IDM SDK, module (none)\n"));
    EXPECT_THAT(r.out, HasSubstr("explanation: IDM SDK sent mac_address to idm.mi.com"));
  }
}

}  // namespace
}  // namespace idflow::tools

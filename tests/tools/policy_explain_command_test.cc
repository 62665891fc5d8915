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

}  // namespace
}  // namespace idflow::tools

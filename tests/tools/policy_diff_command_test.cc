// `idflowctl policy diff` as a subprocess.
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

}  // namespace
}  // namespace idflow::tools

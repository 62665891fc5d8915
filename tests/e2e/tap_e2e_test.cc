// Each tap hook catching its case, end to end through agent and collector.
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace idflow::e2e {
namespace {

TEST(TapEndToEnd, HarnessBinariesExist) {
  std::string out, err;
  EXPECT_EQ(RunToEnd({BinDir() + "/idflowctl", "help"}, &out, &err), 0) << err;
}

}  // namespace
}  // namespace idflow::e2e

// The checked-in policies/ directory, loaded once per test binary.
#ifndef IDFLOW_TESTS_POLICY_REAL_POLICY_H_
#define IDFLOW_TESTS_POLICY_REAL_POLICY_H_

#include <string>

#include "collector/policy/policy.h"
#include "gtest/gtest.h"

namespace idflow::policy {

// A load error fails the calling test and yields an empty policy.
inline const Policy& RealPolicy() {
  static const Policy* p = [] {
    auto loaded = LoadPolicyDir(std::string(IDFLOW_SOURCE_DIR) + "/policies");
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return new Policy(loaded.ok() ? *std::move(loaded) : Policy{});
  }();
  return *p;
}

}  // namespace idflow::policy

#endif  // IDFLOW_TESTS_POLICY_REAL_POLICY_H_

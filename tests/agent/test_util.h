// Helpers shared by the agent's tests.
#ifndef IDFLOW_TESTS_AGENT_TEST_UTIL_H_
#define IDFLOW_TESTS_AGENT_TEST_UTIL_H_

#include <stdlib.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace idflow::agent {

// A fresh directory under the test temp dir, named PREFIX-XXXXXX.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = ::testing::TempDir() + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
}

}  // namespace idflow::agent

#endif  // IDFLOW_TESTS_AGENT_TEST_UTIL_H_

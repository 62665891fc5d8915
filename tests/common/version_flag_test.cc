// Every installed binary answers --version with one line and exit 0.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "common/version.h"
#include "gtest/gtest.h"

namespace idflow {
namespace {

// Runs `program --version`; returns its stdout, and its exit code in *code.
std::string RunVersion(const std::string& program, int* code) {
  const std::string cmd = std::string(IDFLOW_BIN_DIR) + "/" + program + " --version";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  std::array<char, 256> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(VersionFlagTest, EveryBinaryPrintsItsVersionLine) {
  for (const char* program : {"idflow-agent", "idflow-collector", "idflowctl"}) {
    int code = -1;
    EXPECT_EQ(RunVersion(program, &code), VersionLine(program) + "\n") << program;
    EXPECT_EQ(code, 0) << program;
  }
}

}  // namespace
}  // namespace idflow

// Runs idflowctl as a subprocess for the tools tests: exit code, stdout,
// stderr, scratch paths.
#ifndef IDFLOW_TESTS_TOOLS_CTL_RUNNER_H_
#define IDFLOW_TESTS_TOOLS_CTL_RUNNER_H_

#include <unistd.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow::tools {

namespace fs = std::filesystem;

inline const std::string kSource = IDFLOW_SOURCE_DIR;
// Seed 002 as checked in with the fuzz corpus (same bytes as ../shared/seeds).
inline const std::string kSeed002 =
    kSource + "/tests/fuzz/corpus/fuzz_statement_importer/seed002.txt";
inline const std::string kPolicies = kSource + "/policies";

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void Spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string Quote(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

struct Result {
  int exit = -1;
  std::string out;
  std::string err;
};

// Runs idflowctl with `args` from `cwd`, capturing stdout and stderr in files.
inline Result Ctl(const std::vector<std::string>& args, const std::string& cwd = kSource) {
  // Per process: ctest runs the tests of this binary in parallel processes.
  const std::string dir = absl::StrCat(::testing::TempDir(), "/policy_command_test-", ::getpid());
  fs::create_directories(dir);
  const std::string out = dir + "/idflowctl.out";
  const std::string err = dir + "/idflowctl.err";
  std::string cmd = absl::StrCat("cd ", Quote(cwd), " && ", Quote(IDFLOWCTL_PATH));
  for (const std::string& a : args) absl::StrAppend(&cmd, " ", Quote(a));
  absl::StrAppend(&cmd, " >", Quote(out), " 2>", Quote(err));
  const int status = std::system(cmd.c_str());
  Result r;
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

inline std::string TempPath(const std::string& name) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/policy_command_test-", ::getpid());
  fs::create_directories(dir);
  return dir + "/" + name;
}

// A scratch dir holding seeds/002_46d1b234ed020678.txt, so that the import
// cites it as seeds/<name> like the checked-in statement does.
inline std::string SeedDir() {
  const std::string dir = TempPath("seedroot");
  fs::create_directories(dir + "/seeds");
  const std::string seed = Slurp(kSeed002);
  EXPECT_FALSE(seed.empty()) << "missing test data " << kSeed002;
  Spit(dir + "/seeds/002_46d1b234ed020678.txt", seed);
  return dir;
}

}  // namespace idflow::tools

#endif  // IDFLOW_TESTS_TOOLS_CTL_RUNNER_H_

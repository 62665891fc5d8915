// Report validators for tests: JUnit with `xmllint --schema` against
// tests/report/junit.xsd (Debian's libxml2-utils), SARIF with ajv against the
// official SARIF 2.1.0 schema (tests/report/validator/, installed with
// `npm ci` from its lock file into the build directory, once per build).
//
// scripts/install-deps.sh installs xmllint, node and npm: a missing tool
// fails a test. Only outside CI (no CI variable) may a test skip, loudly,
// when npm cannot install the validator (e.g. no network).
//
// Needs IDFLOW_SOURCE_DIR and IDFLOW_BINARY_DIR defined.
#ifndef IDFLOW_TESTS_REPORT_VALIDATORS_H_
#define IDFLOW_TESTS_REPORT_VALIDATORS_H_

#include <unistd.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace idflow::testing {

inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0';
}

// Runs `cmd` with /bin/sh; the exit code (-1 if it did not exit) and what it
// printed on stdout and stderr.
inline int Shell(const std::string& cmd, std::string* output) {
  const std::string log = absl::StrCat(::testing::TempDir(), "/validator-", ::getpid(), ".log");
  const int status = std::system(absl::StrCat("(", cmd, ") >'", log, "' 2>&1").c_str());
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  *output = ss.str();
  ::unlink(log.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline bool HaveTool(const std::string& tool) {
  std::string ignored;
  return Shell(absl::StrCat("command -v ", tool), &ignored) == 0;
}

inline std::string SarifValidatorDir() {
  return std::string(IDFLOW_BINARY_DIR) + "/report-validator";
}

// Installs the SARIF validator into the build directory unless its lock
// file is already installed there (under a file lock: ctest runs tests in
// parallel). "" when ready, else why not, naming the missing tool.
inline std::string PrepareSarifValidator() {
  if (!HaveTool("node") || !HaveTool("npm")) {
    return "node and npm are not installed (scripts/install-deps.sh installs them)";
  }
  const std::string src = std::string(IDFLOW_SOURCE_DIR) + "/tests/report/validator";
  const std::string dir = SarifValidatorDir();
  // .installed-lock.json marks a finished `npm ci` of that very lock file.
  const std::string install =
      absl::StrCat("set -e; d='", dir, "'; s='", src,
                   "'; mkdir -p \"$d\"; exec 9>\"$d/.lock\"; flock 9; "
                   "if ! cmp -s \"$s/package-lock.json\" \"$d/.installed-lock.json\"; then "
                   "rm -rf \"$d/node_modules\" \"$d/.installed-lock.json\"; "
                   "cp \"$s/package.json\" \"$s/package-lock.json\" \"$d/\"; cd \"$d\"; "
                   "npm ci --no-audit --no-fund --prefer-offline; "
                   "cp package-lock.json .installed-lock.json; fi; "
                   "cp \"$s/validate-sarif.js\" \"$d/validate-sarif.js\"");
  std::string output;
  if (Shell(install, &output) != 0) {
    return absl::StrCat(
        "npm could not install the SARIF validator (ajv and the SARIF 2.1.0 "
        "schema) into ",
        dir, ":\n", output);
  }
  return "";
}

// Validates a JUnit XML file with xmllint against tests/report/junit.xsd.
inline ::testing::AssertionResult ValidJUnit(const std::string& path) {
  if (!HaveTool("xmllint")) {
    return ::testing::AssertionFailure()
           << "xmllint is not installed (Debian libxml2-utils; scripts/install-deps.sh)";
  }
  std::string output;
  const int rc = Shell(absl::StrCat("xmllint --noout --schema '", IDFLOW_SOURCE_DIR,
                                    "/tests/report/junit.xsd' '", path, "'"),
                       &output);
  if (rc != 0) return ::testing::AssertionFailure() << "xmllint: " << output;
  return ::testing::AssertionSuccess();
}

// Validates a SARIF file against the SARIF 2.1.0 schema (after
// PrepareSarifValidator() returned "").
inline ::testing::AssertionResult ValidSarif(const std::string& path) {
  std::string output;
  const int rc = Shell(
      absl::StrCat("node '", SarifValidatorDir(), "/validate-sarif.js' '", path, "'"), &output);
  if (rc != 0) return ::testing::AssertionFailure() << output;
  return ::testing::AssertionSuccess();
}

}  // namespace idflow::testing

// Fails (in CI) or skips loudly (elsewhere) when the SARIF validator cannot
// be installed. Use at the top of a test body.
#define IDFLOW_REQUIRE_SARIF_VALIDATOR()                                                   \
  do {                                                                                     \
    const std::string why_ = ::idflow::testing::PrepareSarifValidator();                   \
    if (!why_.empty()) {                                                                   \
      if (::idflow::testing::InCi()) FAIL() << why_;                                       \
      GTEST_SKIP() << "\n!!!!!!!! SARIF NOT VALIDATED: " << why_                           \
                   << "\n!!!!!!!! (this skip is allowed outside CI only; in CI it fails)"; \
    }                                                                                      \
  } while (0)

#endif  // IDFLOW_TESTS_REPORT_VALIDATORS_H_

#include "common/version.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow {
namespace {

using ::testing::MatchesRegex;

TEST(VersionTest, ComesFromTheProjectAndTheBuild) {
  EXPECT_STREQ(Version(), IDFLOW_EXPECTED_VERSION);
  EXPECT_STREQ(BuildType(), IDFLOW_EXPECTED_BUILD_TYPE);
  // A short hash in a git checkout, "unknown" in a source tarball.
  EXPECT_THAT(std::string(GitCommit()), MatchesRegex("[0-9a-f]{7,40}|unknown"));
}

TEST(VersionTest, LineNamesTheProgramVersionCommitAndBuildType) {
  EXPECT_EQ(VersionString(), std::string(Version()) + " (commit " + std::string(GitCommit()) +
                                 ", " + std::string(BuildType()) + ")");
  EXPECT_EQ(VersionLine("idflow-agent"), "idflow-agent " + VersionString());
  EXPECT_THAT(VersionLine("idflowctl"),
              MatchesRegex("idflowctl [0-9]+\\.[0-9]+\\.[0-9]+ \\(commit [0-9a-z]+, [A-Za-z]+\\)"));
}

}  // namespace
}  // namespace idflow

// The build's identity: project version (CMake's project(VERSION)), git
// commit and build type, from one generated source (cmake/IdflowVersion.cmake)
// so that a new commit recompiles only that file.
#ifndef IDFLOW_COMMON_VERSION_H_
#define IDFLOW_COMMON_VERSION_H_

#include <string>
#include <string_view>

namespace idflow {

// C strings: they fit absl::StrCat and streams alike.
const char* Version();    // "0.1.0"
const char* GitCommit();  // short hash, or "unknown" outside a git checkout
const char* BuildType();  // CMAKE_BUILD_TYPE, e.g. "Release"

// "0.1.0 (commit 1a2b3c4, Release)": what an agent reports in its hello.
std::string VersionString();
// "PROGRAM 0.1.0 (commit 1a2b3c4, Release)": what --version prints.
std::string VersionLine(std::string_view program);

}  // namespace idflow

#endif  // IDFLOW_COMMON_VERSION_H_

#ifndef IDFLOW_COMMON_FILE_UTIL_H_
#define IDFLOW_COMMON_FILE_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace idflow {

absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes to PATH.tmp, fsyncs, renames over PATH and fsyncs the directory, so a
// reader sees either the old or the new content, never a torn file.
absl::Status WriteFileAtomic(const std::string& path, const std::string& content);

}  // namespace idflow

#endif  // IDFLOW_COMMON_FILE_UTIL_H_

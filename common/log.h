// Minimal leveled logging to stderr (abseil 20220623 has no absl/log).
#ifndef IDFLOW_COMMON_LOG_H_
#define IDFLOW_COMMON_LOG_H_

#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"

namespace idflow {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
void SetLogPrefix(absl::string_view prefix);  // e.g. "idflow-agent"
void LogLine(LogLevel level, absl::string_view message);

template <typename... Args>
void LogInfo(const Args&... args) {
  LogLine(LogLevel::kInfo, absl::StrCat(args...));
}
template <typename... Args>
void LogWarning(const Args&... args) {
  LogLine(LogLevel::kWarning, absl::StrCat(args...));
}
template <typename... Args>
void LogError(const Args&... args) {
  LogLine(LogLevel::kError, absl::StrCat(args...));
}
template <typename... Args>
void LogDebug(const Args&... args) {
  LogLine(LogLevel::kDebug, absl::StrCat(args...));
}

}  // namespace idflow

#endif  // IDFLOW_COMMON_LOG_H_

#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <ctime>
#include <string>

namespace idflow {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::string* g_prefix = new std::string("idflow");
}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
void SetLogPrefix(absl::string_view prefix) { *g_prefix = std::string(prefix); }

void LogLine(LogLevel level, absl::string_view message) {
  if (static_cast<int>(level) < g_level.load()) return;
  static constexpr const char* kNames[] = {"debug", "info", "warning", "error"};
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char when[32];
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &t);
  // One write per line so concurrent lines do not interleave.
  std::string line = absl::StrCat(when, "Z ", *g_prefix, " ", kNames[static_cast<int>(level)], ": ",
                                  message, "\n");
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace idflow

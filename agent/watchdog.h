// The agent's self-limits, in the spirit of osquery's watchdog: the agent
// checks its own RSS and CPU every `interval` and, over a limit, degrades one
// counted, logged step per check instead of growing without bound; under
// the limit by the hysteresis margin it recovers one step per check.
//
// Memory (RSS over max_rss_bytes):
//   1 kTrim    release freed heap to the kernel (malloc_trim)
//   2 kShrink  spool what waits in memory at once, hold far fewer events
//   3 kShed    refuse new tap events (counted ingress drops: the collector
//              sees them as declared losses)
// CPU (average over cpu_window above max_cpu_percent of one core):
//   1 kSlow    coalesce more: longer ring wake-up and flush intervals
//   2 kShed    refuse new tap events, as above
//
// The Watchdog decides; the agent acts (Actions) on its io thread. Usage and
// clock are injectable so tests drive it without a process to measure.
#ifndef IDFLOW_AGENT_WATCHDOG_H_
#define IDFLOW_AGENT_WATCHDOG_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>

#include "absl/status/statusor.h"
#include "agent/proc_usage.h"

namespace idflow::agent {

enum class MemoryLevel : uint32_t { kOk = 0, kTrim = 1, kShrink = 2, kShed = 3 };
enum class CpuLevel : uint32_t { kOk = 0, kSlow = 1, kShed = 2 };

const char* MemoryLevelName(MemoryLevel level);
const char* CpuLevelName(CpuLevel level);

struct WatchdogOptions {
  uint64_t max_rss_bytes = 0;  // 0: no memory limit
  double max_cpu_percent = 0;  // of one core; 0: no CPU limit
  std::chrono::milliseconds interval{1000};
  // CPU is averaged over this; a CPU step waits a whole window for the last
  // one to show before the next.
  std::chrono::milliseconds cpu_window{5000};
  // Recovery below this share of a limit (hysteresis: no flapping at it).
  double recover_ratio = 0.8;
};

struct WatchdogStats {
  uint64_t checks = 0;
  uint64_t read_errors = 0;
  uint64_t memory_steps = 0;  // degradations, each counted once
  uint64_t cpu_steps = 0;
  uint64_t recoveries = 0;  // steps back, memory and CPU
};

class Watchdog {
 public:
  using UsageSource = std::function<absl::StatusOr<ProcUsage>()>;
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  struct Actions {
    // Called on every level change, down as well as up, with the new level.
    std::function<void(MemoryLevel)> memory;
    std::function<void(CpuLevel)> cpu;
  };

  Watchdog(WatchdogOptions options, Actions actions, UsageSource usage = DefaultUsage,
           Clock clock = std::chrono::steady_clock::now);

  // One check: reads the usage, steps at most one level per resource.
  void Check();

  MemoryLevel memory_level() const { return memory_; }
  CpuLevel cpu_level() const { return cpu_; }
  // Refuse new tap events (memory or CPU at their last step).
  bool shedding() const { return memory_ == MemoryLevel::kShed || cpu_ == CpuLevel::kShed; }
  uint64_t rss_bytes() const { return rss_; }
  // Share of one core over the window (0 until two samples exist).
  double cpu_percent() const { return cpu_percent_; }
  const WatchdogStats& stats() const { return stats_; }
  const WatchdogOptions& options() const { return options_; }

  static absl::StatusOr<ProcUsage> DefaultUsage() { return ReadProcUsage("/proc/self"); }

 private:
  void StepMemory();
  void StepCpu(std::chrono::steady_clock::time_point now);

  const WatchdogOptions options_;
  const Actions actions_;
  const UsageSource usage_;
  const Clock clock_;
  MemoryLevel memory_ = MemoryLevel::kOk;
  CpuLevel cpu_ = CpuLevel::kOk;
  uint64_t rss_ = 0;
  double cpu_percent_ = 0;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::chrono::nanoseconds>> samples_;
  std::chrono::steady_clock::time_point last_cpu_step_{};
  bool read_failing_ = false;
  WatchdogStats stats_;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_WATCHDOG_H_

#include "agent/watchdog.h"

#include "common/log.h"

namespace idflow::agent {

const char* MemoryLevelName(MemoryLevel level) {
  switch (level) {
    case MemoryLevel::kOk:
      return "ok";
    case MemoryLevel::kTrim:
      return "trim";
    case MemoryLevel::kShrink:
      return "shrink";
    case MemoryLevel::kShed:
      return "shed";
  }
  return "?";
}

const char* CpuLevelName(CpuLevel level) {
  switch (level) {
    case CpuLevel::kOk:
      return "ok";
    case CpuLevel::kSlow:
      return "slow";
    case CpuLevel::kShed:
      return "shed";
  }
  return "?";
}

Watchdog::Watchdog(WatchdogOptions options, Actions actions, UsageSource usage, Clock clock)
    : options_(options),
      actions_(std::move(actions)),
      usage_(std::move(usage)),
      clock_(std::move(clock)) {}

void Watchdog::Check() {
  ++stats_.checks;
  absl::StatusOr<ProcUsage> u = usage_();
  if (!u.ok()) {
    // Without a reading the levels stay as they are (no blind recovery).
    ++stats_.read_errors;
    if (!read_failing_) LogWarning("watchdog: cannot read own usage: ", u.status().ToString());
    read_failing_ = true;
    return;
  }
  read_failing_ = false;
  const auto now = clock_();
  rss_ = u->rss_bytes;
  samples_.emplace_back(now, u->cpu);
  while (samples_.size() > 2 && now - samples_[1].first >= options_.cpu_window) {
    samples_.pop_front();
  }
  if (samples_.size() >= 2) {
    const auto wall = samples_.back().first - samples_.front().first;
    const auto cpu = samples_.back().second - samples_.front().second;
    cpu_percent_ = wall.count() > 0
                       ? 100.0 * static_cast<double>(cpu.count()) /
                             static_cast<double>(std::chrono::nanoseconds(wall).count())
                       : 0;
  }
  StepMemory();
  StepCpu(now);
}

void Watchdog::StepMemory() {
  if (options_.max_rss_bytes == 0) return;
  const auto limit = static_cast<double>(options_.max_rss_bytes);
  const auto rss = static_cast<double>(rss_);
  MemoryLevel next = memory_;
  if (rss > limit && memory_ != MemoryLevel::kShed) {
    next = static_cast<MemoryLevel>(static_cast<uint32_t>(memory_) + 1);
    ++stats_.memory_steps;
    LogWarning("watchdog: RSS ", rss_ >> 20, " MiB over the limit of ",
               options_.max_rss_bytes >> 20, " MiB: memory step '", MemoryLevelName(next), "'");
  } else if (rss < limit * options_.recover_ratio && memory_ != MemoryLevel::kOk) {
    next = static_cast<MemoryLevel>(static_cast<uint32_t>(memory_) - 1);
    ++stats_.recoveries;
    LogInfo("watchdog: RSS ", rss_ >> 20, " MiB, back under the limit: memory step '",
            MemoryLevelName(next), "'");
  }
  if (next == memory_) return;
  memory_ = next;
  if (actions_.memory) actions_.memory(next);
}

void Watchdog::StepCpu(std::chrono::steady_clock::time_point now) {
  if (options_.max_cpu_percent <= 0 || samples_.size() < 2) return;
  // The average must cover a whole window, and the last step must have had
  // a window to show, before the next step either way.
  if (samples_.back().first - samples_.front().first < options_.cpu_window) return;
  if (last_cpu_step_ != std::chrono::steady_clock::time_point{} &&
      now - last_cpu_step_ < options_.cpu_window) {
    return;
  }
  CpuLevel next = cpu_;
  if (cpu_percent_ > options_.max_cpu_percent && cpu_ != CpuLevel::kShed) {
    next = static_cast<CpuLevel>(static_cast<uint32_t>(cpu_) + 1);
    ++stats_.cpu_steps;
    LogWarning("watchdog: CPU ", cpu_percent_, " % of a core over the limit of ",
               options_.max_cpu_percent, " %: CPU step '", CpuLevelName(next), "'");
  } else if (cpu_percent_ < options_.max_cpu_percent * options_.recover_ratio &&
             cpu_ != CpuLevel::kOk) {
    next = static_cast<CpuLevel>(static_cast<uint32_t>(cpu_) - 1);
    ++stats_.recoveries;
    LogInfo("watchdog: CPU ", cpu_percent_, " % of a core, back under the limit: CPU step '",
            CpuLevelName(next), "'");
  }
  if (next == cpu_) return;
  cpu_ = next;
  last_cpu_step_ = now;
  if (actions_.cpu) actions_.cpu(next);
}

}  // namespace idflow::agent

// The agent's watchdog with a fake usage source and clock: a breach takes one
// counted step per check, recovery needs the hysteresis margin, CPU is
// averaged over its window.
#include "agent/watchdog.h"

#include <string>
#include <vector>

#include "agent/proc_usage.h"
#include "gtest/gtest.h"

namespace idflow::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// What the fake process reports: RSS as set, CPU advanced by hand.
struct FakeProcess {
  uint64_t rss = 10 << 20;
  std::chrono::nanoseconds cpu{0};
  Clock::time_point now = Clock::time_point() + seconds(1000);
  bool fail = false;
  // Advances wall time by `wall` with `percent` of one core used meanwhile.
  void Run(milliseconds wall, double percent) {
    now += wall;
    cpu += std::chrono::nanoseconds(
        static_cast<int64_t>(std::chrono::nanoseconds(wall).count() * percent / 100.0));
  }
};

struct Recorder {
  std::vector<MemoryLevel> memory;
  std::vector<CpuLevel> cpu;
};

Watchdog MakeWatchdog(FakeProcess* p, Recorder* r, uint64_t max_rss, double max_cpu) {
  WatchdogOptions o;
  o.max_rss_bytes = max_rss;
  o.max_cpu_percent = max_cpu;
  o.cpu_window = seconds(5);
  return Watchdog(
      o,
      Watchdog::Actions{[r](MemoryLevel l) { r->memory.push_back(l); },
                        [r](CpuLevel l) { r->cpu.push_back(l); }},
      [p]() -> absl::StatusOr<ProcUsage> {
        if (p->fail) return absl::UnavailableError("no /proc");
        return ProcUsage{p->rss, p->cpu};
      },
      [p] { return p->now; });
}

TEST(WatchdogTest, MemoryBreachStepsOncePerCheckUpToShedding) {
  FakeProcess p;
  Recorder r;
  Watchdog w = MakeWatchdog(&p, &r, 48 << 20, 0);
  w.Check();
  EXPECT_EQ(w.memory_level(), MemoryLevel::kOk);
  p.rss = 60 << 20;
  for (MemoryLevel want : {MemoryLevel::kTrim, MemoryLevel::kShrink, MemoryLevel::kShed}) {
    p.Run(seconds(1), 1);
    w.Check();
    EXPECT_EQ(w.memory_level(), want);
  }
  EXPECT_TRUE(w.shedding());
  p.Run(seconds(1), 1);
  w.Check();  // at the last step: nothing further, nothing counted
  EXPECT_EQ(w.stats().memory_steps, 3u);
  EXPECT_EQ(r.memory, (std::vector<MemoryLevel>{MemoryLevel::kTrim, MemoryLevel::kShrink,
                                                MemoryLevel::kShed}));
  EXPECT_EQ(w.rss_bytes(), 60u << 20);
}

TEST(WatchdogTest, MemoryRecoversOnlyBelowTheHysteresisMargin) {
  FakeProcess p;
  Recorder r;
  Watchdog w = MakeWatchdog(&p, &r, 48 << 20, 0);
  p.rss = 60 << 20;
  w.Check();
  w.Check();
  ASSERT_EQ(w.memory_level(), MemoryLevel::kShrink);
  p.rss = 45 << 20;  // under the limit, above 80 % of it: hold
  w.Check();
  EXPECT_EQ(w.memory_level(), MemoryLevel::kShrink);
  EXPECT_EQ(w.stats().recoveries, 0u);
  p.rss = 30 << 20;
  w.Check();
  EXPECT_EQ(w.memory_level(), MemoryLevel::kTrim);
  w.Check();
  EXPECT_EQ(w.memory_level(), MemoryLevel::kOk);
  w.Check();
  EXPECT_EQ(w.stats().recoveries, 2u);
  EXPECT_EQ(w.stats().memory_steps, 2u);
  EXPECT_EQ(r.memory.back(), MemoryLevel::kOk);
  EXPECT_FALSE(w.shedding());
}

TEST(WatchdogTest, CpuIsAveragedOverTheWindowBeforeAStep) {
  FakeProcess p;
  Recorder r;
  Watchdog w = MakeWatchdog(&p, &r, 0, 25);
  w.Check();
  // A one-second spike inside an otherwise quiet window is no breach.
  p.Run(seconds(1), 90);
  w.Check();
  for (int i = 0; i < 4; ++i) {
    p.Run(seconds(1), 5);
    w.Check();
  }
  EXPECT_NEAR(w.cpu_percent(), 22, 0.5);  // (90 + 4 * 5) / 5
  EXPECT_EQ(w.cpu_level(), CpuLevel::kOk);
  // Sustained: one step per window, slow first, then shedding.
  int checks = 0;
  while (w.cpu_level() == CpuLevel::kOk && ++checks < 20) {
    p.Run(seconds(1), 40);
    w.Check();
  }
  ASSERT_EQ(w.cpu_level(), CpuLevel::kSlow);
  EXPECT_GT(w.cpu_percent(), 25);
  for (int i = 0; i < 4; ++i) {
    p.Run(seconds(1), 40);
    w.Check();
    EXPECT_EQ(w.cpu_level(), CpuLevel::kSlow) << "a step waits a whole window";
  }
  p.Run(seconds(1), 40);
  w.Check();
  EXPECT_EQ(w.cpu_level(), CpuLevel::kShed);
  EXPECT_TRUE(w.shedding());
  EXPECT_EQ(w.stats().cpu_steps, 2u);
  // Back under 80 % of the limit: one step back per window.
  for (int i = 0; i < 5; ++i) {
    p.Run(seconds(1), 2);
    w.Check();
  }
  EXPECT_EQ(w.cpu_level(), CpuLevel::kSlow);
  for (int i = 0; i < 5; ++i) {
    p.Run(seconds(1), 2);
    w.Check();
  }
  EXPECT_EQ(w.cpu_level(), CpuLevel::kOk);
  EXPECT_EQ(w.stats().recoveries, 2u);
  EXPECT_EQ(r.cpu, (std::vector<CpuLevel>{CpuLevel::kSlow, CpuLevel::kShed, CpuLevel::kSlow,
                                          CpuLevel::kOk}));
}

TEST(WatchdogTest, LimitsOffNeverStepButStillMeasure) {
  FakeProcess p;
  Recorder r;
  Watchdog w = MakeWatchdog(&p, &r, 0, 0);
  p.rss = 1ull << 40;
  for (int i = 0; i < 10; ++i) {
    p.Run(seconds(1), 100);
    w.Check();
  }
  EXPECT_EQ(w.memory_level(), MemoryLevel::kOk);
  EXPECT_EQ(w.cpu_level(), CpuLevel::kOk);
  EXPECT_NEAR(w.cpu_percent(), 100, 0.5);
  EXPECT_EQ(w.rss_bytes(), 1ull << 40);
  EXPECT_TRUE(r.memory.empty() && r.cpu.empty());
}

TEST(WatchdogTest, AnUnreadableUsageKeepsTheLevels) {
  FakeProcess p;
  Recorder r;
  Watchdog w = MakeWatchdog(&p, &r, 48 << 20, 0);
  p.rss = 60 << 20;
  w.Check();
  ASSERT_EQ(w.memory_level(), MemoryLevel::kTrim);
  p.fail = true;
  w.Check();
  w.Check();
  EXPECT_EQ(w.memory_level(), MemoryLevel::kTrim);
  EXPECT_EQ(w.stats().read_errors, 2u);
}

TEST(ProcUsageTest, ParsesStatmStatAndStatus) {
  EXPECT_EQ(*ParseStatmRss("12345 678 90 1 0 2 0\n", 4096), 678u * 4096);
  EXPECT_FALSE(ParseStatmRss("12345", 4096).ok());
  // A command name with spaces and a ')' inside: fields count from the last ')'.
  const char* stat =
      "4242 (idflow (a) b) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 5 0 100 "
      "1000000 900 18446744073709551615\n";
  EXPECT_EQ(*ParseStatCpu(stat, 100), std::chrono::seconds(2));
  EXPECT_FALSE(ParseStatCpu("4242 (x) S 1", 100).ok());
  const char* status = "Name:\tidflow-agent\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
  EXPECT_EQ(*ParseStatusKb(status, "VmRSS"), 10240u * 1024);
  EXPECT_EQ(*ParseStatusKb(status, "VmHWM"), 20480u * 1024);
  EXPECT_FALSE(ParseStatusKb(status, "VmSwap").ok());
}

TEST(ProcUsageTest, ReadsItsOwnProcess) {
  absl::StatusOr<ProcUsage> u = ReadProcUsage();
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_GT(u->rss_bytes, 0u);
}

TEST(ProcUsageTest, ReleasingUnusedMemoryKeepsTheProcessWorking) {
  // Heap freed, and library pages unmapped: everything still runs and reads
  // back as before (code and constants come back from the page cache).
  std::vector<std::string> garbage(10000, std::string(1000, 'x'));
  garbage.clear();
  garbage.shrink_to_fit();
  absl::StatusOr<MemoryRelease> r = ReleaseUnusedMemory();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->file_bytes, 0u);
  EXPECT_EQ(*ParseStatmRss("1 2 3", 4096), 8192u);
  absl::StatusOr<ProcUsage> u = ReadProcUsage();
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_GT(u->rss_bytes, 0u);
}

}  // namespace
}  // namespace idflow::agent

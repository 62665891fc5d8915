// The agent's own resource use, for its watchdog and `idflowctl agent
// status`: resident memory from /proc/<pid>/statm and CPU time (user +
// system) from /proc/<pid>/stat. The parsers are separate so tests feed them
// text; the footprint test reads another process's files with them.
#ifndef IDFLOW_AGENT_PROC_USAGE_H_
#define IDFLOW_AGENT_PROC_USAGE_H_

#include <chrono>
#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace idflow::agent {

struct ProcUsage {
  uint64_t rss_bytes = 0;
  std::chrono::nanoseconds cpu{0};  // utime + stime since the process started
};

// Resident pages (the second field of statm) times the page size.
absl::StatusOr<uint64_t> ParseStatmRss(absl::string_view statm, uint64_t page_size);
// utime + stime (fields 14 and 15 of stat, in clock ticks), counted after the
// last ')' since the command name may hold spaces and parentheses.
absl::StatusOr<std::chrono::nanoseconds> ParseStatCpu(absl::string_view stat, uint64_t ticks_per_s);
// A "Key:   123 kB" line of /proc/<pid>/status, in bytes (VmRSS, VmHWM...).
absl::StatusOr<uint64_t> ParseStatusKb(absl::string_view status, absl::string_view key);

// Reads `proc_dir`'s statm and stat ("/proc/self", "/proc/1234").
absl::StatusOr<ProcUsage> ReadProcUsage(const std::string& proc_dir = "/proc/self");

// What ReleaseUnusedMemory gave back, in bytes of RSS.
struct MemoryRelease {
  uint64_t heap_bytes = 0;  // freed heap returned by malloc_trim
  uint64_t file_bytes = 0;  // clean file pages of read-only mappings unmapped
};

// Gives back resident memory the process holds but does not use: free heap
// (malloc_trim) and the clean pages of read-only file mappings (library code
// and constants the kernel mapped around the pages really used, or used only
// at start-up). Only mappings without a private copy of any page (smaps
// "Anonymous: 0") are touched, so nothing but a mapping goes: the pages stay
// in the page cache and come back on the next access. Reads `proc_dir`/smaps.
absl::StatusOr<MemoryRelease> ReleaseUnusedMemory(const std::string& proc_dir = "/proc/self");

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_PROC_USAGE_H_

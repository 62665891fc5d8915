#include "agent/proc_usage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace idflow::agent {
namespace {

// One read of a small /proc file (no iostreams: this runs every second).
absl::StatusOr<std::string> ReadSmall(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  std::string out;
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (64 << 10)) break;
  }
  ::close(fd);
  return out;
}

}  // namespace

absl::StatusOr<uint64_t> ParseStatmRss(absl::string_view statm, uint64_t page_size) {
  std::vector<absl::string_view> f = absl::StrSplit(statm, ' ', absl::SkipWhitespace());
  uint64_t pages = 0;
  if (f.size() < 2 || !absl::SimpleAtoi(f[1], &pages)) {
    return absl::InvalidArgumentError("statm: no resident field");
  }
  return pages * page_size;
}

absl::StatusOr<std::chrono::nanoseconds> ParseStatCpu(absl::string_view stat,
                                                      uint64_t ticks_per_s) {
  const size_t paren = stat.rfind(')');
  if (paren == absl::string_view::npos || ticks_per_s == 0) {
    return absl::InvalidArgumentError("stat: no command name");
  }
  // After ')': state is field 3, so utime (14) and stime (15) are the 12th
  // and 13th.
  std::vector<absl::string_view> f =
      absl::StrSplit(stat.substr(paren + 1), ' ', absl::SkipWhitespace());
  uint64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) || !absl::SimpleAtoi(f[12], &stime)) {
    return absl::InvalidArgumentError("stat: no utime/stime fields");
  }
  const uint64_t ticks = utime + stime;
  return std::chrono::nanoseconds(ticks / ticks_per_s * 1000000000ull +
                                  ticks % ticks_per_s * 1000000000ull / ticks_per_s);
}

absl::StatusOr<uint64_t> ParseStatusKb(absl::string_view status, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, "kB");
    uint64_t kb = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kb)) break;
    return kb * 1024;
  }
  return absl::NotFoundError(absl::StrCat("status: no ", key, " line"));
}

absl::StatusOr<ProcUsage> ReadProcUsage(const std::string& proc_dir) {
  absl::StatusOr<std::string> statm = ReadSmall(proc_dir + "/statm");
  if (!statm.ok()) return statm.status();
  absl::StatusOr<std::string> stat = ReadSmall(proc_dir + "/stat");
  if (!stat.ok()) return stat.status();
  ProcUsage u;
  absl::StatusOr<uint64_t> rss =
      ParseStatmRss(*statm, static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
  if (!rss.ok()) return rss.status();
  absl::StatusOr<std::chrono::nanoseconds> cpu =
      ParseStatCpu(*stat, static_cast<uint64_t>(::sysconf(_SC_CLK_TCK)));
  if (!cpu.ok()) return cpu.status();
  u.rss_bytes = *rss;
  u.cpu = *cpu;
  return u;
}

}  // namespace idflow::agent

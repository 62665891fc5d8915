#include "agent/proc_usage.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace idflow::agent {
namespace {

// One read of a small /proc file (no iostreams: this runs every second).
absl::StatusOr<std::string> ReadSmall(const std::string& path, size_t max_bytes = 64 << 10) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  std::string out;
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (max_bytes)) break;
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

absl::StatusOr<MemoryRelease> ReleaseUnusedMemory(const std::string& proc_dir) {
  MemoryRelease out;
  absl::StatusOr<ProcUsage> before = ReadProcUsage(proc_dir);
  ::malloc_trim(0);
  absl::StatusOr<ProcUsage> after = ReadProcUsage(proc_dir);
  if (before.ok() && after.ok() && after->rss_bytes < before->rss_bytes) {
    out.heap_bytes = before->rss_bytes - after->rss_bytes;
  }
  absl::StatusOr<std::string> smaps = ReadSmall(proc_dir + "/smaps", 16 << 20);
  if (!smaps.ok()) return smaps.status();
  // One mapping: its header line, then "Key: value kB" lines.
  struct Mapping {
    uintptr_t from = 0, to = 0;
    bool candidate = false;  // private, not writable, file-backed
    uint64_t rss_kb = 0, anonymous_kb = 0;
    bool locked = false;
  };
  std::vector<Mapping> maps;
  for (absl::string_view line : absl::StrSplit(*smaps, '\n')) {
    if (line.empty()) continue;
    if (absl::ascii_isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') < line.find(' ')) {
      // "from-to perms offset dev inode path"
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      std::vector<absl::string_view> range = absl::StrSplit(f[0], '-');
      Mapping m;
      if (f.size() < 6 || range.size() != 2 || !absl::SimpleHexAtoi(range[0], &m.from) ||
          !absl::SimpleHexAtoi(range[1], &m.to)) {
        continue;
      }
      const absl::string_view perms = f[1], inode = f[4], path = f[5];
      m.candidate = perms.size() == 4 && perms[1] == '-' && perms[3] == 'p' && inode != "0" &&
                    !path.empty() && path[0] == '/';
      maps.push_back(m);
      continue;
    }
    if (maps.empty()) continue;
    uint64_t kb = 0;
    auto value = [&](absl::string_view key) {
      absl::string_view rest = line;
      if (!absl::ConsumePrefix(&rest, key)) return false;
      rest = absl::StripAsciiWhitespace(rest);
      absl::ConsumeSuffix(&rest, " kB");
      return absl::SimpleAtoi(rest, &kb);
    };
    if (value("Rss:")) {
      maps.back().rss_kb = kb;
    } else if (value("Anonymous:")) {
      maps.back().anonymous_kb = kb;
    } else if (value("Locked:")) {
      maps.back().locked = kb > 0;
    }
  }
  for (const Mapping& m : maps) {
    // A mapping holding a private copy of a page (relocated constants) keeps
    // it: unmapping that page would bring back the file's bytes.
    if (!m.candidate || m.rss_kb == 0 || m.anonymous_kb != 0 || m.locked) continue;
    if (::madvise(reinterpret_cast<void*>(m.from), m.to - m.from, MADV_DONTNEED) == 0) {
      out.file_bytes += m.rss_kb * 1024;
    }
  }
  return out;
}

}  // namespace idflow::agent

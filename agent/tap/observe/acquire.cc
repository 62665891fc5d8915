// Identifiers read from the system: sysfs address files, ioctl and
// getifaddrs results (observe.h).
#include <errno.h>
#include <hs/hs_runtime.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "agent/tap/core/state.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/observe/events.h"
#include "agent/tap/observe/observe.h"

namespace idflow::tap {

using agent::TapWireEvent;

// An identifier read from the system (sysfs file, ioctl, getifaddrs), given
// as text in its canonical form.
void OnAcquire(uint8_t channel, const char* text, size_t n, void* caller) {
  if (n == 0 || !EnsureThreadResources()) return;
  if (g_db == nullptr || t_scratch == nullptr) {
    // No database (the agent did not answer at start-up): it matches.
    Call c{-1, kFdNotScanned, channel, nullptr, 0, caller};
    HandOverAcquired(c, text, n);
    return;
  }
  MatchSet m;
  m.count = 0;
  hs_scan(g_db, text, static_cast<unsigned int>(n), 0, t_scratch, OnMatch, &m);
  if (m.count == 0) return;
  Call c{-1, kFdNotScanned, channel, nullptr, 0, caller};
  TapWireEvent ev;
  FillCommon(c, nullptr, 0, &ev);
  ev.action = agent::kTapActionAcquire;
  ev.family = agent::kTapFamilyNone;
  for (int i = 0; i < m.count; ++i) {
    g_counters.acquisitions.fetch_add(1, std::memory_order_relaxed);
    SendMatch(&ev, text, n, m.id[i], m.from[i], m.to[i], m.from[i], false);
  }
}

// "aa:bb:cc:dd:ee:ff" from 6 bytes, optionally in reverse (HCI order).
size_t FormatMac(const uint8_t* b, bool reversed, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 6; ++i) {
    uint8_t x = b[reversed ? 5 - i : i];
    out[i * 3] = kHex[x >> 4];
    out[i * 3 + 1] = kHex[x & 15];
    if (i < 5) out[i * 3 + 2] = ':';
  }
  return 17;
}

namespace {

bool IsWatchedPath(const char* path) {
  if (path == nullptr || strncmp(path, "/sys/", 5) != 0) return false;
  size_t n = strnlen(path, PATH_MAX);
  return n > 8 && strcmp(path + n - 8, "/address") == 0;
}

}  // namespace

// After a successful open of a sysfs address file: read its content with
// pread (the app's file position is untouched) and report what it holds.
void AfterOpen(int fd, const char* path, void* caller) {
  ResetFd(fd);
  if (!Active() || !IsWatchedPath(path)) return;
  int saved_errno = errno;
  char buf[64];
  ssize_t n = pread(fd, buf, sizeof(buf), 0);
  if (n > 0) OnAcquire(agent::kTapChannelSysfs, buf, static_cast<size_t>(n), caller);
  errno = saved_errno;
}

}  // namespace idflow::tap

// Acquisition hooks: identifiers an app reads from the system (sysfs
// address files, SIOCGIFHWADDR, HCI device info, getifaddrs).
#include "agent/tap/hooks/hook.h"

#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

using namespace idflow::tap;  // NOLINT: hooks are C symbols
namespace agent = idflow::agent;

namespace {

// The mode argument of an open call, passed only with O_CREAT or O_TMPFILE
// (reading it otherwise would read past the caller's arguments).
mode_t ModeArg(int flags, va_list ap) {
  const bool given = (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
  return given ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}

void Opened(int fd, const char* path, void* caller) {
  if (fd < 0) return;
  Observe([&] { AfterOpen(fd, path, caller); });
}

}  // namespace

#define IDFLOW_OPEN_HOOK(name)                                    \
  IDFLOW_EXPORT int name(const char* path, int flags, ...) {      \
    void* caller = IDFLOW_CALLER;                                 \
    va_list ap;                                                   \
    va_start(ap, flags);                                          \
    mode_t mode = ModeArg(flags, ap);                             \
    va_end(ap);                                                   \
    int fd = RealOpenMode(g_real.name, #name, path, flags, mode); \
    Opened(fd, path, caller);                                     \
    return fd;                                                    \
  }
#define IDFLOW_OPENAT_HOOK(name)                                           \
  IDFLOW_EXPORT int name(int dirfd, const char* path, int flags, ...) {    \
    void* caller = IDFLOW_CALLER;                                          \
    va_list ap;                                                            \
    va_start(ap, flags);                                                   \
    mode_t mode = ModeArg(flags, ap);                                      \
    va_end(ap);                                                            \
    int fd = RealOpenatMode(g_real.name, #name, dirfd, path, flags, mode); \
    Opened(fd, path, caller);                                              \
    return fd;                                                             \
  }

IDFLOW_OPEN_HOOK(open)
IDFLOW_OPEN_HOOK(open64)
IDFLOW_OPENAT_HOOK(openat)
IDFLOW_OPENAT_HOOK(openat64)

// _FORTIFY_SOURCE variants (no mode argument).
#define IDFLOW_OPEN2_HOOK(name)                                                                 \
  IDFLOW_EXPORT int name(const char* path, int flags) {                                         \
    void* caller = IDFLOW_CALLER;                                                               \
    Open2Fn f = IDFLOW_REAL(name);                                                              \
    int fd = f != nullptr ? f(path, flags) : RealOpenMode(g_real.open, "open", path, flags, 0); \
    Opened(fd, path, caller);                                                                   \
    return fd;                                                                                  \
  }
#define IDFLOW_OPENAT2_HOOK(name)                                                           \
  IDFLOW_EXPORT int name(int dirfd, const char* path, int flags) {                          \
    void* caller = IDFLOW_CALLER;                                                           \
    Openat2Fn f = IDFLOW_REAL(name);                                                        \
    int fd = f != nullptr ? f(dirfd, path, flags)                                           \
                          : RealOpenatMode(g_real.openat, "openat", dirfd, path, flags, 0); \
    Opened(fd, path, caller);                                                               \
    return fd;                                                                              \
  }
// stdio opens through libc-internal calls we do not see: hook fopen itself.
#define IDFLOW_FOPEN_HOOK(name)                                  \
  IDFLOW_EXPORT FILE* name(const char* path, const char* mode) { \
    void* caller = IDFLOW_CALLER;                                \
    FopenFn f = IDFLOW_REAL(name);                               \
    if (f == nullptr) return nullptr;                            \
    FILE* file = f(path, mode);                                  \
    if (file != nullptr) Opened(fileno(file), path, caller);     \
    return file;                                                 \
  }

IDFLOW_OPEN2_HOOK(__open_2)
IDFLOW_OPEN2_HOOK(__open64_2)
IDFLOW_OPENAT2_HOOK(__openat_2)
IDFLOW_OPENAT2_HOOK(__openat64_2)
IDFLOW_FOPEN_HOOK(fopen)
IDFLOW_FOPEN_HOOK(fopen64)

namespace {
// <bluetooth/hci.h> is not a build dependency: HCIGETDEVINFO = _IOR('H', 211,
// int); struct hci_dev_info starts {uint16_t dev_id; char name[8]; bdaddr_t}.
constexpr unsigned long kHciGetDevInfo = _IOR('H', 211, int);
constexpr size_t kHciBdaddrOffset = 10;
}  // namespace

IDFLOW_EXPORT int ioctl(int fd, unsigned long request, ...) {
  void* caller = IDFLOW_CALLER;
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  IoctlFn f = IDFLOW_REAL(ioctl);
  int r =
      f != nullptr ? f(fd, request, arg) : static_cast<int>(syscall(SYS_ioctl, fd, request, arg));
  if (r >= 0 && arg != nullptr && (request == SIOCGIFHWADDR || request == kHciGetDevInfo) &&
      Active()) {
    Observe([&] {
      char text[18];
      if (request == SIOCGIFHWADDR) {
        const auto* ifr = static_cast<const ifreq*>(arg);
        FormatMac(reinterpret_cast<const uint8_t*>(ifr->ifr_hwaddr.sa_data), false, text);
      } else {  // bdaddr_t is little-endian: print it the way people write it
        FormatMac(static_cast<const uint8_t*>(arg) + kHciBdaddrOffset, true, text);
      }
      OnAcquire(agent::kTapChannelIoctl, text, 17, caller);
    });
  }
  return r;
}

IDFLOW_EXPORT int getifaddrs(ifaddrs** out) {
  void* caller = IDFLOW_CALLER;
  GetifaddrsFn f = IDFLOW_REAL(getifaddrs);
  if (f == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  int r = f(out);
  if (r == 0 && out != nullptr && Active()) {
    Observe([&] {
      for (const ifaddrs* ifa = *out; ifa != nullptr; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != AF_PACKET) continue;
        const auto* ll = reinterpret_cast<const sockaddr_ll*>(ifa->ifa_addr);
        if (ll->sll_halen != 6) continue;
        char text[18];
        FormatMac(ll->sll_addr, false, text);
        OnAcquire(agent::kTapChannelGetifaddrs, text, 17, caller);
      }
    });
  }
  return r;
}

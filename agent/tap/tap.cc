// libidflow-tap.so: the exported hooks over the tap core (agent/tap/, a
// static library: see agent/tap/README.md). Each hook calls the real
// function first, then hands only what it reports as transferred to
// agent/tap/observe/ under the re-entrancy guard, and restores errno so the
// caller sees exactly the real result.
#include "agent/tap/hooks/hook.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "agent/tap/channel/agent_channel.h"
#include "agent/tap/core/init.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/resolver/names.h"

using namespace idflow::tap;  // NOLINT: hooks are C symbols
namespace agent = idflow::agent;

// ---- Per-fd bookkeeping hooks: what the tap knows about an fd (kind, connect
// address, carries) is forgotten when the number is reused.

IDFLOW_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
  int r = RealConnect(fd, addr, len);
  if (r == 0 || errno == EINPROGRESS) {
    int saved_errno = errno;
    RememberDest(fd, addr, len);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int close(int fd) {
  ResetFd(fd);
  ForgetAgentFd(fd);  // the app closed ours
  return RealClose(fd);
}

IDFLOW_EXPORT int dup2(int old_fd, int new_fd) {
  int r = RealDup2(old_fd, new_fd);
  if (r >= 0 && old_fd != new_fd) {
    int saved_errno = errno;
    ResetFd(new_fd);
    ForgetAgentFd(new_fd);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int dup3(int old_fd, int new_fd, int flags) {
  int r = RealDup3(old_fd, new_fd, flags);
  if (r >= 0) {
    int saved_errno = errno;
    ResetFd(new_fd);
    ForgetAgentFd(new_fd);
    errno = saved_errno;
  }
  return r;
}

// New sockets may reuse an fd whose close we did not see (fclose, closefrom):
// forget what we knew about it.
IDFLOW_EXPORT int socket(int domain, int type, int protocol) {
  int r = RealSocket(domain, type, protocol);
  if (r >= 0) ResetFd(r);
  return r;
}

IDFLOW_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  int r = RealAccept(fd, addr, len);
  if (r >= 0) ResetFd(r);
  return r;
}

IDFLOW_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  int r = RealAccept4(fd, addr, len, flags);
  if (r >= 0) ResetFd(r);
  return r;
}

// ---- Send hooks: what an app sends on a socket (plain send/write family).

IDFLOW_EXPORT ssize_t send(int fd, const void* buf, size_t len, int flags) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealSend(fd, buf, len, flags);
  t_last_sock = fd;
  if (r > 0 && Active()) Observe([&] { ObserveSend(fd, buf, r, nullptr, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* addr,
                             socklen_t addr_len) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealSendto(fd, buf, len, flags, addr, addr_len);
  t_last_sock = fd;
  if (r > 0 && Active()) Observe([&] { ObserveSend(fd, buf, r, addr, addr_len, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealSendmsg(fd, msg, flags);
  t_last_sock = fd;
  if (r > 0 && Active()) {
    Observe([&] {
      ObserveSendIov(fd, msg->msg_iov, msg->msg_iovlen, static_cast<size_t>(r),
                     static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen, caller);
    });
  }
  return r;
}

IDFLOW_EXPORT int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  void* caller = IDFLOW_CALLER;
  int r = RealSendmmsg(fd, vec, vlen, flags);
  if (r > 0 && Active()) {
    Observe([&] {
      for (int i = 0; i < r; ++i) {
        const msghdr& m = vec[i].msg_hdr;
        ObserveSendIov(fd, m.msg_iov, m.msg_iovlen, vec[i].msg_len,
                       static_cast<const sockaddr*>(m.msg_name), m.msg_namelen, caller);
      }
    });
  }
  return r;
}

IDFLOW_EXPORT ssize_t write(int fd, const void* buf, size_t len) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealWrite(fd, buf, len);
  t_last_sock = fd;
  if (r > 0 && Active()) Observe([&] { ObserveSend(fd, buf, r, nullptr, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t writev(int fd, const iovec* iov, int iovcnt) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealWritev(fd, iov, iovcnt);
  t_last_sock = fd;
  if (r > 0 && Active()) {
    Observe([&] { ObserveSendIov(fd, iov, static_cast<size_t>(iovcnt), r, nullptr, 0, caller); });
  }
  return r;
}

// ---- Receive hooks: HTTP responses read from a socket (Set-Cookie).

IDFLOW_EXPORT ssize_t recv(int fd, void* buf, size_t len, int flags) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealRecv(fd, buf, len, flags);
  t_last_sock = fd;
  if (r > 0 && Ready()) Observe([&] { ObserveReceive(fd, buf, r, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* addr,
                               socklen_t* addr_len) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealRecvfrom(fd, buf, len, flags, addr, addr_len);
  t_last_sock = fd;
  if (r > 0 && Ready()) Observe([&] { ObserveReceive(fd, buf, r, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealRecvmsg(fd, msg, flags);
  if (r > 0 && Ready() && msg->msg_iovlen > 0) {
    size_t n = msg->msg_iov[0].iov_len < static_cast<size_t>(r) ? msg->msg_iov[0].iov_len : r;
    Observe([&] { ObserveReceive(fd, msg->msg_iov[0].iov_base, n, 0, caller); });
  }
  return r;
}

IDFLOW_EXPORT ssize_t read(int fd, void* buf, size_t len) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealRead(fd, buf, len);
  t_last_sock = fd;
  if (r > 0 && Ready()) Observe([&] { ObserveReceive(fd, buf, r, 0, caller); });
  return r;
}

// _FORTIFY_SOURCE variants: programs built with it call these instead.
IDFLOW_EXPORT ssize_t __read_chk(int fd, void* buf, size_t len, size_t buflen) {
  void* caller = IDFLOW_CALLER;
  ReadChkFn f = IDFLOW_REAL(__read_chk);
  ssize_t r = f != nullptr ? f(fd, buf, len, buflen) : RealRead(fd, buf, len);
  if (r > 0 && Ready()) Observe([&] { ObserveReceive(fd, buf, r, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) {
  void* caller = IDFLOW_CALLER;
  RecvChkFn f = IDFLOW_REAL(__recv_chk);
  ssize_t r = f != nullptr ? f(fd, buf, len, buflen, flags) : RealRecv(fd, buf, len, flags);
  if (r > 0 && Ready()) Observe([&] { ObserveReceive(fd, buf, r, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t len, size_t buflen, int flags,
                                     sockaddr* addr, socklen_t* addr_len) {
  void* caller = IDFLOW_CALLER;
  RecvfromChkFn f = IDFLOW_REAL(__recvfrom_chk);
  ssize_t r = f != nullptr ? f(fd, buf, len, buflen, flags, addr, addr_len)
                           : RealRecvfrom(fd, buf, len, flags, addr, addr_len);
  if (r > 0 && Ready()) Observe([&] { ObserveReceive(fd, buf, r, 0, caller); });
  return r;
}

// ---- TLS hooks (OpenSSL, GnuTLS): plaintext before encryption and after
// decryption. The guard spans the real call: the library's own socket
// writes carry ciphertext and are not scanned twice.

namespace {

int SslFd(void* ssl) {
  SslGetFdFn f = IDFLOW_REAL_TLS(SSL_get_fd);
  return TransportFd(f != nullptr ? f(ssl) : -1);
}

int GnutlsFd(void* session) {
  GnutlsGetIntFn f = IDFLOW_REAL_TLS(gnutls_transport_get_int);
  return TransportFd(f != nullptr ? f(session) : -1);
}

}  // namespace

IDFLOW_EXPORT int SSL_write(void* ssl, const void* buf, int num) {
  void* caller = IDFLOW_CALLER;
  SslWriteFn f = IDFLOW_REAL_TLS(SSL_write);
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num);
  if (r > 0 && guard.entered() && Active()) {
    int saved_errno = errno;
    ObserveTlsSend(SslFd(ssl), buf, static_cast<size_t>(r), agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int SSL_write_ex(void* ssl, const void* buf, size_t num, size_t* written) {
  void* caller = IDFLOW_CALLER;
  SslWriteExFn f = IDFLOW_REAL_TLS(SSL_write_ex);
  if (f == nullptr) return 0;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num, written);
  if (r == 1 && written != nullptr && *written > 0 && guard.entered() && Active()) {
    int saved_errno = errno;
    ObserveTlsSend(SslFd(ssl), buf, *written, agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int SSL_read(void* ssl, void* buf, int num) {
  void* caller = IDFLOW_CALLER;
  SslReadFn f = IDFLOW_REAL_TLS(SSL_read);
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num);
  if (r > 0 && guard.entered() && Ready()) {
    int saved_errno = errno;
    ObserveReceive(SslFd(ssl), buf, static_cast<size_t>(r), agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int SSL_read_ex(void* ssl, void* buf, size_t num, size_t* read_bytes) {
  void* caller = IDFLOW_CALLER;
  SslReadExFn f = IDFLOW_REAL_TLS(SSL_read_ex);
  if (f == nullptr) return 0;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num, read_bytes);
  if (r == 1 && read_bytes != nullptr && *read_bytes > 0 && guard.entered() && Ready()) {
    int saved_errno = errno;
    ObserveReceive(SslFd(ssl), buf, *read_bytes, agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT ssize_t gnutls_record_send(void* session, const void* buf, size_t n) {
  void* caller = IDFLOW_CALLER;
  GnutlsSendFn f = IDFLOW_REAL_TLS(gnutls_record_send);
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  ssize_t r = f(session, buf, n);
  if (r > 0 && guard.entered() && Active()) {
    int saved_errno = errno;
    ObserveTlsSend(GnutlsFd(session), buf, static_cast<size_t>(r), agent::kTapChannelTlsGnutls,
                   caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT ssize_t gnutls_record_recv(void* session, void* buf, size_t n) {
  void* caller = IDFLOW_CALLER;
  GnutlsRecvFn f = IDFLOW_REAL_TLS(gnutls_record_recv);
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  ssize_t r = f(session, buf, n);
  if (r > 0 && guard.entered() && Ready()) {
    int saved_errno = errno;
    ObserveReceive(GnutlsFd(session), buf, static_cast<size_t>(r), agent::kTapChannelTlsGnutls,
                   caller);
    errno = saved_errno;
  }
  return r;
}

// ---- Resolver hook: the name each address was asked for, to name destinations.

IDFLOW_EXPORT int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                              addrinfo** res) {
  GetaddrinfoFn f = IDFLOW_REAL(getaddrinfo);
  if (f == nullptr) return EAI_SYSTEM;
  int r = f(node, service, hints, res);
  if (r == 0 && node != nullptr && res != nullptr && Ready()) {
    Observe([&] {
      unsigned char probe[16];
      if (inet_pton(AF_INET, node, probe) == 1 || inet_pton(AF_INET6, node, probe) == 1) return;
      for (const addrinfo* ai = *res; ai != nullptr; ai = ai->ai_next) {
        RememberName(node, ai->ai_addr);
      }
    });
  }
  return r;
}

// ---- Acquisition hooks: identifiers an app reads from the system (sysfs
// address files, SIOCGIFHWADDR, HCI device info, getifaddrs).

namespace {

bool NeedsMode(int flags) { return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE; }

void Opened(int fd, const char* path, void* caller) {
  if (fd < 0) return;
  Observe([&] { AfterOpen(fd, path, caller); });
}

}  // namespace

#define IDFLOW_OPEN_HOOK(name, slot)                         \
  IDFLOW_EXPORT int name(const char* path, int flags, ...) { \
    void* caller = IDFLOW_CALLER;                            \
    mode_t mode = 0;                                         \
    if (NeedsMode(flags)) {                                  \
      va_list ap;                                            \
      va_start(ap, flags);                                   \
      mode = static_cast<mode_t>(va_arg(ap, int));           \
      va_end(ap);                                            \
    }                                                        \
    int fd = RealOpenMode(slot, #name, path, flags, mode);   \
    Opened(fd, path, caller);                                \
    return fd;                                               \
  }
#define IDFLOW_OPENAT_HOOK(name, slot)                                  \
  IDFLOW_EXPORT int name(int dirfd, const char* path, int flags, ...) { \
    void* caller = IDFLOW_CALLER;                                       \
    mode_t mode = 0;                                                    \
    if (NeedsMode(flags)) {                                             \
      va_list ap;                                                       \
      va_start(ap, flags);                                              \
      mode = static_cast<mode_t>(va_arg(ap, int));                      \
      va_end(ap);                                                       \
    }                                                                   \
    int fd = RealOpenatMode(slot, #name, dirfd, path, flags, mode);     \
    Opened(fd, path, caller);                                           \
    return fd;                                                          \
  }

IDFLOW_OPEN_HOOK(open, g_real.open)
IDFLOW_OPEN_HOOK(open64, g_real.open64)
IDFLOW_OPENAT_HOOK(openat, g_real.openat)
IDFLOW_OPENAT_HOOK(openat64, g_real.openat64)

IDFLOW_EXPORT int __open_2(const char* path, int flags) {
  void* caller = IDFLOW_CALLER;
  Open2Fn f = IDFLOW_REAL(__open_2);
  int fd = f != nullptr ? f(path, flags) : RealOpenMode(g_real.open, "open", path, flags, 0);
  Opened(fd, path, caller);
  return fd;
}

IDFLOW_EXPORT int __open64_2(const char* path, int flags) {
  void* caller = IDFLOW_CALLER;
  Open2Fn f = IDFLOW_REAL(__open64_2);
  int fd = f != nullptr ? f(path, flags) : RealOpenMode(g_real.open, "open", path, flags, 0);
  Opened(fd, path, caller);
  return fd;
}

IDFLOW_EXPORT int __openat_2(int dirfd, const char* path, int flags) {
  void* caller = IDFLOW_CALLER;
  Openat2Fn f = IDFLOW_REAL(__openat_2);
  int fd = f != nullptr ? f(dirfd, path, flags)
                        : RealOpenatMode(g_real.openat, "openat", dirfd, path, flags, 0);
  Opened(fd, path, caller);
  return fd;
}

IDFLOW_EXPORT int __openat64_2(int dirfd, const char* path, int flags) {
  void* caller = IDFLOW_CALLER;
  Openat2Fn f = IDFLOW_REAL(__openat64_2);
  int fd = f != nullptr ? f(dirfd, path, flags)
                        : RealOpenatMode(g_real.openat, "openat", dirfd, path, flags, 0);
  Opened(fd, path, caller);
  return fd;
}

// stdio opens through libc-internal calls we do not see: hook fopen itself.
IDFLOW_EXPORT FILE* fopen(const char* path, const char* mode) {
  void* caller = IDFLOW_CALLER;
  FopenFn f = IDFLOW_REAL(fopen);
  if (f == nullptr) return nullptr;
  FILE* file = f(path, mode);
  if (file != nullptr) Opened(fileno(file), path, caller);
  return file;
}

IDFLOW_EXPORT FILE* fopen64(const char* path, const char* mode) {
  void* caller = IDFLOW_CALLER;
  FopenFn f = IDFLOW_REAL(fopen64);
  if (f == nullptr) return nullptr;
  FILE* file = f(path, mode);
  if (file != nullptr) Opened(fileno(file), path, caller);
  return file;
}

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

// ---- The tap's constructor and destructor (agent/tap/core/init.h).

namespace {

__attribute__((constructor)) void TapInit() { idflow::tap::Init(); }

__attribute__((destructor)) void TapFini() { idflow::tap::Fini(); }

}  // namespace

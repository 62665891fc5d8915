// Receive hooks: HTTP responses read from a socket (Set-Cookie).
#include "agent/tap/hooks/hook.h"

using namespace idflow::tap;  // NOLINT: hooks are C symbols
namespace agent = idflow::agent;

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

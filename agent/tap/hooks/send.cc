// Send hooks: what an app sends on a socket (plain send/write family).
#include "agent/tap/hooks/hook.h"

using namespace idflow::tap;  // NOLINT: hooks are C symbols
namespace agent = idflow::agent;

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

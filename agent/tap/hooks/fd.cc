// Per-fd bookkeeping hooks: what the tap knows about an fd (kind, connect
// address, carries) is forgotten when the number is reused.
#include "agent/tap/hooks/hook.h"

#include "agent/tap/channel/agent_channel.h"
#include "agent/tap/fd/fd_table.h"

using namespace idflow::tap;  // NOLINT: hooks are C symbols
namespace agent = idflow::agent;

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

// From a hooked call's arguments to what is observed: which fds are looked
// at, and the Call each one becomes.
#include "agent/tap/channel/agent_channel.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/observe/observe.h"
#include "agent/tap/sniff/http1.h"

namespace idflow::tap {
namespace {

bool OutgoingSocket(int fd, uint8_t* kind) {
  *kind = Classify(fd);
  return Scanned(*kind) && !IsAgentFd(fd);
}

}  // namespace

IDFLOW_TLS int t_last_sock = -1;

void ObserveSend(int fd, const void* buf, size_t n, const sockaddr* dest, socklen_t dest_len,
                 void* caller) {
  uint8_t kind;
  if (!OutgoingSocket(fd, &kind)) return;
  Call c{fd, kind, 0, dest, dest_len, caller};
  ScanOutgoing(c, static_cast<const char*>(buf), n);
}

void ObserveSendIov(int fd, const iovec* iov, size_t iovcnt, size_t sent, const sockaddr* dest,
                    socklen_t dest_len, void* caller) {
  uint8_t kind;
  if (!OutgoingSocket(fd, &kind)) return;
  Call c{fd, kind, 0, dest, dest_len, caller};
  ScanIov(c, iov, iovcnt, sent);
}

void ObserveReceive(int fd, const void* buf, size_t n, uint8_t tls_channel, void* caller) {
  if (!IsHttpResponse(static_cast<const char*>(buf), n) &&
      !g_responses.Has(fd, tls_channel != 0 ? 1 : 0)) {
    return;
  }
  uint8_t kind = Classify(fd);
  if (tls_channel == 0 && kind != kFdTcp) return;
  if (IsAgentFd(fd)) return;
  Call c{fd, kind, tls_channel, nullptr, 0, caller};
  OnIncoming(c, static_cast<const char*>(buf), n);
}

void ObserveTlsSend(int fd, const void* buf, size_t n, uint8_t channel, void* caller) {
  uint8_t kind = fd >= 0 ? Classify(fd) : static_cast<uint8_t>(kFdNotScanned);
  Call c{fd, kind, channel, nullptr, 0, caller};
  ScanOutgoing(c, static_cast<const char*>(buf), n);
}

int TransportFd(int fd) {
  if (fd >= 0) return fd;
  fd = t_last_sock;
  return fd >= 0 && Classify(fd) == kFdTcp ? fd : -1;
}

}  // namespace idflow::tap

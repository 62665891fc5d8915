// What the tap does with a hooked call once the real function returned:
// match what was sent for identifiers (with the stream carry), in the app
// for small calls, else by handing the bytes to the agent; parse HTTP
// responses for Set-Cookie, report identifiers read from the system. Called
// by the hooks (agent/tap/hooks/) under the re-entrancy guard, with errno
// saved; never changes what the app sees.
#ifndef IDFLOW_AGENT_TAP_OBSERVE_OBSERVE_H_
#define IDFLOW_AGENT_TAP_OBSERVE_OBSERVE_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "agent/tap/core/state.h"

namespace idflow::tap {

// --- Entry points of the hooks (agent/tap/hooks/): they check the fd (a
// scanned socket, not the agent's) and build the Call.

// Bytes a send/write hook reports as sent (`dest`: sendto's address).
void ObserveSend(int fd, const void* buf, size_t n, const sockaddr* dest, socklen_t dest_len,
                 void* caller);
void ObserveSendIov(int fd, const iovec* iov, size_t iovcnt, size_t sent, const sockaddr* dest,
                    socklen_t dest_len, void* caller);
// Bytes a receive hook reports as read: only TCP (and TLS plaintext) HTTP
// responses are parsed, reads that begin one and those of a stream whose
// response header block is not finished yet.
void ObserveReceive(int fd, const void* buf, size_t n, uint8_t tls_channel, void* caller);
// TLS plaintext written (fd: the session's socket, or -1).
void ObserveTlsSend(int fd, const void* buf, size_t n, uint8_t channel, void* caller);

// Last socket this thread wrote to or read from: the transport of a TLS
// session whose BIO hides the fd (curl's own BIO: SSL_get_fd() is -1).
extern IDFLOW_TLS int t_last_sock;
// `fd` if known, else the thread's last TCP socket, else -1.
int TransportFd(int fd);

// --- The work, on a Call.

// What a hooked call is about.
struct Call {
  int fd;
  uint8_t kind;
  uint8_t tls_channel;  // 0 for plain sockets, else kTapChannelTls*
  const sockaddr* dest;
  socklen_t dest_len;
  void* caller;
};

// What a hooked call actually sent (n contiguous bytes): matched here or
// handed over (every byte, unless the ring drops the record, counted).
void ScanOutgoing(const Call& c, const char* data, size_t n);
// The same for an iovec: gathered when it fits one chunk, else buffer by
// buffer.
void ScanIov(const Call& c, const iovec* iov, size_t iovcnt, size_t sent);

// An identifier read from the system while the tap has no database:
// handed to the agent, which reports it as an acquisition.
void HandOverAcquired(const Call& c, const char* text, size_t n);

// One read of a stream that begins an HTTP response or continues one whose
// header block did not end in an earlier read: reports its Set-Cookie
// headers.
void OnIncoming(const Call& c, const char* data, size_t n);

// An identifier read from the system (sysfs file, ioctl, getifaddrs), given
// as text in its canonical form.
void OnAcquire(uint8_t channel, const char* text, size_t n, void* caller);
// After a successful open of `path` as `fd`: a sysfs address file's content
// is read with pread (the app's offset is untouched) and reported.
void AfterOpen(int fd, const char* path, void* caller);
// "aa:bb:cc:dd:ee:ff" (17 bytes, no NUL) from 6 bytes, optionally in
// reverse (HCI order).
size_t FormatMac(const uint8_t* b, bool reversed, char* out);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_OBSERVE_OBSERVE_H_

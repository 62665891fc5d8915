// What the tap knows per file descriptor: its kind (classified once), the
// address given to connect(), the name the stream announced (TLS SNI), and
// the per-stream carries (the last bytes sent, an unfinished response
// header block). Fixed tables indexed by fd (fds >= kFdTableSize are
// classified on every call and have no carry); reset when the fd is closed,
// dup'ed over or handed out again by socket()/accept().
#ifndef IDFLOW_AGENT_TAP_FD_FD_TABLE_H_
#define IDFLOW_AGENT_TAP_FD_FD_TABLE_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <atomic>

#include "agent/tap/fd/stream_slots.h"
#include "agent/tap/observe/scan.h"
#include "agent/tap/sniff/http1.h"
#include "agent/tap_protocol.h"

namespace idflow::tap {

enum FdKind : uint8_t {
  kFdUnknown = 0,
  kFdNotScanned = 1,
  kFdTcp = 2,
  kFdUdp = 3,
  kFdUnix = 4,  // datagram / seqpacket
  kFdOtherSocket = 5,
  kFdAgent = 6,
  kFdUnixStream = 7,
};
inline constexpr int kFdTableSize = 4096;
extern std::atomic<uint8_t> g_fd_kind[kFdTableSize];

// Forgets everything about `fd` (closed, or a new file under that number).
void ResetFd(int fd);
// Kind of `fd` from the kernel (fstat + getsockopt).
uint8_t ClassifySlow(int fd);
// Kind of `fd`, cached.
inline uint8_t Classify(int fd) {
  if (fd < 0) return kFdNotScanned;
  if (fd >= kFdTableSize) return ClassifySlow(fd);
  uint8_t k = g_fd_kind[fd].load(std::memory_order_relaxed);
  if (k != kFdUnknown) return k;
  k = ClassifySlow(fd);
  g_fd_kind[fd].store(k, std::memory_order_relaxed);
  return k;
}
inline bool Scanned(uint8_t kind) {
  return kind == kFdTcp || kind == kFdUdp || kind == kFdUnix || kind == kFdUnixStream ||
         kind == kFdOtherSocket;
}
// The event channel of a plain socket of this kind (or the TLS channel).
uint8_t ChannelOf(uint8_t kind, uint8_t tls_channel);

// Destination of a call: ip:port from `explicit_dest`, else getpeername,
// else the remembered connect() address.
void RememberDest(int fd, const sockaddr* addr, socklen_t len);
bool FillDest(const sockaddr* addr, socklen_t len, uint8_t* family, uint8_t* out_addr,
              uint16_t* port);
void Destination(int fd, const sockaddr* explicit_dest, socklen_t explicit_len, uint8_t* family,
                 uint8_t* addr, uint16_t* port);

// The server name of a TLS ClientHello written on `fd` (plain write of the
// record), and the name remembered for `fd` (0 bytes if none).
void RememberSni(int fd, const char* data, size_t n);
uint16_t FdName(int fd, char* out);

// Executable of the process at the other end of a unix socket.
uint16_t PeerExe(int fd, char* out);

// For every handed-over call: Destination() without a system call once the
// fd's peer is known (the connect() address, else getpeername once), and
// PeerExe() kept per fd until it is reused.
void DestinationCached(int fd, const sockaddr* explicit_dest, socklen_t explicit_len,
                       uint8_t* family, uint8_t* addr, uint16_t* port);
uint16_t PeerExeCached(int fd, char* out);

// --- Per-stream carries. A stream is (fd, plain = 0 or TLS plaintext = 1).

// The last bytes a stream sent, scanned with its next call so that an
// identifier split across two writes is found.
struct SendCarry {
  uint16_t len = 0;
  char bytes[kCarryMax] = {};
  void Reset() { len = 0; }
};
using SendCarries = StreamSlots<SendCarry, 256, kFdTableSize>;
extern SendCarries g_carry;

// A response's header block split across reads (Set-Cookie lines,
// sniff/http1.h): claimed when a read begins a response, released when its
// header block ends.
struct ResponseCarry {
  ResponseLines lines;
  char line[kResponseLineMax] = {};
  void Reset() { lines = ResponseLines{}; }
};
using ResponseCarries = StreamSlots<ResponseCarry, 64, kFdTableSize>;
extern ResponseCarries g_responses;

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_FD_FD_TABLE_H_

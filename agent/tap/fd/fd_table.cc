#include "agent/tap/fd/fd_table.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/tap/sniff/tls_client_hello.h"

namespace idflow::tap {

constinit std::atomic<uint8_t> g_fd_kind[kFdTableSize];
constinit SendCarries g_carry;
constinit ResponseCarries g_responses;

namespace {

// Remembered connect() destination: word 0 = valid | family << 8 | port << 16,
// words 1-2 = address. Relaxed atomics: a torn read needs concurrent connect()
// on the same fd, which would be a bug in the app anyway.
constinit std::atomic<uint64_t> g_fd_dest[kFdTableSize][3];
// TLS SNI seen in a ClientHello written on the fd (truncated to 127 bytes).
// Zero pages until used: bss, touched only for TLS connections.
constexpr size_t kFdNameMax = 128;
constinit std::atomic<uint8_t> g_fd_name_len[kFdTableSize];
constinit char g_fd_name[kFdTableSize][kFdNameMax];
// Peer executable of a unix socket: 0 unknown, kPeerFilling while one
// thread fills it, else length + 1.
constexpr uint16_t kPeerFilling = 0xffff;
constinit std::atomic<uint16_t> g_fd_peer_state[kFdTableSize];
constinit char g_fd_peer[kFdTableSize][agent::kTapPeerMax];

}  // namespace

void ResetFd(int fd) {
  if (fd >= 0 && fd < kFdTableSize) {
    g_fd_kind[fd].store(kFdUnknown, std::memory_order_relaxed);
    g_fd_dest[fd][0].store(0, std::memory_order_relaxed);
    g_fd_name_len[fd].store(0, std::memory_order_relaxed);
    g_fd_peer_state[fd].store(0, std::memory_order_relaxed);
    g_carry.ReleaseFd(fd);
    g_responses.ReleaseFd(fd);
  }
}

uint8_t ClassifySlow(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return kFdNotScanned;
  int domain = 0, type = 0;
  socklen_t len = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return kFdNotScanned;
  len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return kFdNotScanned;
  if (domain == AF_INET || domain == AF_INET6) {
    if (type == SOCK_STREAM) return kFdTcp;
    if (type == SOCK_DGRAM) return kFdUdp;
    return kFdOtherSocket;
  }
  if (domain == AF_UNIX) return type == SOCK_STREAM ? kFdUnixStream : kFdUnix;
  return kFdNotScanned;  // netlink, packet...: not app payload
}

uint8_t ChannelOf(uint8_t kind, uint8_t tls_channel) {
  if (tls_channel != 0) return tls_channel;
  switch (kind) {
    case kFdTcp:
      return agent::kTapChannelTcp;
    case kFdUdp:
      return agent::kTapChannelUdp;
    case kFdUnix:
    case kFdUnixStream:
      return agent::kTapChannelUnix;
    default:
      return agent::kTapChannelOther;
  }
}

void RememberDest(int fd, const sockaddr* addr, socklen_t len) {
  if (fd < 0 || fd >= kFdTableSize || addr == nullptr) return;
  uint64_t w0 = 0, w1 = 0, w2 = 0;
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    w0 = 1 | (uint64_t{agent::kTapFamilyInet} << 8) | (uint64_t{ntohs(in->sin_port)} << 16);
    memcpy(&w1, &in->sin_addr, 4);
  } else if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    w0 = 1 | (uint64_t{agent::kTapFamilyInet6} << 8) | (uint64_t{ntohs(in6->sin6_port)} << 16);
    memcpy(&w1, &in6->sin6_addr, 8);
    memcpy(&w2, reinterpret_cast<const char*>(&in6->sin6_addr) + 8, 8);
  } else if (addr->sa_family == AF_UNIX) {
    w0 = 1 | (uint64_t{agent::kTapFamilyUnix} << 8);
  }
  g_fd_dest[fd][1].store(w1, std::memory_order_relaxed);
  g_fd_dest[fd][2].store(w2, std::memory_order_relaxed);
  g_fd_dest[fd][0].store(w0, std::memory_order_relaxed);
}

// Fills family/addr/port from a sockaddr; false if it is not usable.
bool FillDest(const sockaddr* addr, socklen_t len, uint8_t* family, uint8_t* out_addr,
              uint16_t* port) {
  if (addr == nullptr) return false;
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    *family = agent::kTapFamilyInet;
    memcpy(out_addr, &in->sin_addr, 4);
    *port = ntohs(in->sin_port);
    return true;
  }
  if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    *family = agent::kTapFamilyInet6;
    memcpy(out_addr, &in6->sin6_addr, 16);
    *port = ntohs(in6->sin6_port);
    return true;
  }
  if (addr->sa_family == AF_UNIX) {
    *family = agent::kTapFamilyUnix;
    return true;
  }
  return false;
}

namespace {

// The remembered connect() (or first getpeername) address of `fd`.
bool RememberedDest(int fd, uint8_t* family, uint8_t* addr, uint16_t* port) {
  if (fd < 0 || fd >= kFdTableSize) return false;
  uint64_t w0 = g_fd_dest[fd][0].load(std::memory_order_relaxed);
  if ((w0 & 1) == 0) return false;
  uint64_t w1 = g_fd_dest[fd][1].load(std::memory_order_relaxed);
  uint64_t w2 = g_fd_dest[fd][2].load(std::memory_order_relaxed);
  *family = static_cast<uint8_t>(w0 >> 8);
  *port = static_cast<uint16_t>(w0 >> 16);
  memcpy(addr, &w1, 8);
  memcpy(addr + 8, &w2, 8);
  return true;
}

}  // namespace

void Destination(int fd, const sockaddr* explicit_dest, socklen_t explicit_len, uint8_t* family,
                 uint8_t* addr, uint16_t* port) {
  if (FillDest(explicit_dest, explicit_len, family, addr, port)) return;
  if (fd < 0) return;
  sockaddr_storage peer;
  socklen_t len = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 &&
      FillDest(reinterpret_cast<sockaddr*>(&peer), len, family, addr, port)) {
    return;
  }
  RememberedDest(fd, family, addr, port);
}

void RememberSni(int fd, const char* data, size_t n) {
  if (fd < 0 || fd >= kFdTableSize || n < 6 || data[0] != 0x16) return;
  char name[kFdNameMax];
  size_t len = ParseSni(data, n, name, kFdNameMax - 1);
  if (len == 0) return;
  memcpy(g_fd_name[fd], name, len);
  g_fd_name_len[fd].store(static_cast<uint8_t>(len), std::memory_order_release);
}

uint16_t FdName(int fd, char* out) {
  if (fd < 0 || fd >= kFdTableSize) return 0;
  uint8_t len = g_fd_name_len[fd].load(std::memory_order_acquire);
  memcpy(out, g_fd_name[fd], len);
  return len;
}

uint16_t PeerExe(int fd, char* out) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0) return 0;
  char link[64];
  snprintf(link, sizeof(link), "/proc/%d/exe", static_cast<int>(cred.pid));
  ssize_t n = readlink(link, out, agent::kTapPeerMax);
  return n > 0 ? static_cast<uint16_t>(n) : 0;
}

void DestinationCached(int fd, const sockaddr* explicit_dest, socklen_t explicit_len,
                       uint8_t* family, uint8_t* addr, uint16_t* port) {
  if (FillDest(explicit_dest, explicit_len, family, addr, port)) return;
  if (fd < 0 || RememberedDest(fd, family, addr, port)) return;
  sockaddr_storage peer;
  socklen_t len = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 &&
      FillDest(reinterpret_cast<sockaddr*>(&peer), len, family, addr, port)) {
    RememberDest(fd, reinterpret_cast<sockaddr*>(&peer), len);
  }
}

uint16_t PeerExeCached(int fd, char* out) {
  if (fd < 0 || fd >= kFdTableSize) return PeerExe(fd, out);
  uint16_t s = g_fd_peer_state[fd].load(std::memory_order_acquire);
  if (s != 0 && s != kPeerFilling) {
    memcpy(out, g_fd_peer[fd], s - 1u);
    return static_cast<uint16_t>(s - 1u);
  }
  uint16_t n = PeerExe(fd, out);
  uint16_t expected = 0;
  if (s == 0 && g_fd_peer_state[fd].compare_exchange_strong(expected, kPeerFilling)) {
    memcpy(g_fd_peer[fd], out, n);
    g_fd_peer_state[fd].store(static_cast<uint16_t>(n + 1), std::memory_order_release);
  }
  return n;
}

}  // namespace idflow::tap

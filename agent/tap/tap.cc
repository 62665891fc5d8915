// libidflow-tap.so: LD_PRELOAD interposer that finds the device's identifiers
// in what an app sends (sockets, OpenSSL and GnuTLS plaintext) and reads
// (sysfs address files, SIOCGIFHWADDR, HCI device info, getifaddrs), using
// the Vectorscan database built by the agent, and reports each match, with
// the call chain (distinct modules on the stack), to idflow-agent. It also names destinations
// (getaddrinfo, TLS SNI, HTTP Host) and reports HTTP cookie names and
// lifetimes. Fails open: if anything is missing the hooks are plain
// pass-throughs. Never changes a hooked call's result or errno.
//
// Constraints: no C++ exceptions, no RTTI, no libstdc++ runtime (no
// function-local statics, no new/delete, no iostreams). Allocation happens at
// init and once per thread (Vectorscan scratch + a gather buffer for
// writev/sendmsg); hooks themselves do not allocate. All other state lives in
// fixed tables (per-fd kind/destination/name, the stream carry pool, the
// resolver ring).
#define IDFLOW_TAP_WIRE_ONLY
#include "agent/tap_protocol.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <hs/hs_runtime.h>
#include <ifaddrs.h>
#include <limits.h>
#include <link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include <atomic>

#include "agent/tap/call_chain.h"
#include "agent/tap/fd/stream_slots.h"
#include "agent/tap/sniff/http1.h"
#include "agent/tap/sniff/set_cookie.h"
#include "agent/tap/sniff/tls_client_hello.h"

#define IDFLOW_EXPORT extern "C" __attribute__((visibility("default")))
#define IDFLOW_TLS __attribute__((tls_model("initial-exec"))) thread_local

namespace idflow::tap_impl {
namespace {

using agent::kTapContextMax;
using agent::kTapHostMax;
using agent::kTapMaxDatabaseBytes;
using agent::kTapMaxMessageBytes;
using agent::kTapModuleMax;
using agent::kTapPeerMax;
using agent::TapRingHeader;
using agent::TapRingSlot;
using agent::TapWireCookie;
using agent::TapWireEvent;
using agent::TapWireHeader;
using agent::TapWireHello;
using agent::TapWirePatternsChunk;
using agent::TapWireStats;

// ---------------------------------------------------------------------------
// Real functions, resolved lazily (hooks can run before our constructor).

using ConnectFn = int (*)(int, const sockaddr*, socklen_t);
using SendFn = ssize_t (*)(int, const void*, size_t, int);
using SendtoFn = ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t);
using SendmsgFn = ssize_t (*)(int, const msghdr*, int);
using SendmmsgFn = int (*)(int, mmsghdr*, unsigned int, int);
using WriteFn = ssize_t (*)(int, const void*, size_t);
using WritevFn = ssize_t (*)(int, const iovec*, int);
using CloseFn = int (*)(int);
using Dup2Fn = int (*)(int, int);
using Dup3Fn = int (*)(int, int, int);
using SocketFn = int (*)(int, int, int);
using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using Accept4Fn = int (*)(int, sockaddr*, socklen_t*, int);
using RecvFn = ssize_t (*)(int, void*, size_t, int);
using RecvfromFn = ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*);
using RecvmsgFn = ssize_t (*)(int, msghdr*, int);
using ReadFn = ssize_t (*)(int, void*, size_t);
using ReadChkFn = ssize_t (*)(int, void*, size_t, size_t);
using RecvChkFn = ssize_t (*)(int, void*, size_t, size_t, int);
using RecvfromChkFn = ssize_t (*)(int, void*, size_t, size_t, int, sockaddr*, socklen_t*);
using OpenFn = int (*)(const char*, int, ...);
using OpenatFn = int (*)(int, const char*, int, ...);
using Open2Fn = int (*)(const char*, int);
using Openat2Fn = int (*)(int, const char*, int);
using FopenFn = FILE* (*)(const char*, const char*);
using IoctlFn = int (*)(int, unsigned long, ...);
using GetifaddrsFn = int (*)(ifaddrs**);
using GetaddrinfoFn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
// TLS libraries: opaque handles, so no libssl/gnutls headers are needed.
using SslWriteFn = int (*)(void*, const void*, int);
using SslWriteExFn = int (*)(void*, const void*, size_t, size_t*);
using SslReadFn = int (*)(void*, void*, int);
using SslReadExFn = int (*)(void*, void*, size_t, size_t*);
using SslGetFdFn = int (*)(const void*);
using GnutlsSendFn = ssize_t (*)(void*, const void*, size_t);
using GnutlsRecvFn = ssize_t (*)(void*, void*, size_t);
using GnutlsGetIntFn = int (*)(void*);

// Base address of this library: frames and definitions inside it are ours.
void* g_tap_base = nullptr;

template <typename Fn>
Fn Real(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    slot.store(fn, std::memory_order_release);
  }
  return fn;
}

void* TapBase() {
  if (g_tap_base == nullptr) {
    Dl_info self;
    if (dladdr(reinterpret_cast<void*>(&TapBase), &self) != 0) g_tap_base = self.dli_fbase;
  }
  return g_tap_base;
}

constexpr int kMaxObjects = 256;
struct ObjectList {
  const char* names[kMaxObjects];
  int count;
};

int CollectObject(dl_phdr_info* info, size_t, void* arg) {
  auto* list = static_cast<ObjectList*>(arg);
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
  if (reinterpret_cast<void*>(info->dlpi_addr) == g_tap_base) return 0;
  if (list->count < kMaxObjects) list->names[list->count++] = info->dlpi_name;
  return 0;
}

// The definition of `symbol` in the dependency tree of some loaded object
// other than the tap. dlopen(RTLD_NOLOAD) only takes a reference.
void* FindOutsideTap(const char* symbol) {
  TapBase();
  ObjectList list;
  list.count = 0;
  dl_iterate_phdr(CollectObject, &list);
  for (int i = 0; i < list.count; ++i) {
    void* h = dlopen(list.names[i], RTLD_LAZY | RTLD_NOLOAD);
    if (h == nullptr) continue;
    void* sym = dlsym(h, symbol);
    Dl_info di;
    bool ok = sym != nullptr && dladdr(sym, &di) != 0 && di.dli_fbase != g_tap_base;
    dlclose(h);
    if (ok) return sym;
  }
  return nullptr;
}

// TLS entry points: RTLD_NEXT only sees the global scope, but Python (and
// other plugin hosts) load libssl RTLD_LOCAL as a dependency of a dlopen'ed
// module, whose calls still land in our global definition. Then search every
// loaded object's own dependency tree.
template <typename Fn>
Fn RealTls(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn != nullptr) return fn;
  void* sym = dlsym(RTLD_NEXT, name);
  if (sym == nullptr) sym = FindOutsideTap(name);
  fn = reinterpret_cast<Fn>(sym);
  if (fn != nullptr) slot.store(fn, std::memory_order_release);
  return fn;
}

std::atomic<ConnectFn> g_connect;
std::atomic<SendFn> g_send;
std::atomic<SendtoFn> g_sendto;
std::atomic<SendmsgFn> g_sendmsg;
std::atomic<SendmmsgFn> g_sendmmsg;
std::atomic<WriteFn> g_write;
std::atomic<WritevFn> g_writev;
std::atomic<CloseFn> g_close;
std::atomic<Dup2Fn> g_dup2;
std::atomic<Dup3Fn> g_dup3;
std::atomic<SocketFn> g_socket;
std::atomic<AcceptFn> g_accept;
std::atomic<Accept4Fn> g_accept4;
std::atomic<RecvFn> g_recv;
std::atomic<RecvfromFn> g_recvfrom;
std::atomic<RecvmsgFn> g_recvmsg;
std::atomic<ReadFn> g_read;
std::atomic<ReadChkFn> g_read_chk;
std::atomic<RecvChkFn> g_recv_chk;
std::atomic<RecvfromChkFn> g_recvfrom_chk;
std::atomic<OpenFn> g_open, g_open64;
std::atomic<OpenatFn> g_openat, g_openat64;
std::atomic<Open2Fn> g_open_2, g_open64_2;
std::atomic<Openat2Fn> g_openat_2, g_openat64_2;
std::atomic<FopenFn> g_fopen, g_fopen64;
std::atomic<IoctlFn> g_ioctl;
std::atomic<GetifaddrsFn> g_getifaddrs;
std::atomic<GetaddrinfoFn> g_getaddrinfo;
std::atomic<SslWriteFn> g_ssl_write;
std::atomic<SslWriteExFn> g_ssl_write_ex;
std::atomic<SslReadFn> g_ssl_read;
std::atomic<SslReadExFn> g_ssl_read_ex;
std::atomic<SslGetFdFn> g_ssl_get_fd;
std::atomic<GnutlsSendFn> g_gnutls_send;
std::atomic<GnutlsRecvFn> g_gnutls_recv;
std::atomic<GnutlsGetIntFn> g_gnutls_get_int;

// Fallbacks to raw syscalls if dlsym failed, so a hook never jumps to null.
int RealConnect(int fd, const sockaddr* a, socklen_t l) {
  ConnectFn f = Real(g_connect, "connect");
  return f ? f(fd, a, l) : static_cast<int>(syscall(SYS_connect, fd, a, l));
}
ssize_t RealSend(int fd, const void* b, size_t n, int flags) {
  SendFn f = Real(g_send, "send");
  return f ? f(fd, b, n, flags) : syscall(SYS_sendto, fd, b, n, flags, nullptr, 0);
}
ssize_t RealSendto(int fd, const void* b, size_t n, int flags, const sockaddr* a, socklen_t l) {
  SendtoFn f = Real(g_sendto, "sendto");
  return f ? f(fd, b, n, flags, a, l) : syscall(SYS_sendto, fd, b, n, flags, a, l);
}
ssize_t RealSendmsg(int fd, const msghdr* m, int flags) {
  SendmsgFn f = Real(g_sendmsg, "sendmsg");
  return f ? f(fd, m, flags) : syscall(SYS_sendmsg, fd, m, flags);
}
int RealSendmmsg(int fd, mmsghdr* v, unsigned int n, int flags) {
  SendmmsgFn f = Real(g_sendmmsg, "sendmmsg");
  return f ? f(fd, v, n, flags) : static_cast<int>(syscall(SYS_sendmmsg, fd, v, n, flags));
}
ssize_t RealWrite(int fd, const void* b, size_t n) {
  WriteFn f = Real(g_write, "write");
  return f ? f(fd, b, n) : syscall(SYS_write, fd, b, n);
}
ssize_t RealWritev(int fd, const iovec* iov, int cnt) {
  WritevFn f = Real(g_writev, "writev");
  return f ? f(fd, iov, cnt) : syscall(SYS_writev, fd, iov, cnt);
}
int RealClose(int fd) {
  CloseFn f = Real(g_close, "close");
  return f ? f(fd) : static_cast<int>(syscall(SYS_close, fd));
}
int RealDup2(int a, int b) {
  Dup2Fn f = Real(g_dup2, "dup2");
  return f ? f(a, b) : static_cast<int>(syscall(SYS_dup3, a, b, 0));
}
int RealDup3(int a, int b, int flags) {
  Dup3Fn f = Real(g_dup3, "dup3");
  return f ? f(a, b, flags) : static_cast<int>(syscall(SYS_dup3, a, b, flags));
}
int RealSocket(int d, int t, int p) {
  SocketFn f = Real(g_socket, "socket");
  return f ? f(d, t, p) : static_cast<int>(syscall(SYS_socket, d, t, p));
}
int RealAccept(int fd, sockaddr* a, socklen_t* l) {
  AcceptFn f = Real(g_accept, "accept");
  return f ? f(fd, a, l) : static_cast<int>(syscall(SYS_accept, fd, a, l));
}
int RealAccept4(int fd, sockaddr* a, socklen_t* l, int flags) {
  Accept4Fn f = Real(g_accept4, "accept4");
  return f ? f(fd, a, l, flags) : static_cast<int>(syscall(SYS_accept4, fd, a, l, flags));
}
ssize_t RealRecv(int fd, void* b, size_t n, int flags) {
  RecvFn f = Real(g_recv, "recv");
  return f ? f(fd, b, n, flags) : syscall(SYS_recvfrom, fd, b, n, flags, nullptr, nullptr);
}
ssize_t RealRecvfrom(int fd, void* b, size_t n, int flags, sockaddr* a, socklen_t* l) {
  RecvfromFn f = Real(g_recvfrom, "recvfrom");
  return f ? f(fd, b, n, flags, a, l) : syscall(SYS_recvfrom, fd, b, n, flags, a, l);
}
ssize_t RealRecvmsg(int fd, msghdr* m, int flags) {
  RecvmsgFn f = Real(g_recvmsg, "recvmsg");
  return f ? f(fd, m, flags) : syscall(SYS_recvmsg, fd, m, flags);
}
ssize_t RealRead(int fd, void* b, size_t n) {
  ReadFn f = Real(g_read, "read");
  return f ? f(fd, b, n) : syscall(SYS_read, fd, b, n);
}
int RealOpenMode(std::atomic<OpenFn>& slot, const char* name, const char* path, int flags,
                 mode_t mode) {
  OpenFn f = Real(slot, name);
  return f ? f(path, flags, mode)
           : static_cast<int>(syscall(SYS_openat, AT_FDCWD, path, flags, mode));
}
int RealOpenatMode(std::atomic<OpenatFn>& slot, const char* name, int dirfd, const char* path,
                   int flags, mode_t mode) {
  OpenatFn f = Real(slot, name);
  return f ? f(dirfd, path, flags, mode)
           : static_cast<int>(syscall(SYS_openat, dirfd, path, flags, mode));
}

// ---------------------------------------------------------------------------
// Global state.

enum State : int { kUninit = 0, kDisabled = 1, kReady = 2 };
std::atomic<int> g_state{kUninit};
bool g_debug = false;
size_t g_scan_cap = 64 * 1024;
int g_timeout_ms = 2000;
int g_stack_depth = 32;
char g_socket_path[sizeof(sockaddr_un::sun_path)];
char g_exe[PATH_MAX];
void* g_main_base = nullptr;  // dli_fbase of the main executable

hs_database_t* g_db = nullptr;
hs_scratch_t* g_proto_scratch = nullptr;

// See EnterDl(): loader calls in flight, and a fork() in progress.
std::atomic<int> g_dl_users{0};
std::atomic<bool> g_forking{false};

std::atomic<int> g_agent_fd{-1};
std::atomic<int> g_agent_pid{0};  // process that owns g_agent_fd
std::atomic<bool> g_reconnecting{false};
constexpr int64_t kNeverMs = -1000000;
std::atomic<int64_t> g_last_reconnect_ms{kNeverMs};

// The event ring (tap_protocol.h) of this process, created at init (and by
// a fork child on its first event) and handed to every agent it connects to.
std::atomic<TapRingHeader*> g_ring{nullptr};
std::atomic<int> g_ring_pid{0};  // process that created g_ring
uint32_t g_ring_slots = agent::kTapRingDefaultSlots;
int g_ring_fd = -1, g_doorbell_fd = -1;
// Liveness of the agent connection is checked at most this often.
std::atomic<int64_t> g_last_alive_check_ms{0};
std::atomic<bool> g_said_unreachable{false};
bool g_ring_mode = false;  // set at init: events go through rings

std::atomic<uint64_t> g_events_sent{0}, g_events_dropped{0}, g_cap_hits{0}, g_calls_scanned{0},
    g_bytes_scanned{0}, g_split_matches{0}, g_stream_fallbacks{0}, g_acquisitions{0}, g_cookies{0};

void Debug(const char* msg) {
  if (!g_debug) return;
  char line[512];
  int n = snprintf(line, sizeof(line), "idflow-tap[%d]: %s\n", static_cast<int>(getpid()), msg);
  if (n > 0) RealWrite(2, line, static_cast<size_t>(n) < sizeof(line) ? n : sizeof(line) - 1);
}

// Once per process, whatever IDFLOW_TAP_DEBUG says: the tap runs unobserved,
// and a process that is not observed must not look clean.
void SayUnreachable(const char* what) {
  if (g_said_unreachable.exchange(true)) return;
  char line[512];
  int n = snprintf(line, sizeof(line), "idflow-tap[%d]: %s (agent socket %s)\n",
                   static_cast<int>(getpid()), what, g_socket_path);
  if (n > 0) RealWrite(2, line, static_cast<size_t>(n) < sizeof(line) ? n : sizeof(line) - 1);
}

int64_t NowMs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// ---------------------------------------------------------------------------
// Per-fd state: kind (classified once), the address given to connect(), and
// the name the stream announced (TLS SNI).

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
constexpr int kFdTableSize = 4096;  // larger fds are classified on every call
std::atomic<uint8_t> g_fd_kind[kFdTableSize];
// Remembered connect() destination: word 0 = valid | family << 8 | port << 16,
// words 1-2 = address. Relaxed atomics: a torn read needs concurrent connect()
// on the same fd, which would be a bug in the app anyway.
std::atomic<uint64_t> g_fd_dest[kFdTableSize][3];
// TLS SNI seen in a ClientHello written on the fd (truncated to 127 bytes).
// Zero pages until used: bss, touched only for TLS connections.
constexpr size_t kFdNameMax = 128;
std::atomic<uint8_t> g_fd_name_len[kFdTableSize];
char g_fd_name[kFdTableSize][kFdNameMax];

void ReleaseCarry(int fd);

void ResetFd(int fd) {
  if (fd >= 0 && fd < kFdTableSize) {
    g_fd_kind[fd].store(kFdUnknown, std::memory_order_relaxed);
    g_fd_dest[fd][0].store(0, std::memory_order_relaxed);
    g_fd_name_len[fd].store(0, std::memory_order_relaxed);
    ReleaseCarry(fd);
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

uint8_t Classify(int fd) {
  if (fd < 0) return kFdNotScanned;
  if (fd >= kFdTableSize) return ClassifySlow(fd);
  uint8_t k = g_fd_kind[fd].load(std::memory_order_relaxed);
  if (k != kFdUnknown) return k;
  k = ClassifySlow(fd);
  g_fd_kind[fd].store(k, std::memory_order_relaxed);
  return k;
}

bool Scanned(uint8_t kind) {
  return kind == kFdTcp || kind == kFdUdp || kind == kFdUnix || kind == kFdUnixStream ||
         kind == kFdOtherSocket;
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
  if (fd >= kFdTableSize) return;
  uint64_t w0 = g_fd_dest[fd][0].load(std::memory_order_relaxed);
  if ((w0 & 1) == 0) return;
  uint64_t w1 = g_fd_dest[fd][1].load(std::memory_order_relaxed);
  uint64_t w2 = g_fd_dest[fd][2].load(std::memory_order_relaxed);
  *family = static_cast<uint8_t>(w0 >> 8);
  *port = static_cast<uint16_t>(w0 >> 16);
  memcpy(addr, &w1, 8);
  memcpy(addr + 8, &w2, 8);
}

// ---------------------------------------------------------------------------
// Resolver map: addresses getaddrinfo() returned -> the name asked for. A
// ring of fixed entries, newest wins; each entry is a seqlock so readers
// (event emission) never block writers (getaddrinfo callers).

constexpr int kNameRing = 256;
struct NameEntry {
  std::atomic<uint32_t> seq{0};  // odd while being written
  uint8_t family = 0;
  uint8_t addr[16] = {};
  uint16_t len = 0;
  char name[kTapHostMax] = {};
};
constinit NameEntry g_names[kNameRing];
std::atomic<uint32_t> g_name_next{0};

void RememberName(const char* node, const sockaddr* sa) {
  uint8_t family = 0, addr[16] = {};
  uint16_t port = 0;
  if (sa == nullptr || sa->sa_family == AF_UNIX) return;
  if (!FillDest(sa, sa->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6), &family,
                addr, &port)) {
    return;
  }
  NameEntry& e = g_names[g_name_next.fetch_add(1, std::memory_order_relaxed) % kNameRing];
  uint32_t s = e.seq.load(std::memory_order_relaxed);
  if ((s & 1) != 0) return;  // another writer lapped the ring onto this entry
  if (!e.seq.compare_exchange_strong(s, s + 1, std::memory_order_acquire)) return;
  e.family = family;
  memcpy(e.addr, addr, 16);
  size_t n = strnlen(node, kTapHostMax);
  memcpy(e.name, node, n);
  e.len = static_cast<uint16_t>(n);
  e.seq.store(s + 2, std::memory_order_release);
}

uint16_t LookupName(uint8_t family, const uint8_t* addr, char* out) {
  if (family != agent::kTapFamilyInet && family != agent::kTapFamilyInet6) return 0;
  size_t cmp = family == agent::kTapFamilyInet ? 4 : 16;
  uint32_t next = g_name_next.load(std::memory_order_relaxed);
  int count = next < kNameRing ? static_cast<int>(next) : kNameRing;
  for (int i = 1; i <= count; ++i) {  // newest first
    NameEntry& e = g_names[(next - i) % kNameRing];
    uint32_t s = e.seq.load(std::memory_order_acquire);
    if ((s & 1) != 0 || e.family != family || memcmp(e.addr, addr, cmp) != 0) continue;
    uint16_t len = e.len > kTapHostMax ? kTapHostMax : e.len;
    memcpy(out, e.name, len);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (e.seq.load(std::memory_order_relaxed) == s) return len;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Stream carry: so that an identifier split across two consecutive writes on
// one stream is found, each stream keeps the last kCarryMax bytes it sent in a
// slot of a fixed pool. A stream is (fd, plaintext-or-wire): TLS plaintext
// and the ciphertext on the same fd are separate streams. When the pool is
// exhausted the call is scanned on its own (block mode) and counted.

constexpr size_t kCarryMax = agent::kTapMaxPatternBytes - 1;
struct SendCarry {
  uint16_t len = 0;
  char bytes[kCarryMax] = {};
  void Reset() { len = 0; }
};
using CarrySlot = tap::StreamSlots<SendCarry, 256, kFdTableSize>::Slot;
constinit tap::StreamSlots<SendCarry, 256, kFdTableSize> g_carry;

// Response carry: a response's header block split across reads (Set-Cookie
// lines), tap/sniff/http1.h. Claimed when a read begins a response whose
// header block does not end in it; released when the block ends.
struct ResponseCarry {
  tap::ResponseLines lines;
  char line[tap::kResponseLineMax] = {};
  void Reset() { lines = tap::ResponseLines{}; }
};
constinit tap::StreamSlots<ResponseCarry, 64, kFdTableSize> g_responses;

void ReleaseCarry(int fd) {
  g_carry.ReleaseFd(fd);
  g_responses.ReleaseFd(fd);
}

// ---------------------------------------------------------------------------
// Per-thread state: re-entrancy guard, scratch, gather buffer.

IDFLOW_TLS int t_in_hook = 0;
IDFLOW_TLS hs_scratch_t* t_scratch = nullptr;
IDFLOW_TLS char* t_gather = nullptr;
IDFLOW_TLS bool t_key_set = false;
pthread_key_t g_thread_key;
bool g_thread_key_ok = false;

struct ThreadResources {
  hs_scratch_t* scratch;
  char* gather;
};

void FreeThreadResources(void* p) {
  // Runs in the exiting thread: clear the TLS pointers so that a hook called
  // by a later destructor re-allocates instead of using freed memory.
  auto* r = static_cast<ThreadResources*>(p);
  if (r->scratch == t_scratch) {
    t_scratch = nullptr;
    t_gather = nullptr;
    t_key_set = false;
  }
  if (r->scratch != nullptr) hs_free_scratch(r->scratch);
  free(r->gather);
  free(r);
}

class Guard {
 public:
  Guard() : entered_(t_in_hook == 0) { ++t_in_hook; }
  ~Guard() { --t_in_hook; }
  bool entered() const { return entered_; }

 private:
  bool entered_;
};

bool EnsureThreadResources() {
  if (t_scratch != nullptr) return true;
  hs_scratch_t* s = nullptr;
  if (hs_clone_scratch(g_proto_scratch, &s) != HS_SUCCESS) return false;
  char* gather = static_cast<char*>(malloc(g_scan_cap));
  if (gather == nullptr) {
    hs_free_scratch(s);
    return false;
  }
  t_scratch = s;
  t_gather = gather;
  if (g_thread_key_ok && !t_key_set) {
    auto* r = static_cast<ThreadResources*>(malloc(sizeof(ThreadResources)));
    if (r != nullptr) {
      r->scratch = s;
      r->gather = gather;
      pthread_setspecific(g_thread_key, r);
      t_key_set = true;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Agent connection.

bool WaitFor(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - NowMs(CLOCK_MONOTONIC);
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r > 0) return (p.revents & events) != 0;
    if (r < 0 && errno != EINTR) return false;
  }
}

size_t CopyEnv(const char* name, char* out, size_t cap) {
  const char* v = getenv(name);
  if (v == nullptr) return 0;
  size_t n = strnlen(v, cap);
  memcpy(out, v, n);
  return n;
}

// Creates this process's ring: a sealed memfd (the agent refuses one that
// could shrink under it) and an eventfd doorbell. Syscalls only, no malloc:
// a fork child runs this from a hook. Pages are touched as slots are used.
bool CreateRing() {
  const size_t bytes = agent::TapRingBytes(g_ring_slots);
  int fd = memfd_create("idflow-tap-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return false;
  void* map = MAP_FAILED;
  if (ftruncate(fd, static_cast<off_t>(bytes)) == 0) {
    map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (map == MAP_FAILED || efd < 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    if (map != MAP_FAILED) munmap(map, bytes);
    if (efd >= 0) RealClose(efd);
    RealClose(fd);
    return false;
  }
  auto* h = static_cast<TapRingHeader*>(map);
  h->magic = agent::kTapRingMagic;
  h->version = agent::kTapRingVersion;
  h->slot_count = g_ring_slots;
  h->slot_bytes = agent::kTapRingSlotBytes;
  h->pid = static_cast<uint32_t>(getpid());
  uint64_t id = 0;
  if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id) || id == 0) {
    id = (static_cast<uint64_t>(getpid()) << 32) ^ static_cast<uint64_t>(NowMs(CLOCK_REALTIME));
  }
  h->ring_id = id | 1;  // never 0 (0 means "not from a ring")
  g_ring_fd = fd;
  g_doorbell_fd = efd;
  g_ring_pid.store(static_cast<int>(getpid()), std::memory_order_release);
  g_ring.store(h, std::memory_order_release);
  return true;
}

void DestroyRing() {
  TapRingHeader* ring = g_ring.exchange(nullptr);
  if (ring != nullptr) munmap(ring, agent::TapRingBytes(g_ring_slots));
  if (g_ring_fd >= 0) RealClose(g_ring_fd);
  if (g_doorbell_fd >= 0) RealClose(g_doorbell_fd);
  g_ring_fd = g_doorbell_fd = -1;
  g_ring_pid.store(0);
}

TapRingHeader* OwnRing() {
  TapRingHeader* h = g_ring.load(std::memory_order_acquire);
  return h != nullptr && g_ring_pid.load(std::memory_order_acquire) == static_cast<int>(getpid())
             ? h
             : nullptr;
}

// Appends one message; false when the ring is full (never waits).
bool RingPush(TapRingHeader* h, const void* msg, size_t len) {
  if (len > agent::kTapRingPayloadMax) return false;
  const uint64_t mask = h->slot_count - 1;
  char* slots = reinterpret_cast<char*>(h) + agent::kTapRingHeaderBytes;
  uint64_t pos = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
  TapRingSlot* s;
  for (;;) {
    s = reinterpret_cast<TapRingSlot*>(slots + (pos & mask) * agent::kTapRingSlotBytes);
    const uint64_t lap = __atomic_load_n(&s->lap, __ATOMIC_ACQUIRE);
    const int64_t dif = static_cast<int64_t>(lap - (pos - (pos & mask)));
    if (dif == 0) {
      if (__atomic_compare_exchange_n(&h->head, &pos, pos + 1, /*weak=*/true, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
        break;
      }
    } else if (dif < 0) {
      return false;  // the consumer has not released this slot: full
    } else {
      pos = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
    }
  }
  memcpy(s->data, msg, len);
  s->length = static_cast<uint32_t>(len);
  __atomic_store_n(&s->lap, pos - (pos & mask) + 1, __ATOMIC_RELEASE);
  // Pairs with the agent's fence in PrepareSleep (tap_ring.cc).
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (__atomic_load_n(&h->waiting, __ATOMIC_RELAXED) != 0 &&
      __atomic_exchange_n(&h->waiting, 0, __ATOMIC_ACQ_REL) != 0) {
    uint64_t one = 1;
    (void)!RealWrite(g_doorbell_fd, &one, sizeof(one));
  }
  return true;
}

// Connects and sends Hello (with the ring's descriptors when there is a
// ring); returns the fd or -1.
int ConnectAgent(bool want_patterns, int64_t deadline_ms) {
  int fd = RealSocket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (fd < kFdTableSize) g_fd_kind[fd].store(kFdAgent, std::memory_order_relaxed);
  sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, g_socket_path, sizeof(addr.sun_path));
  for (;;) {
    if (RealConnect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) break;
    // EAGAIN: listen backlog full; retry briefly within the deadline.
    if (errno != EAGAIN || NowMs(CLOCK_MONOTONIC) >= deadline_ms) {
      ResetFd(fd);
      RealClose(fd);
      return -1;
    }
    timespec pause{0, 5 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
  TapWireHello hello;
  memset(&hello, 0, sizeof(hello));
  agent::FillTapHeader(&hello.header, agent::kTapMsgHello, sizeof(hello));
  hello.pid = static_cast<uint32_t>(getpid());
  hello.ppid = static_cast<uint32_t>(getppid());
  TapRingHeader* ring = OwnRing();
  hello.flags = (want_patterns ? agent::kTapHelloWantPatterns : 0) |
                (ring != nullptr ? agent::kTapHelloRing : 0);
  hello.exe_len = static_cast<uint16_t>(strnlen(g_exe, sizeof(hello.exe)));
  memcpy(hello.exe, g_exe, hello.exe_len);
  hello.scenarios_len =
      static_cast<uint16_t>(CopyEnv("IDFLOW_SCENARIO", hello.scenarios, sizeof(hello.scenarios)));
  hello.consents_len =
      static_cast<uint16_t>(CopyEnv("IDFLOW_CONSENT", hello.consents, sizeof(hello.consents)));
  iovec iov{&hello, sizeof(hello)};
  msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
  if (ring != nullptr) {
    memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {g_ring_fd, g_doorbell_fd};
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
  }
  for (;;) {
    if (RealSendmsg(fd, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(hello))) return fd;
    if (errno != EAGAIN || !WaitFor(fd, POLLOUT, deadline_ms)) break;
  }
  ResetFd(fd);
  RealClose(fd);
  return -1;
}

// Receives the Patterns chunks; on success sets g_db and g_proto_scratch.
bool ReceivePatterns(int fd, int64_t deadline_ms) {
  char* msg = static_cast<char*>(malloc(kTapMaxMessageBytes));
  if (msg == nullptr) return false;
  char* db_bytes = nullptr;
  uint32_t total = 0, received = 0;
  bool first = true, ok = false;
  for (;;) {
    if (!WaitFor(fd, POLLIN, deadline_ms)) break;
    ssize_t n = RealRecv(fd, msg, kTapMaxMessageBytes, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < static_cast<ssize_t>(sizeof(TapWirePatternsChunk))) break;
    TapWirePatternsChunk c;
    memcpy(&c, msg, sizeof(c));
    if (c.header.magic != agent::kTapMagic || c.header.version != agent::kTapVersion ||
        c.header.type != agent::kTapMsgPatterns || c.header.length != static_cast<size_t>(n) ||
        c.chunk_bytes != n - sizeof(c) || c.total_bytes > kTapMaxDatabaseBytes) {
      break;
    }
    if (first) {
      total = c.total_bytes;
      first = false;
      if (total == 0) {  // no identifiers: nothing to scan
        ok = true;
        break;
      }
      db_bytes = static_cast<char*>(malloc(total));
      if (db_bytes == nullptr) break;
    }
    if (c.total_bytes != total || c.offset != received || c.chunk_bytes > total - received) break;
    memcpy(db_bytes + received, msg + sizeof(c), c.chunk_bytes);
    received += c.chunk_bytes;
    if (received == total) {
      hs_database_t* db = nullptr;
      hs_scratch_t* scratch = nullptr;
      if (hs_deserialize_database(db_bytes, total, &db) != HS_SUCCESS) break;
      if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) {
        hs_free_database(db);
        break;
      }
      g_db = db;
      g_proto_scratch = scratch;
      ok = true;
      break;
    }
  }
  free(db_bytes);
  free(msg);
  return ok;
}

// The agent fd for this process; reconnects (without asking for patterns)
// after fork() or if the app closed our fd. At most one attempt per second.
int AgentFd() {
  int pid = static_cast<int>(getpid());
  int fd = g_agent_fd.load(std::memory_order_acquire);
  if (fd >= 0 && g_agent_pid.load(std::memory_order_acquire) == pid) return fd;
  int64_t now = NowMs(CLOCK_MONOTONIC);
  if (now - g_last_reconnect_ms.load(std::memory_order_relaxed) < 250) return -1;
  if (g_reconnecting.exchange(true)) return -1;
  g_last_reconnect_ms.store(now, std::memory_order_relaxed);
  // A fork child gets its own ring (the parent's stays the parent's).
  if (g_ring_pid.load(std::memory_order_acquire) != pid) CreateRing();
  int new_fd = ConnectAgent(/*want_patterns=*/false, now + 100);
  if (new_fd >= 0) {
    g_agent_fd.store(new_fd, std::memory_order_release);
    g_agent_pid.store(pid, std::memory_order_release);
  } else {
    SayUnreachable(OwnRing() != nullptr
                       ? "lost the agent: events wait in this process's ring and are counted "
                         "as dropped once it is full"
                       : "lost the agent: events are dropped (counted) until it is back");
  }
  g_reconnecting.store(false);
  return new_fd;
}

void AtForkChild() {
  g_dl_users.store(0);
  g_forking.store(false);
  // The child must not share the parent's connection: drop it (the parent
  // keeps its own descriptor) and reconnect lazily as itself.
  int fd = g_agent_fd.exchange(-1);
  g_agent_pid.store(0);
  g_reconnecting.store(false);
  g_last_reconnect_ms.store(kNeverMs);
  if (fd >= 0) {
    ResetFd(fd);
    RealClose(fd);
  }
  // The parent's ring is the parent's: unmap our view and close our copies;
  // AgentFd() creates the child's own ring on its first event.
  DestroyRing();
}

// With a ring nothing is sent on the socket, so a dead agent shows only as a
// hang-up there: look (a poll with no wait) at most every 250 ms, and when
// the ring is full.
void CheckAgent(bool now_please) {
  int64_t now = NowMs(CLOCK_MONOTONIC_COARSE);
  int64_t last = g_last_alive_check_ms.load(std::memory_order_relaxed);
  if (!now_please && now - last < 250) return;
  if (!g_last_alive_check_ms.compare_exchange_strong(last, now)) return;  // another thread does
  int fd = g_agent_fd.load(std::memory_order_acquire);
  if (fd < 0 || g_agent_pid.load(std::memory_order_acquire) != static_cast<int>(getpid())) {
    AgentFd();  // reconnect (rate-limited)
    return;
  }
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) != 0) {
    // As in SendToAgent: the dead fd stays open (another thread may use it).
    int expected = fd;
    g_agent_fd.compare_exchange_strong(expected, -1);
    AgentFd();
  }
}

void SendToAgent(const void* msg, size_t len) {
  if (TapRingHeader* ring = OwnRing()) {
    if (RingPush(ring, msg, len)) {
      g_events_sent.fetch_add(1, std::memory_order_relaxed);
      CheckAgent(false);
      return;
    }
    // Counted where the agent reads it, even if this process dies first.
    __atomic_fetch_add(&ring->dropped, 1, __ATOMIC_RELAXED);
    g_events_dropped.fetch_add(1, std::memory_order_relaxed);
    CheckAgent(true);
    return;
  }
  if (g_ring_mode) {
    // A fork child before its first event: AgentFd() makes its ring.
    AgentFd();
    if (OwnRing() != nullptr) return SendToAgent(msg, len);
  }
  int fd = AgentFd();
  if (fd >= 0 && RealSend(fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(len)) {
    g_events_sent.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g_events_dropped.fetch_add(1, std::memory_order_relaxed);
  if (fd >= 0 && (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)) {
    // Agent restarted: reconnect later (rate-limited). The dead fd is left
    // open on purpose: another thread may be about to send on it, and closing
    // it could let the app reuse the number and receive our bytes.
    int expected = fd;
    g_agent_fd.compare_exchange_strong(expected, -1);
  }
}

// ---------------------------------------------------------------------------
// Attribution: the call chain, i.e. the distinct modules on the stack at the
// hooked call, innermost first (agent/tap/call_chain.h). Which module is
// responsible is decided by the collector from policy data, not here.
//
// Each module's real path and GNU build id are computed once per (load
// address, dladdr name) and kept in a fixed table of immutable entries:
// modules loaded at start-up are filled in the constructor, ones dlopen'ed
// later on first sight (inside the loader fence below). A module reloaded at
// the same address under another name gets a new entry; when the table is
// full the path is reported as dladdr gives it, without build id.

static_assert(tap::kCookieDomainMax == agent::kTapCookieDomainMax);

constexpr int kModuleCacheSize = 128;
enum ModuleState : uint8_t { kModuleFree = 0, kModuleFilling = 1, kModuleReady = 2 };
struct ModuleEntry {
  std::atomic<uint8_t> state{kModuleFree};
  uintptr_t base = 0;
  uint16_t name_len = 0;
  uint16_t path_len = 0;
  uint8_t build_id_len = 0;
  char name[kTapModuleMax] = {};  // dladdr's dli_fname: the lookup key with base
  char path[kTapModuleMax] = {};  // absolute
  uint8_t build_id[agent::kTapBuildIdMax] = {};
};
constinit ModuleEntry g_modules[kModuleCacheSize];

// NT_GNU_BUILD_ID of the loaded object containing `pc`, read from its
// PT_NOTE segments in memory (only notes inside a loaded segment are read).
struct BuildIdQuery {
  uintptr_t pc;
  uint8_t* out;
  uint8_t len;
};

bool InLoadedSegment(const dl_phdr_info* info, uintptr_t lo, uintptr_t hi) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && lo >= start && hi <= start + ph.p_filesz) return true;
  }
  return false;
}

int FindBuildId(dl_phdr_info* info, size_t, void* arg) {
  auto* q = static_cast<BuildIdQuery*>(arg);
  bool contains = false;
  for (int i = 0; i < info->dlpi_phnum && !contains; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    contains = ph.p_type == PT_LOAD && q->pc >= start && q->pc < start + ph.p_memsz;
  }
  if (!contains) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type != PT_NOTE || !InLoadedSegment(info, start, start + ph.p_filesz)) continue;
    const size_t align = ph.p_align == 8 ? 8 : 4;
    size_t off = 0;
    while (off + sizeof(ElfW(Nhdr)) <= ph.p_filesz) {
      ElfW(Nhdr) nh;
      memcpy(&nh, reinterpret_cast<const char*>(start + off), sizeof(nh));
      size_t name_off = off + sizeof(nh);
      size_t desc_off = name_off + ((nh.n_namesz + align - 1) & ~(align - 1));
      size_t next = desc_off + ((nh.n_descsz + align - 1) & ~(align - 1));
      if (desc_off > ph.p_filesz || nh.n_descsz > ph.p_filesz - desc_off || next <= off) break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
          memcmp(reinterpret_cast<const char*>(start + name_off), "GNU", 4) == 0) {
        if (nh.n_descsz > 0 && nh.n_descsz <= agent::kTapBuildIdMax) {
          memcpy(q->out, reinterpret_cast<const char*>(start + desc_off), nh.n_descsz);
          q->len = static_cast<uint8_t>(nh.n_descsz);
        }
        return 1;
      }
      off = next;
    }
  }
  return 1;  // the containing object has no build id
}

void FillModule(ModuleEntry* e, const tap::ChainModule& m, size_t name_len) {
  e->base = m.base;
  memcpy(e->name, m.name, name_len);
  e->name_len = static_cast<uint16_t>(name_len);
  const char* path = m.name;
  char resolved[PATH_MAX];
  if (m.base == reinterpret_cast<uintptr_t>(g_main_base) || name_len == 0) {
    path = g_exe;  // dladdr names the executable "" or argv[0]
  } else if (m.name[0] != '/' && realpath(m.name, resolved) != nullptr) {
    path = resolved;  // dlopen'ed by a relative path; rare, so once per module
  }
  size_t path_len = strnlen(path, kTapModuleMax);
  memcpy(e->path, path, path_len);
  e->path_len = static_cast<uint16_t>(path_len);
  BuildIdQuery q{m.pc, e->build_id, 0};
  dl_iterate_phdr(FindBuildId, &q);
  e->build_id_len = q.len;
}

// The entry of module `m`, filled if new; nullptr when the table is full.
const ModuleEntry* CachedModule(const tap::ChainModule& m) {
  const char* name = m.name != nullptr ? m.name : "";
  size_t name_len = strnlen(name, kTapModuleMax + 1);
  if (name_len > kTapModuleMax) return nullptr;
  size_t h = static_cast<size_t>((m.base >> 12) % kModuleCacheSize);
  for (int i = 0; i < kModuleCacheSize; ++i) {
    ModuleEntry& e = g_modules[(h + i) % kModuleCacheSize];
    uint8_t s = e.state.load(std::memory_order_acquire);
    if (s == kModuleFree &&
        e.state.compare_exchange_strong(s, kModuleFilling, std::memory_order_acquire)) {
      tap::ChainModule named = m;
      named.name = name;
      FillModule(&e, named, name_len);
      e.state.store(kModuleReady, std::memory_order_release);
      return &e;
    }
    if (s == kModuleReady && e.base == m.base && e.name_len == name_len &&
        memcmp(e.name, name, name_len) == 0) {
      return &e;
    }
  }
  return nullptr;
}

bool DladdrLookup(void*, uintptr_t pc, tap::ChainModule* out) {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(pc), &info) == 0 || info.dli_fbase == nullptr) return false;
  out->base = reinterpret_cast<uintptr_t>(info.dli_fbase);
  out->name = info.dli_fname;
  return true;
}

constexpr int kMaxFrames = 64;
struct Walk {
  uintptr_t pcs[kMaxFrames];
  int n;
  int max;
};

_Unwind_Reason_Code WalkFrame(_Unwind_Context* ctx, void* arg) {
  auto* w = static_cast<Walk*>(arg);
  uintptr_t ip = _Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  w->pcs[w->n++] = ip - 1;  // inside the call instruction, not after it
  return w->n >= w->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

// fork() fence for the loader: a child forked while another thread of the
// parent is inside dladdr/the unwinder/dl_iterate_phdr would inherit the
// loader's lock held and hang on its first attribution. The prepare handler
// waits (bounded) for our own loader calls to finish and keeps new ones out
// until fork returns; an attribution attempted meanwhile is skipped (empty
// chain), never blocked.
bool EnterDl() {
  if (g_forking.load()) return false;
  g_dl_users.fetch_add(1);
  if (g_forking.load()) {
    g_dl_users.fetch_sub(1);
    return false;
  }
  return true;
}

void LeaveDl() { g_dl_users.fetch_sub(1); }

void AtForkPrepare() {
  g_forking.store(true);
  for (int i = 0; i < 200000 && g_dl_users.load() != 0; ++i) sched_yield();
}

void AtForkParent() { g_forking.store(false); }

void FillChainUnfenced(void* caller, agent::TapWireChain* chain) {
  Walk w;
  w.n = 0;
  w.max = g_stack_depth;
  _Unwind_Backtrace(WalkFrame, &w);
  const uintptr_t tap = reinterpret_cast<uintptr_t>(g_tap_base);
  tap::ChainModule mods[agent::kTapChainMax];
  size_t n = tap::BuildCallChain(w.pcs, static_cast<size_t>(w.n), DladdrLookup, nullptr, tap, mods,
                                 agent::kTapChainMax);
  if (n == 0 && caller != nullptr) {  // no unwind info: at least the direct caller
    uintptr_t pc = reinterpret_cast<uintptr_t>(caller) - 1;
    n = tap::BuildCallChain(&pc, 1, DladdrLookup, nullptr, tap, mods, agent::kTapChainMax);
  }
  for (size_t i = 0; i < n; ++i) {
    const ModuleEntry* e = CachedModule(mods[i]);
    const char* path = nullptr;
    size_t path_len = 0;
    if (e != nullptr) {
      path = e->path;
      path_len = e->path_len;
    } else {  // table full or name too long: dladdr's name, no build id
      path = mods[i].base == reinterpret_cast<uintptr_t>(g_main_base) || mods[i].name == nullptr
                 ? g_exe
                 : mods[i].name;
      path_len = strnlen(path, kTapModuleMax);
    }
    if (path_len == 0) continue;  // nothing to name it by (e.g. /proc unreadable)
    const uint8_t* build_id = e != nullptr ? e->build_id : nullptr;
    if (!agent::AppendTapChain(chain, path, path_len, build_id,
                               e != nullptr ? e->build_id_len : 0)) {
      break;  // path area full: keep the inner part
    }
  }
}

// Only called when there is something to report: the walk costs a few µs.
// `chain` must be zeroed; it stays empty inside the fork window.
void FillChain(void* caller, agent::TapWireChain* chain) {
  if (!EnterDl()) return;
  FillChainUnfenced(caller, chain);
  LeaveDl();
}

// Constructor only: caches every module loaded at start-up (dladdr on an
// address of each gives the same key as a later lookup), so that hooks do
// the work only for modules dlopen'ed afterwards.
int CacheLoadedModule(dl_phdr_info* info, size_t, void*) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    tap::ChainModule m;
    uintptr_t pc = info->dlpi_addr + ph.p_vaddr;
    if (DladdrLookup(nullptr, pc, &m) && m.base != reinterpret_cast<uintptr_t>(g_tap_base)) {
      m.pc = pc;
      CachedModule(m);
    }
    break;
  }
  return 0;
}

// Executable of the process at the other end of a unix socket.
uint16_t PeerExe(int fd, char* out) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0) return 0;
  char link[64];
  snprintf(link, sizeof(link), "/proc/%d/exe", static_cast<int>(cred.pid));
  ssize_t n = readlink(link, out, kTapPeerMax);
  return n > 0 ? static_cast<uint16_t>(n) : 0;
}

// ---------------------------------------------------------------------------
// Protocol awareness: agent/tap/http_parse.h (HTTP/1 headers, TLS SNI).

void RememberSni(int fd, const char* data, size_t n) {
  if (fd < 0 || fd >= kFdTableSize || n < 6 || data[0] != 0x16) return;
  char name[kFdNameMax];
  size_t len = tap::ParseSni(data, n, name, kFdNameMax - 1);
  if (len == 0) return;
  memcpy(g_fd_name[fd], name, len);
  g_fd_name_len[fd].store(static_cast<uint8_t>(len), std::memory_order_release);
}

// ---------------------------------------------------------------------------
// Matching and events.

bool Ready() { return g_state.load(std::memory_order_acquire) == kReady; }
bool Active() { return Ready() && g_db != nullptr; }

constexpr int kMaxMatchesPerCall = 16;
struct MatchSet {
  int count;
  uint32_t id[kMaxMatchesPerCall];
  uint64_t from[kMaxMatchesPerCall];
  uint64_t to[kMaxMatchesPerCall];
};

void AddMatch(MatchSet* m, unsigned int id, uint64_t from, uint64_t to) {
  for (int i = 0; i < m->count; ++i) {
    if (m->id[i] == id) return;  // one event per (pattern, call)
  }
  if (m->count == kMaxMatchesPerCall) return;
  m->id[m->count] = id;
  m->from[m->count] = from;
  m->to[m->count] = to;
  ++m->count;
}

int OnMatch(unsigned int id, unsigned long long from, unsigned long long to, unsigned int,
            void* ctx) {
  AddMatch(static_cast<MatchSet*>(ctx), id, from, to);
  return 0;
}

// Scan of carry + new bytes: matches that end inside the carry were reported
// by the previous call; those that straddle the boundary are split matches.
struct JointMatches {
  size_t boundary;  // carry length
  bool want_main;   // the joint buffer holds all the new bytes
  MatchSet split;
  MatchSet main;  // offsets relative to the joint buffer
};

int OnJointMatch(unsigned int id, unsigned long long from, unsigned long long to, unsigned int,
                 void* ctx) {
  auto* j = static_cast<JointMatches*>(ctx);
  if (to <= j->boundary) return 0;
  if (from < j->boundary) {
    AddMatch(&j->split, id, from, to);
  } else if (j->want_main) {
    AddMatch(&j->main, id, from, to);
  }
  return 0;
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

// What a hooked call is about.
struct Call {
  int fd;
  uint8_t kind;
  uint8_t tls_channel;  // 0 for plain sockets, else kTapChannelTls*
  const sockaddr* dest;
  socklen_t dest_len;
  void* caller;
};

// Fills the fields every event and cookie of one call share.
void FillCommon(const Call& c, const char* data, size_t n, TapWireEvent* ev) {
  memset(ev, 0, sizeof(*ev));
  agent::FillTapHeader(&ev->header, agent::kTapMsgEvent, sizeof(*ev));
  ev->timestamp_ms = static_cast<uint64_t>(NowMs(CLOCK_REALTIME));
  ev->pid = static_cast<uint32_t>(getpid());
  ev->tid = static_cast<uint32_t>(syscall(SYS_gettid));
  ev->action = agent::kTapActionTransmit;
  ev->channel = ChannelOf(c.kind, c.tls_channel);
  Destination(c.fd, c.dest, c.dest_len, &ev->family, ev->addr, &ev->port);
  // Name: HTTP Host, else TLS SNI seen on this fd, else what the resolver said.
  ev->host_len =
      data != nullptr ? static_cast<uint16_t>(tap::HttpHost(data, n, ev->host, kTapHostMax)) : 0;
  if (ev->host_len == 0 && c.fd >= 0 && c.fd < kFdTableSize) {
    uint8_t len = g_fd_name_len[c.fd].load(std::memory_order_acquire);
    memcpy(ev->host, g_fd_name[c.fd], len);
    ev->host_len = len;
  }
  if (ev->host_len == 0) ev->host_len = LookupName(ev->family, ev->addr, ev->host);
  FillChain(c.caller, &ev->chain);
  if (c.kind == kFdUnix || c.kind == kFdUnixStream) ev->peer_len = PeerExe(c.fd, ev->peer);
}

void SendMatch(TapWireEvent* ev, const char* data, size_t n, uint32_t id, uint64_t from,
               uint64_t to, uint64_t offset, bool split) {
  uint64_t len = to - from;
  // A 64-byte window centred on the match, clamped to the scanned bytes.
  uint64_t start = 0;
  if (len < kTapContextMax) {
    uint64_t pad = (kTapContextMax - len) / 2;
    start = from > pad ? from - pad : 0;
    if (start + kTapContextMax > n) start = n > kTapContextMax ? n - kTapContextMax : 0;
  } else {
    start = from;
  }
  uint64_t ctx_len = n - start < kTapContextMax ? n - start : kTapContextMax;
  memcpy(ev->context, data + start, ctx_len);
  memset(ev->context + ctx_len, 0, kTapContextMax - ctx_len);
  ev->context_len = static_cast<uint16_t>(ctx_len);
  ev->context_offset = static_cast<uint32_t>(from - start);
  ev->pattern_id = id;
  ev->offset = offset;
  ev->flags = split ? agent::kTapEventSplit : 0;
  if (split) g_split_matches.fetch_add(1, std::memory_order_relaxed);
  SendToAgent(ev, sizeof(*ev));
}

// One cookie message from the common fields of `ev`.
void SendCookie(const TapWireEvent& ev, uint8_t direction, const char* name, size_t name_len,
                uint8_t flags, int64_t max_age, const char* domain, size_t domain_len) {
  TapWireCookie c;
  memset(&c, 0, sizeof(c));
  agent::FillTapHeader(&c.header, agent::kTapMsgCookie, sizeof(c));
  c.timestamp_ms = ev.timestamp_ms;
  c.pid = ev.pid;
  c.tid = ev.tid;
  c.direction = direction;
  c.channel = ev.channel;
  c.family = ev.family;
  memcpy(c.addr, ev.addr, 16);
  c.port = ev.port;
  c.host_len = ev.host_len;
  memcpy(c.host, ev.host, ev.host_len);
  c.chain = ev.chain;
  if (name_len > agent::kTapCookieNameMax) name_len = agent::kTapCookieNameMax;
  c.name_len = static_cast<uint16_t>(name_len);
  memcpy(c.name, name, name_len);
  if (domain_len > agent::kTapCookieDomainMax) domain_len = 0;
  c.domain_len = static_cast<uint16_t>(domain_len);
  memcpy(c.domain, domain, domain_len);
  c.flags = flags;
  c.max_age_seconds = max_age;
  g_cookies.fetch_add(1, std::memory_order_relaxed);
  SendToAgent(&c, sizeof(c));
}

constexpr int kMaxCookiesPerCall = 16;

// Cookie names of an outgoing HTTP request ("Cookie: a=1; b=2"), from every
// Cookie header of the header block.
void ReportRequestCookies(const Call& c, const char* data, size_t n, TapWireEvent* ev,
                          bool* common_ready) {
  const tap::HttpHeaders headers = tap::ParseHeaderBlock(data, n);
  int sent = 0;
  size_t from = 0;
  const char* v = nullptr;
  size_t len = 0;
  while (sent < kMaxCookiesPerCall && tap::FindHeader(headers, from, "cookie", &v, &len, &from)) {
    size_t pos = 0;
    const char* name = nullptr;
    size_t name_len = 0;
    while (sent < kMaxCookiesPerCall && tap::NextRequestCookie(v, len, &pos, &name, &name_len)) {
      if (!*common_ready) {
        FillCommon(c, data, n, ev);
        *common_ready = true;
      }
      SendCookie(*ev, agent::kTapCookieOut, name, name_len, 0, 0, nullptr, 0);
      ++sent;
    }
  }
}

// Set-Cookie headers of an HTTP response, one header line at a time
// (tap/sniff/http1.h FeedResponseLines).
struct IncomingCookies {
  const Call* call;
  int64_t now_s;
  int sent;
  bool common_ready;
  TapWireEvent ev;
};

void OnResponseLine(void* ctx, const char* line, size_t line_len) {
  auto* in = static_cast<IncomingCookies*>(ctx);
  const char* v = nullptr;
  size_t len = 0;
  if (in->sent >= kMaxCookiesPerCall ||
      !tap::HeaderLineValue(line, line_len, "set-cookie", &v, &len)) {
    return;
  }
  tap::SetCookie sc;
  if (!tap::ParseSetCookie(v, len, in->now_s, &sc)) return;
  uint8_t flags = sc.has_max_age ? agent::kTapCookieHasMaxAge : agent::kTapCookieSession;
  if (!in->common_ready) {
    FillCommon(*in->call, nullptr, 0, &in->ev);
    in->common_ready = true;
  }
  SendCookie(in->ev, agent::kTapCookieIn, sc.name, sc.name_len, flags, sc.max_age, sc.domain,
             sc.domain_len);
  ++in->sent;
}

// One read of a stream that begins an HTTP response or continues one whose
// header block did not end in an earlier read (the stream's response carry).
// Without a carry (pool exhausted, fd unknown) the read is parsed alone.
void OnIncoming(const Call& c, const char* data, size_t n) {
  IncomingCookies in;
  in.call = &c;
  in.now_s = NowMs(CLOCK_REALTIME) / 1000;
  in.sent = 0;
  in.common_ready = false;
  const int tls = c.tls_channel != 0 ? 1 : 0;
  auto* slot = g_responses.Lock(c.fd, tls, /*claim=*/tap::IsHttpResponse(data, n));
  if (slot == nullptr) {
    tap::ResponseLines alone;
    tap::FeedResponseLines(&alone, nullptr, data, n, OnResponseLine, &in);
    return;
  }
  ResponseCarry& r = slot->payload;
  if (tap::IsHttpResponse(data, n)) r.Reset();  // a new response on the stream
  bool more = tap::FeedResponseLines(&r.lines, r.line, data, n, OnResponseLine, &in);
  g_responses.Unlock(slot);
  if (!more) g_responses.Release(c.fd, tls);
}

// Scans what a hooked call actually sent (n contiguous bytes) and reports.
void ScanOutgoing(const Call& c, const char* data, size_t n) {
  if (n == 0 || !EnsureThreadResources()) return;
  if (c.tls_channel == 0 && c.kind == kFdTcp) RememberSni(c.fd, data, n);
  bool capped = false;
  if (n > g_scan_cap) {
    n = g_scan_cap;
    capped = true;
    g_cap_hits.fetch_add(1, std::memory_order_relaxed);
  }
  g_calls_scanned.fetch_add(1, std::memory_order_relaxed);
  g_bytes_scanned.fetch_add(n, std::memory_order_relaxed);

  bool stream = c.kind == kFdTcp || c.kind == kFdUnixStream;
  CarrySlot* slot = nullptr;
  if (stream) {
    slot = g_carry.Lock(c.fd, c.tls_channel != 0 ? 1 : 0, /*claim=*/true);
    if (slot == nullptr) g_stream_fallbacks.fetch_add(1, std::memory_order_relaxed);
  }
  SendCarry* carry = slot != nullptr ? &slot->payload : nullptr;
  char joint[2 * kCarryMax];
  size_t joint_len = 0;
  JointMatches jm;
  jm.split.count = 0;
  jm.main.count = 0;
  jm.boundary = 0;
  jm.want_main = false;
  MatchSet main;
  main.count = 0;
  bool main_in_joint = false;
  if (carry != nullptr && carry->len > 0) {
    size_t take = n < kCarryMax ? n : kCarryMax;
    memcpy(joint, carry->bytes, carry->len);
    memcpy(joint + carry->len, data, take);
    joint_len = carry->len + take;
    jm.boundary = carry->len;
    jm.want_main = take == n;  // small call: one scan covers everything
    main_in_joint = jm.want_main;
    hs_scan(g_db, joint, static_cast<unsigned int>(joint_len), 0, t_scratch, OnJointMatch, &jm);
  }
  if (!main_in_joint) {
    hs_scan(g_db, data, static_cast<unsigned int>(n), 0, t_scratch, OnMatch, &main);
  }
  if (carry != nullptr) {
    // Keep the last kCarryMax bytes of (carry + data) for the next call.
    if (capped) {
      carry->len = 0;  // the bytes past the cap were not looked at
    } else if (n >= kCarryMax) {
      memcpy(carry->bytes, data + n - kCarryMax, kCarryMax);
      carry->len = kCarryMax;
    } else {
      size_t keep_old = carry->len + n > kCarryMax ? kCarryMax - n : carry->len;
      memmove(carry->bytes, carry->bytes + carry->len - keep_old, keep_old);
      memcpy(carry->bytes + keep_old, data, n);
      carry->len = static_cast<uint16_t>(keep_old + n);
    }
    g_carry.Unlock(slot);
  }

  bool http_request = (c.tls_channel != 0 || c.kind == kFdTcp) && tap::IsHttpRequest(data, n);
  int total = jm.split.count + jm.main.count + main.count;
  if (total == 0 && !http_request) return;

  // Only now pay for verifying the cached kind (an fd closed behind our back,
  // e.g. by fclose, and reused).
  if (c.fd >= 0 && c.fd < kFdTableSize && c.tls_channel == 0 && ClassifySlow(c.fd) != c.kind) {
    ResetFd(c.fd);
    return;
  }
  TapWireEvent ev;
  bool common_ready = false;
  if (total > 0) {
    FillCommon(c, data, n, &ev);
    common_ready = true;
    for (int i = 0; i < jm.split.count; ++i) {
      SendMatch(&ev, joint, joint_len, jm.split.id[i], jm.split.from[i], jm.split.to[i], 0, true);
    }
    for (int i = 0; i < jm.main.count; ++i) {
      SendMatch(&ev, joint, joint_len, jm.main.id[i], jm.main.from[i], jm.main.to[i],
                jm.main.from[i] - jm.boundary, false);
    }
    for (int i = 0; i < main.count; ++i) {
      SendMatch(&ev, data, n, main.id[i], main.from[i], main.to[i], main.from[i], false);
    }
  }
  if (http_request) ReportRequestCookies(c, data, n, &ev, &common_ready);
}

// Gathers an iovec (up to the cap) and scans it.
void ScanIov(const Call& c, const iovec* iov, size_t iovcnt, size_t sent) {
  if (sent == 0 || iov == nullptr || iovcnt == 0) return;
  if (iov[0].iov_len >= sent || iovcnt == 1) {
    size_t n = iov[0].iov_len < sent ? iov[0].iov_len : sent;
    ScanOutgoing(c, static_cast<const char*>(iov[0].iov_base), n);
    return;
  }
  if (!EnsureThreadResources()) return;
  size_t want = sent < g_scan_cap ? sent : g_scan_cap;
  size_t copied = 0;
  for (size_t i = 0; i < iovcnt && copied < want; ++i) {
    size_t take = iov[i].iov_len < want - copied ? iov[i].iov_len : want - copied;
    if (take > 0) memcpy(t_gather + copied, iov[i].iov_base, take);
    copied += take;
  }
  if (sent > g_scan_cap) g_cap_hits.fetch_add(1, std::memory_order_relaxed);
  ScanOutgoing(c, t_gather, copied);
}

// An identifier read from the system (sysfs file, ioctl, getifaddrs), given
// as text in its canonical form.
void OnAcquire(uint8_t channel, const char* text, size_t n, void* caller) {
  if (n == 0 || !EnsureThreadResources()) return;
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
    g_acquisitions.fetch_add(1, std::memory_order_relaxed);
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

bool IsWatchedPath(const char* path) {
  if (path == nullptr || strncmp(path, "/sys/", 5) != 0) return false;
  size_t n = strnlen(path, PATH_MAX);
  return n > 8 && strcmp(path + n - 8, "/address") == 0;
}

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

// ---------------------------------------------------------------------------
// Init / fini.

size_t EnvSize(const char* name, size_t def, size_t lo, size_t hi) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return def;
  char* end = nullptr;
  unsigned long long x = strtoull(v, &end, 10);
  if (end == v || *end != '\0') return def;
  if (x < lo) return lo;
  if (x > hi) return hi;
  return static_cast<size_t>(x);
}

// Resolves every real function while the process is still single-threaded
// (constructor): a lazy dlsym in a hook could hold the loader lock across
// another thread's fork(). TLS libraries loaded later resolve on first use.
void ResolveAll() {
  Real(g_connect, "connect");
  Real(g_send, "send");
  Real(g_sendto, "sendto");
  Real(g_sendmsg, "sendmsg");
  Real(g_sendmmsg, "sendmmsg");
  Real(g_write, "write");
  Real(g_writev, "writev");
  Real(g_close, "close");
  Real(g_dup2, "dup2");
  Real(g_dup3, "dup3");
  Real(g_socket, "socket");
  Real(g_accept, "accept");
  Real(g_accept4, "accept4");
  Real(g_recv, "recv");
  Real(g_recvfrom, "recvfrom");
  Real(g_recvmsg, "recvmsg");
  Real(g_read, "read");
  Real(g_read_chk, "__read_chk");
  Real(g_recv_chk, "__recv_chk");
  Real(g_recvfrom_chk, "__recvfrom_chk");
  Real(g_open, "open");
  Real(g_open64, "open64");
  Real(g_openat, "openat");
  Real(g_openat64, "openat64");
  Real(g_open_2, "__open_2");
  Real(g_open64_2, "__open64_2");
  Real(g_openat_2, "__openat_2");
  Real(g_openat64_2, "__openat64_2");
  Real(g_fopen, "fopen");
  Real(g_fopen64, "fopen64");
  Real(g_ioctl, "ioctl");
  Real(g_getifaddrs, "getifaddrs");
  Real(g_getaddrinfo, "getaddrinfo");
}

void Init() {
  Guard guard;
  ResolveAll();
  TapBase();
  const char* dbg = getenv("IDFLOW_TAP_DEBUG");
  g_debug = dbg != nullptr && *dbg != '\0' && strcmp(dbg, "0") != 0;
  const char* path = getenv("IDFLOW_SOCKET");
  if (path == nullptr || *path == '\0') {
    Debug("IDFLOW_SOCKET not set: disabled");
    g_state.store(kDisabled);
    return;
  }
  if (strlen(path) >= sizeof(g_socket_path)) {
    Debug("IDFLOW_SOCKET path too long: disabled");
    g_state.store(kDisabled);
    return;
  }
  memcpy(g_socket_path, path, strlen(path) + 1);
  g_timeout_ms = static_cast<int>(EnvSize("IDFLOW_TAP_TIMEOUT_MS", 2000, 0, 60000));
  g_scan_cap = EnvSize("IDFLOW_TAP_SCAN_CAP", 64 * 1024, 64, 16 * 1024 * 1024);
  g_stack_depth = static_cast<int>(EnvSize("IDFLOW_TAP_STACK_DEPTH", 32, 1, kMaxFrames));
  size_t slots = EnvSize("IDFLOW_TAP_RING_SLOTS", agent::kTapRingDefaultSlots,
                         agent::kTapRingMinSlots, agent::kTapRingMaxSlots);
  while ((slots & (slots - 1)) != 0) slots &= slots - 1;  // round down to a power of two
  g_ring_slots = static_cast<uint32_t>(slots);

  ssize_t n = readlink("/proc/self/exe", g_exe, sizeof(g_exe) - 1);
  g_exe[n > 0 ? n : 0] = '\0';
  Dl_info info;
  void* entry = reinterpret_cast<void*>(getauxval(AT_ENTRY));
  if (entry != nullptr && dladdr(entry, &info) != 0) g_main_base = info.dli_fbase;
  // Cache the modules loaded now, and prime the unwinder (it allocates on
  // first use), outside any hook.
  dl_iterate_phdr(CacheLoadedModule, nullptr);
  agent::TapWireChain primer;
  memset(&primer, 0, sizeof(primer));
  FillChain(nullptr, &primer);

  int64_t deadline = NowMs(CLOCK_MONOTONIC) + g_timeout_ms;
  // Without a ring (no memfd here) events go over the socket, best effort.
  g_ring_mode = CreateRing();
  if (!g_ring_mode) Debug("no event ring (memfd): sending events on the socket");
  int fd = ConnectAgent(/*want_patterns=*/true, deadline);
  if (fd < 0) {
    Debug("cannot connect to the agent: disabled");
    SayUnreachable("cannot reach idflow-agent: this process is NOT observed");
    DestroyRing();
    g_state.store(kDisabled);
    return;
  }
  if (!ReceivePatterns(fd, deadline)) {
    Debug("no usable pattern database from the agent: disabled");
    SayUnreachable(
        "no pattern database from idflow-agent (refused or not answering): this process is NOT "
        "observed");
    DestroyRing();
    ResetFd(fd);
    RealClose(fd);
    g_state.store(kDisabled);
    return;
  }
  g_thread_key_ok = pthread_key_create(&g_thread_key, FreeThreadResources) == 0;
  pthread_atfork(AtForkPrepare, AtForkParent, AtForkChild);
  g_agent_fd.store(fd);
  g_agent_pid.store(static_cast<int>(getpid()));
  g_state.store(kReady, std::memory_order_release);
  Debug(g_db != nullptr ? "ready" : "ready (empty pattern database)");
}

__attribute__((constructor)) void TapInit() { Init(); }

__attribute__((destructor)) void TapFini() {
  if (g_state.load() != kReady) return;
  Guard guard;
  int fd = g_agent_fd.load();
  if (fd < 0 || g_agent_pid.load() != static_cast<int>(getpid())) return;
  TapWireStats st;
  memset(&st, 0, sizeof(st));
  agent::FillTapHeader(&st.header, agent::kTapMsgStats, sizeof(st));
  st.pid = static_cast<uint32_t>(getpid());
  st.events_sent = g_events_sent.load();
  st.events_dropped = g_events_dropped.load();
  st.scan_cap_hits = g_cap_hits.load();
  st.calls_scanned = g_calls_scanned.load();
  st.bytes_scanned = g_bytes_scanned.load();
  st.split_matches = g_split_matches.load();
  st.stream_fallbacks = g_stream_fallbacks.load();
  st.acquisitions = g_acquisitions.load();
  st.cookies = g_cookies.load();
  RealSend(fd, &st, sizeof(st), MSG_DONTWAIT | MSG_NOSIGNAL);  // best effort
}

}  // namespace
}  // namespace idflow::tap_impl

// ---------------------------------------------------------------------------
// Hooks. Each calls the real function first, then looks only at the bytes it
// reports as transferred, and restores errno so the caller sees exactly the
// real result. The guard makes calls made by the tap itself (and by TLS
// libraries inside SSL_write) pass straight through.

using namespace idflow::tap_impl;  // NOLINT: hooks are C symbols

namespace {

// Runs `body` under the re-entrancy guard with errno preserved.
template <typename Body>
inline void Observe(Body&& body) {
  int saved_errno = errno;
  Guard guard;
  if (guard.entered()) body();
  errno = saved_errno;
}

bool OutgoingSocket(int fd, uint8_t* kind) {
  *kind = Classify(fd);
  return Scanned(*kind) && fd != g_agent_fd.load(std::memory_order_relaxed);
}

void Outgoing(int fd, const void* buf, size_t n, const sockaddr* dest, socklen_t dest_len,
              void* caller) {
  uint8_t kind;
  if (!OutgoingSocket(fd, &kind)) return;
  Call c{fd, kind, 0, dest, dest_len, caller};
  ScanOutgoing(c, static_cast<const char*>(buf), n);
}

void OutgoingIov(int fd, const iovec* iov, size_t iovcnt, size_t sent, const sockaddr* dest,
                 socklen_t dest_len, void* caller) {
  uint8_t kind;
  if (!OutgoingSocket(fd, &kind)) return;
  Call c{fd, kind, 0, dest, dest_len, caller};
  ScanIov(c, iov, iovcnt, sent);
}

// Receive side: only TCP (and TLS plaintext) responses are parsed: reads
// that begin one, and those of a stream whose response header block is not
// finished yet.
void Incoming(int fd, const void* buf, size_t n, uint8_t tls_channel, void* caller) {
  if (!idflow::tap::IsHttpResponse(static_cast<const char*>(buf), n) &&
      !g_responses.Has(fd, tls_channel != 0 ? 1 : 0)) {
    return;
  }
  uint8_t kind = Classify(fd);
  if (tls_channel == 0 && kind != kFdTcp) return;
  if (fd == g_agent_fd.load(std::memory_order_relaxed)) return;
  Call c{fd, kind, tls_channel, nullptr, 0, caller};
  OnIncoming(c, static_cast<const char*>(buf), n);
}

void TlsOutgoing(int fd, const void* buf, size_t n, uint8_t channel, void* caller) {
  uint8_t kind = fd >= 0 ? Classify(fd) : static_cast<uint8_t>(kFdNotScanned);
  Call c{fd, kind, channel, nullptr, 0, caller};
  ScanOutgoing(c, static_cast<const char*>(buf), n);
}

// Last socket this thread wrote to or read from: the transport of a TLS
// session whose BIO hides the fd (curl's own BIO: SSL_get_fd() is -1).
IDFLOW_TLS int t_last_sock = -1;

int TransportFd(int fd) {
  if (fd >= 0) return fd;
  fd = t_last_sock;
  return fd >= 0 && Classify(fd) == kFdTcp ? fd : -1;
}

int SslFd(void* ssl) {
  SslGetFdFn f = RealTls(g_ssl_get_fd, "SSL_get_fd");
  return TransportFd(f != nullptr ? f(ssl) : -1);
}

int GnutlsFd(void* session) {
  GnutlsGetIntFn f = RealTls(g_gnutls_get_int, "gnutls_transport_get_int");
  return TransportFd(f != nullptr ? f(session) : -1);
}

}  // namespace

#define IDFLOW_CALLER __builtin_return_address(0)

IDFLOW_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
  int r = RealConnect(fd, addr, len);
  if (r == 0 || errno == EINPROGRESS) {
    int saved_errno = errno;
    RememberDest(fd, addr, len);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT ssize_t send(int fd, const void* buf, size_t len, int flags) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealSend(fd, buf, len, flags);
  t_last_sock = fd;
  if (r > 0 && Active()) Observe([&] { Outgoing(fd, buf, r, nullptr, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* addr,
                             socklen_t addr_len) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealSendto(fd, buf, len, flags, addr, addr_len);
  t_last_sock = fd;
  if (r > 0 && Active()) Observe([&] { Outgoing(fd, buf, r, addr, addr_len, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealSendmsg(fd, msg, flags);
  t_last_sock = fd;
  if (r > 0 && Active()) {
    Observe([&] {
      OutgoingIov(fd, msg->msg_iov, msg->msg_iovlen, static_cast<size_t>(r),
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
        OutgoingIov(fd, m.msg_iov, m.msg_iovlen, vec[i].msg_len,
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
  if (r > 0 && Active()) Observe([&] { Outgoing(fd, buf, r, nullptr, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t writev(int fd, const iovec* iov, int iovcnt) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealWritev(fd, iov, iovcnt);
  t_last_sock = fd;
  if (r > 0 && Active()) {
    Observe([&] { OutgoingIov(fd, iov, static_cast<size_t>(iovcnt), r, nullptr, 0, caller); });
  }
  return r;
}

// ---- receive side (HTTP responses: Set-Cookie)

IDFLOW_EXPORT ssize_t recv(int fd, void* buf, size_t len, int flags) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealRecv(fd, buf, len, flags);
  t_last_sock = fd;
  if (r > 0 && Ready()) Observe([&] { Incoming(fd, buf, r, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* addr,
                               socklen_t* addr_len) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealRecvfrom(fd, buf, len, flags, addr, addr_len);
  t_last_sock = fd;
  if (r > 0 && Ready()) Observe([&] { Incoming(fd, buf, r, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealRecvmsg(fd, msg, flags);
  if (r > 0 && Ready() && msg->msg_iovlen > 0) {
    size_t n = msg->msg_iov[0].iov_len < static_cast<size_t>(r) ? msg->msg_iov[0].iov_len : r;
    Observe([&] { Incoming(fd, msg->msg_iov[0].iov_base, n, 0, caller); });
  }
  return r;
}

IDFLOW_EXPORT ssize_t read(int fd, void* buf, size_t len) {
  void* caller = IDFLOW_CALLER;
  ssize_t r = RealRead(fd, buf, len);
  t_last_sock = fd;
  if (r > 0 && Ready()) Observe([&] { Incoming(fd, buf, r, 0, caller); });
  return r;
}

// _FORTIFY_SOURCE variants: programs built with it call these instead.
IDFLOW_EXPORT ssize_t __read_chk(int fd, void* buf, size_t len, size_t buflen) {
  void* caller = IDFLOW_CALLER;
  ReadChkFn f = Real(g_read_chk, "__read_chk");
  ssize_t r = f != nullptr ? f(fd, buf, len, buflen) : RealRead(fd, buf, len);
  if (r > 0 && Ready()) Observe([&] { Incoming(fd, buf, r, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) {
  void* caller = IDFLOW_CALLER;
  RecvChkFn f = Real(g_recv_chk, "__recv_chk");
  ssize_t r = f != nullptr ? f(fd, buf, len, buflen, flags) : RealRecv(fd, buf, len, flags);
  if (r > 0 && Ready()) Observe([&] { Incoming(fd, buf, r, 0, caller); });
  return r;
}

IDFLOW_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t len, size_t buflen, int flags,
                                     sockaddr* addr, socklen_t* addr_len) {
  void* caller = IDFLOW_CALLER;
  RecvfromChkFn f = Real(g_recvfrom_chk, "__recvfrom_chk");
  ssize_t r = f != nullptr ? f(fd, buf, len, buflen, flags, addr, addr_len)
                           : RealRecvfrom(fd, buf, len, flags, addr, addr_len);
  if (r > 0 && Ready()) Observe([&] { Incoming(fd, buf, r, 0, caller); });
  return r;
}

// ---- TLS plaintext. The guard spans the real call: the library's own
// socket writes carry ciphertext and are not scanned twice.

IDFLOW_EXPORT int SSL_write(void* ssl, const void* buf, int num) {
  void* caller = IDFLOW_CALLER;
  SslWriteFn f = RealTls(g_ssl_write, "SSL_write");
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num);
  if (r > 0 && guard.entered() && Active()) {
    int saved_errno = errno;
    TlsOutgoing(SslFd(ssl), buf, static_cast<size_t>(r), idflow::agent::kTapChannelTlsOpenssl,
                caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int SSL_write_ex(void* ssl, const void* buf, size_t num, size_t* written) {
  void* caller = IDFLOW_CALLER;
  SslWriteExFn f = RealTls(g_ssl_write_ex, "SSL_write_ex");
  if (f == nullptr) return 0;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num, written);
  if (r == 1 && written != nullptr && *written > 0 && guard.entered() && Active()) {
    int saved_errno = errno;
    TlsOutgoing(SslFd(ssl), buf, *written, idflow::agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int SSL_read(void* ssl, void* buf, int num) {
  void* caller = IDFLOW_CALLER;
  SslReadFn f = RealTls(g_ssl_read, "SSL_read");
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num);
  if (r > 0 && guard.entered() && Ready()) {
    int saved_errno = errno;
    Incoming(SslFd(ssl), buf, static_cast<size_t>(r), idflow::agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int SSL_read_ex(void* ssl, void* buf, size_t num, size_t* read_bytes) {
  void* caller = IDFLOW_CALLER;
  SslReadExFn f = RealTls(g_ssl_read_ex, "SSL_read_ex");
  if (f == nullptr) return 0;
  Guard guard;
  t_last_sock = -1;
  int r = f(ssl, buf, num, read_bytes);
  if (r == 1 && read_bytes != nullptr && *read_bytes > 0 && guard.entered() && Ready()) {
    int saved_errno = errno;
    Incoming(SslFd(ssl), buf, *read_bytes, idflow::agent::kTapChannelTlsOpenssl, caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT ssize_t gnutls_record_send(void* session, const void* buf, size_t n) {
  void* caller = IDFLOW_CALLER;
  GnutlsSendFn f = RealTls(g_gnutls_send, "gnutls_record_send");
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  ssize_t r = f(session, buf, n);
  if (r > 0 && guard.entered() && Active()) {
    int saved_errno = errno;
    TlsOutgoing(GnutlsFd(session), buf, static_cast<size_t>(r), idflow::agent::kTapChannelTlsGnutls,
                caller);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT ssize_t gnutls_record_recv(void* session, void* buf, size_t n) {
  void* caller = IDFLOW_CALLER;
  GnutlsRecvFn f = RealTls(g_gnutls_recv, "gnutls_record_recv");
  if (f == nullptr) return -1;
  Guard guard;
  t_last_sock = -1;
  ssize_t r = f(session, buf, n);
  if (r > 0 && guard.entered() && Ready()) {
    int saved_errno = errno;
    Incoming(GnutlsFd(session), buf, static_cast<size_t>(r), idflow::agent::kTapChannelTlsGnutls,
             caller);
    errno = saved_errno;
  }
  return r;
}

// ---- name resolution

IDFLOW_EXPORT int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                              addrinfo** res) {
  GetaddrinfoFn f = Real(g_getaddrinfo, "getaddrinfo");
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

// ---- acquisition: sysfs address files, SIOCGIFHWADDR, HCI, getifaddrs

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

IDFLOW_OPEN_HOOK(open, g_open)
IDFLOW_OPEN_HOOK(open64, g_open64)
IDFLOW_OPENAT_HOOK(openat, g_openat)
IDFLOW_OPENAT_HOOK(openat64, g_openat64)

IDFLOW_EXPORT int __open_2(const char* path, int flags) {
  void* caller = IDFLOW_CALLER;
  Open2Fn f = Real(g_open_2, "__open_2");
  int fd = f != nullptr ? f(path, flags) : RealOpenMode(g_open, "open", path, flags, 0);
  Opened(fd, path, caller);
  return fd;
}

IDFLOW_EXPORT int __open64_2(const char* path, int flags) {
  void* caller = IDFLOW_CALLER;
  Open2Fn f = Real(g_open64_2, "__open64_2");
  int fd = f != nullptr ? f(path, flags) : RealOpenMode(g_open, "open", path, flags, 0);
  Opened(fd, path, caller);
  return fd;
}

IDFLOW_EXPORT int __openat_2(int dirfd, const char* path, int flags) {
  void* caller = IDFLOW_CALLER;
  Openat2Fn f = Real(g_openat_2, "__openat_2");
  int fd = f != nullptr ? f(dirfd, path, flags)
                        : RealOpenatMode(g_openat, "openat", dirfd, path, flags, 0);
  Opened(fd, path, caller);
  return fd;
}

IDFLOW_EXPORT int __openat64_2(int dirfd, const char* path, int flags) {
  void* caller = IDFLOW_CALLER;
  Openat2Fn f = Real(g_openat64_2, "__openat64_2");
  int fd = f != nullptr ? f(dirfd, path, flags)
                        : RealOpenatMode(g_openat, "openat", dirfd, path, flags, 0);
  Opened(fd, path, caller);
  return fd;
}

// stdio opens through libc-internal calls we do not see: hook fopen itself.
IDFLOW_EXPORT FILE* fopen(const char* path, const char* mode) {
  void* caller = IDFLOW_CALLER;
  FopenFn f = Real(g_fopen, "fopen");
  if (f == nullptr) return nullptr;
  FILE* file = f(path, mode);
  if (file != nullptr) Opened(fileno(file), path, caller);
  return file;
}

IDFLOW_EXPORT FILE* fopen64(const char* path, const char* mode) {
  void* caller = IDFLOW_CALLER;
  FopenFn f = Real(g_fopen64, "fopen64");
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
  IoctlFn f = Real(g_ioctl, "ioctl");
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
      OnAcquire(idflow::agent::kTapChannelIoctl, text, 17, caller);
    });
  }
  return r;
}

IDFLOW_EXPORT int getifaddrs(ifaddrs** out) {
  void* caller = IDFLOW_CALLER;
  GetifaddrsFn f = Real(g_getifaddrs, "getifaddrs");
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
        OnAcquire(idflow::agent::kTapChannelGetifaddrs, text, 17, caller);
      }
    });
  }
  return r;
}

// ---- per-fd bookkeeping

IDFLOW_EXPORT int close(int fd) {
  ResetFd(fd);
  int expected = fd;
  if (fd >= 0) g_agent_fd.compare_exchange_strong(expected, -1);  // app closed ours
  return RealClose(fd);
}

IDFLOW_EXPORT int dup2(int old_fd, int new_fd) {
  int r = RealDup2(old_fd, new_fd);
  if (r >= 0 && old_fd != new_fd) {
    int saved_errno = errno;
    ResetFd(new_fd);
    int expected = new_fd;
    g_agent_fd.compare_exchange_strong(expected, -1);
    errno = saved_errno;
  }
  return r;
}

IDFLOW_EXPORT int dup3(int old_fd, int new_fd, int flags) {
  int r = RealDup3(old_fd, new_fd, flags);
  if (r >= 0) {
    int saved_errno = errno;
    ResetFd(new_fd);
    int expected = new_fd;
    g_agent_fd.compare_exchange_strong(expected, -1);
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

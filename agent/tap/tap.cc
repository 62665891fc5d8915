// libidflow-tap.so: LD_PRELOAD interposer that scans outgoing socket bytes for
// the device's identifiers (Vectorscan database built by the agent) and
// reports matches to idflow-agent. Fails open: if anything is missing the
// hooks are plain pass-throughs. Never changes a hooked call's result/errno.
//
// Constraints: no C++ exceptions, no RTTI, no libstdc++ runtime (no
// function-local statics, no new/delete, no iostreams). Allocation happens at
// init and once per thread (Vectorscan scratch + a gather buffer for
// writev/sendmsg); hooks themselves do not allocate.
#define IDFLOW_TAP_WIRE_ONLY
#include "agent/tap_protocol.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <hs/hs_runtime.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#define IDFLOW_EXPORT extern "C" __attribute__((visibility("default")))
#define IDFLOW_TLS __attribute__((tls_model("initial-exec"))) thread_local

namespace idflow::tap_impl {
namespace {

using agent::kTapContextMax;
using agent::kTapHostMax;
using agent::kTapMaxDatabaseBytes;
using agent::kTapMaxMessageBytes;
using agent::kTapModuleMax;
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
using WriteFn = ssize_t (*)(int, const void*, size_t);
using WritevFn = ssize_t (*)(int, const iovec*, int);
using CloseFn = int (*)(int);
using Dup2Fn = int (*)(int, int);
using Dup3Fn = int (*)(int, int, int);
using SocketFn = int (*)(int, int, int);
using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using Accept4Fn = int (*)(int, sockaddr*, socklen_t*, int);

template <typename Fn>
Fn Real(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    slot.store(fn, std::memory_order_release);
  }
  return fn;
}

std::atomic<ConnectFn> g_connect;
std::atomic<SendFn> g_send;
std::atomic<SendtoFn> g_sendto;
std::atomic<SendmsgFn> g_sendmsg;
std::atomic<WriteFn> g_write;
std::atomic<WritevFn> g_writev;
std::atomic<CloseFn> g_close;
std::atomic<Dup2Fn> g_dup2;
std::atomic<Dup3Fn> g_dup3;
std::atomic<SocketFn> g_socket;
std::atomic<AcceptFn> g_accept;
std::atomic<Accept4Fn> g_accept4;

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

// ---------------------------------------------------------------------------
// Global state.

enum State : int { kUninit = 0, kDisabled = 1, kReady = 2 };
std::atomic<int> g_state{kUninit};
bool g_debug = false;
size_t g_scan_cap = 64 * 1024;
int g_timeout_ms = 2000;
char g_socket_path[sizeof(sockaddr_un::sun_path)];
char g_exe[PATH_MAX];
void* g_main_base = nullptr;  // dli_fbase of the main executable

hs_database_t* g_db = nullptr;
hs_scratch_t* g_proto_scratch = nullptr;

std::atomic<int> g_agent_fd{-1};
std::atomic<int> g_agent_pid{0};  // process that owns g_agent_fd
std::atomic<bool> g_reconnecting{false};
constexpr int64_t kNeverMs = -1000000;
std::atomic<int64_t> g_last_reconnect_ms{kNeverMs};

std::atomic<uint64_t> g_events_sent{0}, g_events_dropped{0}, g_cap_hits{0}, g_calls_scanned{0},
    g_bytes_scanned{0};

void Debug(const char* msg) {
  if (!g_debug) return;
  char line[512];
  int n = snprintf(line, sizeof(line), "idflow-tap[%d]: %s\n", static_cast<int>(getpid()), msg);
  if (n > 0) RealWrite(2, line, static_cast<size_t>(n) < sizeof(line) ? n : sizeof(line) - 1);
}

int64_t NowMs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// ---------------------------------------------------------------------------
// Per-fd state: kind (classified once) and the address given to connect().

enum FdKind : uint8_t {
  kFdUnknown = 0,
  kFdNotScanned = 1,
  kFdTcp = 2,
  kFdUdp = 3,
  kFdUnix = 4,
  kFdOtherSocket = 5,
  kFdAgent = 6,
};
constexpr int kFdTableSize = 4096;  // larger fds are classified on every call
std::atomic<uint8_t> g_fd_kind[kFdTableSize];
// Remembered connect() destination: word 0 = valid | family << 8 | port << 16,
// words 1-2 = address. Relaxed atomics: a torn read needs concurrent connect()
// on the same fd, which would be a bug in the app anyway.
std::atomic<uint64_t> g_fd_dest[kFdTableSize][3];

void ResetFd(int fd) {
  if (fd >= 0 && fd < kFdTableSize) {
    g_fd_kind[fd].store(kFdUnknown, std::memory_order_relaxed);
    g_fd_dest[fd][0].store(0, std::memory_order_relaxed);
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
  if (domain == AF_UNIX) return kFdUnix;
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
bool FillDest(const sockaddr* addr, socklen_t len, TapWireEvent* ev) {
  if (addr == nullptr) return false;
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    ev->family = agent::kTapFamilyInet;
    memcpy(ev->addr, &in->sin_addr, 4);
    ev->port = ntohs(in->sin_port);
    return true;
  }
  if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    ev->family = agent::kTapFamilyInet6;
    memcpy(ev->addr, &in6->sin6_addr, 16);
    ev->port = ntohs(in6->sin6_port);
    return true;
  }
  if (addr->sa_family == AF_UNIX) {
    ev->family = agent::kTapFamilyUnix;
    return true;
  }
  return false;
}

void Destination(int fd, const sockaddr* explicit_dest, socklen_t explicit_len, TapWireEvent* ev) {
  if (FillDest(explicit_dest, explicit_len, ev)) return;
  sockaddr_storage peer;
  socklen_t len = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 &&
      FillDest(reinterpret_cast<sockaddr*>(&peer), len, ev)) {
    return;
  }
  if (fd < 0 || fd >= kFdTableSize) return;
  uint64_t w0 = g_fd_dest[fd][0].load(std::memory_order_relaxed);
  if ((w0 & 1) == 0) return;
  uint64_t w1 = g_fd_dest[fd][1].load(std::memory_order_relaxed);
  uint64_t w2 = g_fd_dest[fd][2].load(std::memory_order_relaxed);
  ev->family = static_cast<uint8_t>(w0 >> 8);
  ev->port = static_cast<uint16_t>(w0 >> 16);
  memcpy(ev->addr, &w1, 8);
  memcpy(ev->addr + 8, &w2, 8);
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

// Connects and sends Hello; returns the fd or -1.
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
  hello.flags = want_patterns ? agent::kTapHelloWantPatterns : 0;
  hello.exe_len = static_cast<uint16_t>(strnlen(g_exe, sizeof(hello.exe)));
  memcpy(hello.exe, g_exe, hello.exe_len);
  hello.scenarios_len =
      static_cast<uint16_t>(CopyEnv("IDFLOW_SCENARIO", hello.scenarios, sizeof(hello.scenarios)));
  hello.consents_len =
      static_cast<uint16_t>(CopyEnv("IDFLOW_CONSENT", hello.consents, sizeof(hello.consents)));
  for (;;) {
    if (RealSend(fd, &hello, sizeof(hello), MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(hello))) {
      return fd;
    }
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
    ssize_t n = recv(fd, msg, kTapMaxMessageBytes, MSG_DONTWAIT);
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
  if (now - g_last_reconnect_ms.load(std::memory_order_relaxed) < 1000) return -1;
  if (g_reconnecting.exchange(true)) return -1;
  g_last_reconnect_ms.store(now, std::memory_order_relaxed);
  int new_fd = ConnectAgent(/*want_patterns=*/false, now + 100);
  if (new_fd >= 0) {
    g_agent_fd.store(new_fd, std::memory_order_release);
    g_agent_pid.store(pid, std::memory_order_release);
  }
  g_reconnecting.store(false);
  return new_fd;
}

void AtForkChild() {
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
}

void SendToAgent(const void* msg, size_t len) {
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
// Matching and events.

constexpr int kMaxMatchesPerCall = 16;
struct MatchSet {
  int count;
  uint32_t id[kMaxMatchesPerCall];
  uint64_t from[kMaxMatchesPerCall];
  uint64_t to[kMaxMatchesPerCall];
};

int OnMatch(unsigned int id, unsigned long long from, unsigned long long to, unsigned int,
            void* ctx) {
  auto* m = static_cast<MatchSet*>(ctx);
  for (int i = 0; i < m->count; ++i) {
    if (m->id[i] == id) return 0;  // one event per (pattern, call)
  }
  if (m->count == kMaxMatchesPerCall) return 0;
  m->id[m->count] = id;
  m->from[m->count] = from;
  m->to[m->count] = to;
  ++m->count;
  return 0;
}

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Host header value if `data` looks like an HTTP/1 request.
uint16_t HttpHost(const char* data, size_t n, char* out) {
  size_t i = 0;
  while (i < n && i < 10 && data[i] >= 'A' && data[i] <= 'Z') ++i;
  if (i < 3 || i >= n || data[i] != ' ') return 0;
  static constexpr char kHost[] = "\nhost:";
  constexpr size_t kLen = sizeof(kHost) - 1;
  for (size_t p = i; p + kLen <= n; ++p) {
    size_t k = 0;
    while (k < kLen && LowerAscii(data[p + k]) == kHost[k]) ++k;
    if (k != kLen) continue;
    size_t v = p + kLen;
    while (v < n && (data[v] == ' ' || data[v] == '\t')) ++v;
    size_t len = 0;
    while (v + len < n && data[v + len] != '\r' && data[v + len] != '\n' && len < kTapHostMax) {
      ++len;
    }
    while (len > 0 && (data[v + len - 1] == ' ' || data[v + len - 1] == '\t')) --len;
    memcpy(out, data + v, len);
    return static_cast<uint16_t>(len);
  }
  return 0;
}

IDFLOW_TLS char t_realpath[PATH_MAX];

uint16_t CallerModule(void* caller, char* out) {
  Dl_info info;
  if (caller == nullptr || dladdr(caller, &info) == 0 || info.dli_fname == nullptr) return 0;
  const char* name = info.dli_fname;
  if (info.dli_fbase == g_main_base || name[0] == '\0') {
    name = g_exe;  // dladdr reports argv[0] for the main program
  } else if (name[0] != '/' && realpath(name, t_realpath) != nullptr) {
    name = t_realpath;
  }
  size_t n = strnlen(name, kTapModuleMax);
  memcpy(out, name, n);
  return static_cast<uint16_t>(n);
}

uint8_t ChannelOf(uint8_t kind) {
  switch (kind) {
    case kFdTcp:
      return agent::kTapChannelTcp;
    case kFdUdp:
      return agent::kTapChannelUdp;
    case kFdUnix:
      return agent::kTapChannelUnix;
    default:
      return agent::kTapChannelOther;
  }
}

bool Active() { return g_state.load(std::memory_order_acquire) == kReady && g_db != nullptr; }

// Scans what a hooked call actually sent (`sent` bytes of iov) and reports.
void OnOutgoing(int fd, const iovec* iov, int iovcnt, size_t sent, const sockaddr* dest,
                socklen_t dest_len, void* caller) {
  uint8_t kind = Classify(fd);
  if (kind == kFdUnknown || kind == kFdNotScanned || kind == kFdAgent) return;
  if (fd == g_agent_fd.load(std::memory_order_relaxed)) return;
  if (!EnsureThreadResources()) return;

  size_t n = sent;
  if (n > g_scan_cap) {
    n = g_scan_cap;
    g_cap_hits.fetch_add(1, std::memory_order_relaxed);
  }
  const char* data;
  if (iovcnt == 1 || (iovcnt > 0 && iov[0].iov_len >= n)) {
    data = static_cast<const char*>(iov[0].iov_base);
  } else {
    size_t copied = 0;
    for (int i = 0; i < iovcnt && copied < n; ++i) {
      size_t take = iov[i].iov_len < n - copied ? iov[i].iov_len : n - copied;
      if (take > 0) memcpy(t_gather + copied, iov[i].iov_base, take);
      copied += take;
    }
    n = copied;
    data = t_gather;
  }
  if (n == 0) return;
  g_calls_scanned.fetch_add(1, std::memory_order_relaxed);
  g_bytes_scanned.fetch_add(n, std::memory_order_relaxed);

  MatchSet matches;
  matches.count = 0;
  if (hs_scan(g_db, data, static_cast<unsigned int>(n), 0, t_scratch, OnMatch, &matches) !=
      HS_SUCCESS) {
    return;
  }
  if (matches.count == 0) return;

  // Only now pay for verifying the cached kind (an fd closed behind our back,
  // e.g. by fclose, and reused).
  if (fd < kFdTableSize && ClassifySlow(fd) != kind) {
    ResetFd(fd);
    kind = Classify(fd);
    if (kind == kFdNotScanned || kind == kFdAgent) return;
  }

  TapWireEvent ev;
  memset(&ev, 0, sizeof(ev));
  agent::FillTapHeader(&ev.header, agent::kTapMsgEvent, sizeof(ev));
  ev.timestamp_ms = static_cast<uint64_t>(NowMs(CLOCK_REALTIME));
  ev.pid = static_cast<uint32_t>(getpid());
  ev.tid = static_cast<uint32_t>(syscall(SYS_gettid));
  ev.action = agent::kTapActionTransmit;
  ev.channel = ChannelOf(kind);
  Destination(fd, dest, dest_len, &ev);
  ev.host_len = HttpHost(data, n, ev.host);
  ev.module_len = CallerModule(caller, ev.module);

  for (int i = 0; i < matches.count; ++i) {
    uint64_t from = matches.from[i], to = matches.to[i];
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
    memcpy(ev.context, data + start, ctx_len);
    memset(ev.context + ctx_len, 0, kTapContextMax - ctx_len);
    ev.context_len = static_cast<uint16_t>(ctx_len);
    ev.context_offset = static_cast<uint32_t>(from - start);
    ev.pattern_id = matches.id[i];
    ev.offset = from;
    SendToAgent(&ev, sizeof(ev));
  }
}

void ScanBuffer(int fd, const void* buf, ssize_t sent, const sockaddr* dest, socklen_t dest_len,
                void* caller) {
  iovec iov{const_cast<void*>(buf), static_cast<size_t>(sent)};
  OnOutgoing(fd, &iov, 1, static_cast<size_t>(sent), dest, dest_len, caller);
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

void Init() {
  Guard guard;
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

  ssize_t n = readlink("/proc/self/exe", g_exe, sizeof(g_exe) - 1);
  g_exe[n > 0 ? n : 0] = '\0';
  Dl_info info;
  void* entry = reinterpret_cast<void*>(getauxval(AT_ENTRY));
  if (entry != nullptr && dladdr(entry, &info) != 0) g_main_base = info.dli_fbase;

  int64_t deadline = NowMs(CLOCK_MONOTONIC) + g_timeout_ms;
  int fd = ConnectAgent(/*want_patterns=*/true, deadline);
  if (fd < 0) {
    Debug("cannot connect to the agent: disabled");
    g_state.store(kDisabled);
    return;
  }
  if (!ReceivePatterns(fd, deadline)) {
    Debug("no usable pattern database from the agent: disabled");
    ResetFd(fd);
    RealClose(fd);
    g_state.store(kDisabled);
    return;
  }
  g_thread_key_ok = pthread_key_create(&g_thread_key, FreeThreadResources) == 0;
  pthread_atfork(nullptr, nullptr, AtForkChild);
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
  RealSend(fd, &st, sizeof(st), MSG_DONTWAIT | MSG_NOSIGNAL);  // best effort
}

}  // namespace
}  // namespace idflow::tap_impl

// ---------------------------------------------------------------------------
// Hooks. Each calls the real function first, then scans only the bytes it
// reports as sent, and restores errno so the caller sees exactly the real
// result.

using namespace idflow::tap_impl;  // NOLINT: hooks are C symbols

#define IDFLOW_SCAN(fd, call_result, ...) \
  do {                                    \
    if ((call_result) > 0 && Active()) {  \
      int saved_errno = errno;            \
      Guard guard;                        \
      if (guard.entered()) __VA_ARGS__;   \
      errno = saved_errno;                \
    }                                     \
  } while (0)

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
  void* caller = __builtin_return_address(0);
  ssize_t r = RealSend(fd, buf, len, flags);
  IDFLOW_SCAN(fd, r, ScanBuffer(fd, buf, r, nullptr, 0, caller));
  return r;
}

IDFLOW_EXPORT ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* addr,
                             socklen_t addr_len) {
  void* caller = __builtin_return_address(0);
  ssize_t r = RealSendto(fd, buf, len, flags, addr, addr_len);
  IDFLOW_SCAN(fd, r, ScanBuffer(fd, buf, r, addr, addr_len, caller));
  return r;
}

IDFLOW_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  void* caller = __builtin_return_address(0);
  ssize_t r = RealSendmsg(fd, msg, flags);
  IDFLOW_SCAN(
      fd, r,
      OnOutgoing(fd, msg->msg_iov, static_cast<int>(msg->msg_iovlen), static_cast<size_t>(r),
                 static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen, caller));
  return r;
}

IDFLOW_EXPORT ssize_t write(int fd, const void* buf, size_t len) {
  void* caller = __builtin_return_address(0);
  ssize_t r = RealWrite(fd, buf, len);
  IDFLOW_SCAN(fd, r, ScanBuffer(fd, buf, r, nullptr, 0, caller));
  return r;
}

IDFLOW_EXPORT ssize_t writev(int fd, const iovec* iov, int iovcnt) {
  void* caller = __builtin_return_address(0);
  ssize_t r = RealWritev(fd, iov, iovcnt);
  IDFLOW_SCAN(fd, r, OnOutgoing(fd, iov, iovcnt, static_cast<size_t>(r), nullptr, 0, caller));
  return r;
}

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

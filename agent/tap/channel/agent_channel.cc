#include "agent/tap/channel/agent_channel.h"

#if defined(__SSE2__)
#include <emmintrin.h>  // streaming stores (x86-64); other targets use memcpy
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/tap/attribution/module_table.h"
#include "agent/tap/core/state.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/real/real_functions.h"

namespace idflow::tap {

using agent::kTapMaxDatabaseBytes;
using agent::kTapMaxMessageBytes;
using agent::TapRingHeader;
using agent::TapRingSlot;
using agent::TapWireHello;
using agent::TapWirePatternsChunk;
using agent::TapWireStats;

std::atomic<int> g_agent_fd{-1};
std::atomic<int> g_agent_pid{0};
uint32_t g_ring_slots = agent::kTapRingDefaultSlots;
bool g_ring_mode = false;

namespace {

std::atomic<bool> g_reconnecting{false};
constexpr int64_t kNeverMs = -1000000;
std::atomic<int64_t> g_last_reconnect_ms{kNeverMs};
std::atomic<TapRingHeader*> g_ring{nullptr};
std::atomic<int> g_ring_pid{0};  // process that created g_ring
// In a fork child: the parent's ring, still mapped until the child's own
// ring copied its module table.
TapRingHeader* g_parent_ring = nullptr;
int g_ring_fd = -1, g_doorbell_fd = -1;
// Liveness of the agent connection is checked at most this often.
std::atomic<int64_t> g_last_alive_check_ms{0};

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

}  // namespace

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
  // A fork child starts from its parent's module table (no loader call in
  // the child); otherwise it is read from the loader.
  TapRingHeader* parent = g_parent_ring;
  if (parent != nullptr) {
    CopyModules(parent, h);
    munmap(parent, agent::TapRingBytes(g_ring_slots));
    g_parent_ring = nullptr;
  } else {
    SyncModules(h);
  }
  g_ring_fd = fd;
  g_doorbell_fd = efd;
  g_pid = static_cast<int>(getpid());
  g_ring_pid.store(g_pid, std::memory_order_release);
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
  // g_pid, not getpid() (a system call): set at start and in a fork child.
  return h != nullptr && g_ring_pid.load(std::memory_order_acquire) == g_pid ? h : nullptr;
}

namespace {

// Copies into a slot's data area. Large parts with streaming stores: the
// agent reads them on another core, so pulling the ring's lines into this
// core's cache (and evicting the app's) only costs; RingPushParts fences
// before it publishes.
inline void CopyToRing(char* out, const char* in, size_t n) {
#if defined(__SSE2__)
  if (n >= 1024 && (reinterpret_cast<uintptr_t>(out) & 15) == 0) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
      __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
      __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i + 16));
      __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i + 32));
      __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i + 48));
      _mm_stream_si128(reinterpret_cast<__m128i*>(out + i), a);
      _mm_stream_si128(reinterpret_cast<__m128i*>(out + i + 16), b);
      _mm_stream_si128(reinterpret_cast<__m128i*>(out + i + 32), c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(out + i + 48), d);
    }
    memcpy(out + i, in + i, n - i);
    return;
  }
#endif
  memcpy(out, in, n);
}

}  // namespace

bool RingPush(TapRingHeader* h, const void* msg, size_t len) {
  RingPart part{msg, len};
  return RingPushParts(h, &part, 1);
}

// Appends one record gathered from `parts`, spanning as many slots as it
// needs; false when the ring has no room for it (never waits).
bool RingPushParts(TapRingHeader* h, const RingPart* parts, size_t nparts) {
  size_t len = 0;
  for (size_t i = 0; i < nparts; ++i) len += parts[i].len;
  if (len == 0 || len > agent::kTapRingRecordMax) return false;
  const uint64_t span = agent::TapRingSpan(len);
  const uint64_t mask = h->slot_count - 1;
  char* slots = reinterpret_cast<char*>(h) + agent::kTapRingHeaderBytes;
  auto slot = [&](uint64_t pos) {
    return reinterpret_cast<TapRingSlot*>(slots + (pos & mask) * agent::kTapRingSlotBytes);
  };
  uint64_t pos = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
  for (;;) {
    // The consumer frees in order: if the span's last slot is free for its
    // position, so are the others.
    const uint64_t last = pos + span - 1;
    const uint64_t lap = __atomic_load_n(&slot(last)->lap, __ATOMIC_ACQUIRE);
    const int64_t dif = static_cast<int64_t>(lap - (last - (last & mask)));
    if (dif == 0) {
      if (__atomic_compare_exchange_n(&h->head, &pos, pos + span, /*weak=*/true, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
        break;
      }
    } else if (dif < 0) {
      return false;  // the consumer has not released that slot: full
    } else {
      pos = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
    }
  }
  // Length first: the agent can size the span of a record whose writer died.
  __atomic_store_n(&slot(pos)->length, static_cast<uint32_t>(len), __ATOMIC_RELAXED);
  uint64_t at = pos;
  size_t room = agent::kTapRingPayloadMax;
  char* out = slot(at)->data;
  for (size_t i = 0; i < nparts; ++i) {
    const char* in = static_cast<const char*>(parts[i].data);
    size_t left = parts[i].len;
    while (left > 0) {
      if (room == 0) {
        out = slot(++at)->data;
        room = agent::kTapRingPayloadMax;
      }
      const size_t take = left < room ? left : room;
      CopyToRing(out, in, take);
      out += take;
      in += take;
      left -= take;
      room -= take;
    }
  }
#if defined(__SSE2__)
  _mm_sfence();  // the streaming stores are ordered before the commit below
#endif
  // Continuation slots committed before the first one publishes the record.
  for (uint64_t p = pos + 1; p < pos + span; ++p) {
    __atomic_store_n(&slot(p)->lap, p - (p & mask) + 1, __ATOMIC_RELAXED);
  }
  __atomic_store_n(&slot(pos)->lap, pos - (pos & mask) + 1, __ATOMIC_RELEASE);
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
  hello.run_id_len =
      static_cast<uint16_t>(CopyEnv("IDFLOW_RUN_ID", hello.run_id, sizeof(hello.run_id)));
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
        g_nothing_to_scan = true;
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
  // No wait in a hook: one attempt, the next one at least 250 ms later.
  int new_fd = ConnectAgent(/*want_patterns=*/false, now);
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

void ChannelAtForkChild() {
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
  // The parent's ring is the parent's: close our copies of its descriptors
  // and keep the view only until the child's own ring (made by AgentFd() on
  // its first record) copied the module table.
  TapRingHeader* parent = g_ring.exchange(nullptr);
  if (g_parent_ring != nullptr) munmap(g_parent_ring, agent::TapRingBytes(g_ring_slots));
  g_parent_ring = parent;
  DestroyRing();
}

// With a ring nothing is sent on the socket, so a dead agent shows only as a
// hang-up there: look (a poll with no wait) at most every 250 ms, and when
// the ring is full.
void CheckAgent(bool now_please) {
  int64_t now = NowMs(CLOCK_MONOTONIC_COARSE);
  int64_t last = g_last_alive_check_ms.load(std::memory_order_relaxed);
  // A full ring looks sooner, but not on every dropped record (a poll each).
  if (now - last < (now_please ? 10 : 250)) return;
  if (!g_last_alive_check_ms.compare_exchange_strong(last, now)) return;  // another thread does
  int fd = g_agent_fd.load(std::memory_order_acquire);
  if (fd < 0 || g_agent_pid.load(std::memory_order_acquire) != g_pid) {
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

bool HandToRing(const RingPart* parts, size_t nparts) {
  TapRingHeader* ring = OwnRing();
  if (ring == nullptr && g_ring_mode) {
    AgentFd();  // a fork child before its first record: makes its ring
    ring = OwnRing();
  }
  if (ring == nullptr) return false;
  if (RingPushParts(ring, parts, nparts)) {
    g_counters.events_sent.fetch_add(1, std::memory_order_relaxed);
    CheckAgent(false);
    return true;
  }
  // Counted where the agent reads it, even if this process dies first.
  __atomic_fetch_add(&ring->dropped, 1, __ATOMIC_RELAXED);
  g_counters.events_dropped.fetch_add(1, std::memory_order_relaxed);
  CheckAgent(true);
  return true;
}

void SendToAgent(const void* msg, size_t len) {
  RingPart part{msg, len};
  if (HandToRing(&part, 1)) return;
  int fd = AgentFd();
  if (fd >= 0 && RealSend(fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(len)) {
    g_counters.events_sent.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g_counters.events_dropped.fetch_add(1, std::memory_order_relaxed);
  if (fd >= 0 && (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)) {
    // Agent restarted: reconnect later (rate-limited). The dead fd is left
    // open on purpose: another thread may be about to send on it, and closing
    // it could let the app reuse the number and receive our bytes.
    int expected = fd;
    g_agent_fd.compare_exchange_strong(expected, -1);
  }
}

int RingFd() { return g_ring_fd; }
int DoorbellFd() { return g_doorbell_fd; }

void SendStats() {
  int fd = g_agent_fd.load();
  if (fd < 0 || g_agent_pid.load() != static_cast<int>(getpid())) return;
  TapWireStats st;
  memset(&st, 0, sizeof(st));
  agent::FillTapHeader(&st.header, agent::kTapMsgStats, sizeof(st));
  st.pid = static_cast<uint32_t>(getpid());
  const Counters& c = g_counters;
  st.events_sent = c.events_sent.load();
  st.events_dropped = c.events_dropped.load();
  st.scan_cap_hits = c.cap_hits.load();
  st.calls_scanned = c.calls_scanned.load();
  st.bytes_scanned = c.bytes_scanned.load();
  st.split_matches = c.split_matches.load();
  st.stream_fallbacks = c.stream_fallbacks.load();
  st.acquisitions = c.acquisitions.load();
  st.cookies = c.cookies.load();
  RealSend(fd, &st, sizeof(st), MSG_DONTWAIT | MSG_NOSIGNAL);  // best effort
}

}  // namespace idflow::tap

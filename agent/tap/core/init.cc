#include "agent/tap/core/init.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "agent/tap/attribution/stack_walk.h"
#include "agent/tap/channel/agent_channel.h"
#include "agent/tap/core/state.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/real/real_functions.h"

namespace idflow::tap {
namespace {

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

void AtForkChild() {
  g_pid = static_cast<int>(getpid());
  t_tid = 0;
  AttributionAtForkChild();
  ChannelAtForkChild();
}

}  // namespace

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
  g_timeout_ms = static_cast<int>(EnvSize("IDFLOW_TAP_TIMEOUT_MS", 5, 0, 60000));
  g_inline_max = EnvSize("IDFLOW_TAP_INLINE_MAX", g_inline_max, 0, agent::kTapPayloadChunkMax);
  g_pid = static_cast<int>(getpid());
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
  CacheLoadedModules();

  // Start-up never waits for more than IDFLOW_TAP_TIMEOUT_MS (a few ms):
  // the ring is made first and handed to the agent with the Hello whenever
  // one answers (now or on a reconnect, at most every 250 ms). Without the
  // database (agent absent, hung, stopped or slow) every transmit call is
  // handed over and matched by the agent; with it, small calls are matched
  // here.
  int64_t deadline = NowMs(CLOCK_MONOTONIC) + g_timeout_ms;
  g_ring_mode = CreateRing();
  if (!g_ring_mode) {
    Debug("no event ring (memfd): disabled");
    SayUnreachable("cannot make the event ring (memfd): this process is NOT observed");
    g_state.store(kDisabled);
    return;
  }
  InitThreadResources();
  pthread_atfork(AttributionAtForkPrepare, AttributionAtForkParent, AtForkChild);
  int fd = ConnectAgent(/*want_patterns=*/true, deadline);
  if (fd < 0) {
    Debug("cannot connect to the agent yet: events wait in the ring");
    SayUnreachable(
        "cannot reach idflow-agent yet: events wait in this process's ring (counted as dropped "
        "once it is full); retrying every 250 ms");
  } else if (!ReceivePatterns(fd, deadline)) {
    Debug("no pattern database within the start-up bound: the agent matches every call");
  }
  if (fd >= 0) {
    g_agent_fd.store(fd);
    g_agent_pid.store(static_cast<int>(getpid()));
  }
  g_state.store(kReady, std::memory_order_release);
  Debug(g_db != nullptr ? "ready" : "ready (matching in the agent)");
}

void Fini() {
  if (g_state.load() != kReady) return;
  Guard guard;
  SendStats();
}

}  // namespace idflow::tap

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
  CacheLoadedModules();

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
  InitThreadResources();
  pthread_atfork(AttributionAtForkPrepare, AttributionAtForkParent, AtForkChild);
  g_agent_fd.store(fd);
  g_agent_pid.store(static_cast<int>(getpid()));
  g_state.store(kReady, std::memory_order_release);
  Debug(g_db != nullptr ? "ready" : "ready (empty pattern database)");
}

void Fini() {
  if (g_state.load() != kReady) return;
  Guard guard;
  SendStats();
}

}  // namespace idflow::tap

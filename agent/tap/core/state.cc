#include "agent/tap/core/state.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/tap_protocol.h"

#include "agent/tap/real/real_functions.h"

namespace idflow::tap {

std::atomic<int> g_state{kUninit};
bool g_debug = false;
size_t g_inline_max = 16 * 1024;
bool g_nothing_to_scan = false;
int g_timeout_ms = 2000;
int g_stack_depth = 32;
char g_socket_path[sizeof(sockaddr_un::sun_path)];
char g_exe[PATH_MAX];
void* g_main_base = nullptr;
int g_pid = 0;
hs_database_t* g_db = nullptr;
hs_scratch_t* g_proto_scratch = nullptr;
constinit Counters g_counters;

IDFLOW_TLS int t_in_hook = 0;
IDFLOW_TLS hs_scratch_t* t_scratch = nullptr;
IDFLOW_TLS char* t_gather = nullptr;
IDFLOW_TLS int t_tid = 0;

namespace {

IDFLOW_TLS bool t_key_set = false;
std::atomic<bool> g_said_unreachable{false};
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
  if (r->gather == t_gather) {
    t_scratch = nullptr;
    t_gather = nullptr;
    t_key_set = false;
  }
  if (r->scratch != nullptr) hs_free_scratch(r->scratch);
  free(r->gather);
  free(r);
}

void WriteLine(const char* line, int n, size_t cap) {
  if (n > 0) RealWrite(2, line, static_cast<size_t>(n) < cap ? n : cap - 1);
}

}  // namespace

void Debug(const char* msg) {
  if (!g_debug) return;
  char line[512];
  int n = snprintf(line, sizeof(line), "idflow-tap[%d]: %s\n", static_cast<int>(getpid()), msg);
  WriteLine(line, n, sizeof(line));
}

void SayUnreachable(const char* what) {
  if (g_said_unreachable.exchange(true)) return;
  char line[512];
  int n = snprintf(line, sizeof(line), "idflow-tap[%d]: %s (agent socket %s)\n",
                   static_cast<int>(getpid()), what, g_socket_path);
  WriteLine(line, n, sizeof(line));
}

int64_t NowMs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void InitThreadResources() {
  g_thread_key_ok = pthread_key_create(&g_thread_key, FreeThreadResources) == 0;
}

bool EnsureThreadResources() {
  if (t_gather != nullptr) return true;
  hs_scratch_t* s = nullptr;
  if (g_proto_scratch != nullptr && hs_clone_scratch(g_proto_scratch, &s) != HS_SUCCESS) {
    return false;
  }
  char* gather = static_cast<char*>(malloc(agent::kTapPayloadChunkMax));
  if (gather == nullptr) {
    if (s != nullptr) hs_free_scratch(s);
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

int ThreadId() {
  if (t_tid == 0) t_tid = static_cast<int>(syscall(SYS_gettid));
  return t_tid;
}

}  // namespace idflow::tap

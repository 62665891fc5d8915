// Process-wide state of the tap: whether it is ready, its settings (from the
// environment at start-up), its counters (sent in the exit Stats), and the
// per-thread re-entrancy guard and scan resources.
//
// Constraints for everything under agent/tap/: no C++ exceptions, no RTTI,
// no libstdc++ runtime (no function-local statics, no new/delete, no
// iostreams). Allocation happens at init and once per thread (Vectorscan
// scratch + a gather buffer); hooks themselves do not allocate. All tables
// are constinit: a dynamic initializer could run after the constructor (and
// after hooks) and wipe them.
#ifndef IDFLOW_AGENT_TAP_CORE_STATE_H_
#define IDFLOW_AGENT_TAP_CORE_STATE_H_

#include <hs/hs_runtime.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include <time.h>

#include <atomic>

// Thread-locals of the tap: initial-exec (no allocation, no TLS wrapper
// call), __thread so that extern declarations need no initialization guard.
#define IDFLOW_TLS __attribute__((tls_model("initial-exec"))) __thread

namespace idflow::tap {

enum State : int { kUninit = 0, kDisabled = 1, kReady = 2 };
extern std::atomic<int> g_state;

// Settings (written by Init() before the tap is ready, read-only after).
extern bool g_debug;
// Transmit calls of at most this many bytes are matched inline when the
// database is here (a call with a match is still handed over whole);
// larger ones, and all of them without a database, are copied to the ring
// and matched by the agent (docs/PERFORMANCE.md says why).
extern size_t g_inline_max;
// The agent said it has no identifiers: nothing is handed over.
extern bool g_nothing_to_scan;
extern int g_timeout_ms;   // start-up bound
extern int g_stack_depth;  // frames walked for the call chain
extern char g_socket_path[sizeof(sockaddr_un::sun_path)];
extern char g_exe[PATH_MAX];  // /proc/self/exe
extern void* g_main_base;     // dli_fbase of the main executable
extern int g_pid;             // getpid(), set at start and in a fork child

// The pattern database from the agent (nullptr: nothing to look for) and the
// scratch every thread's own is cloned from.
extern hs_database_t* g_db;
extern hs_scratch_t* g_proto_scratch;

struct Counters {
  std::atomic<uint64_t> events_sent{0}, events_dropped{0}, cap_hits{0}, calls_scanned{0},
      bytes_scanned{0}, split_matches{0}, stream_fallbacks{0}, acquisitions{0}, cookies{0};
};
extern Counters g_counters;

inline bool Ready() { return g_state.load(std::memory_order_acquire) == kReady; }
// Transmit hooks observe unless the agent said there is nothing to find
// (without a database, every call is handed over and matched there).
inline bool Active() { return Ready() && !g_nothing_to_scan; }

// One line on stderr when IDFLOW_TAP_DEBUG is set.
void Debug(const char* msg);
// Once per process, whatever IDFLOW_TAP_DEBUG says: a process that is not
// observed must not look clean.
void SayUnreachable(const char* what);
int64_t NowMs(clockid_t clock);

// Per-thread: the re-entrancy guard, the cloned scratch (nullptr without a
// database), the gather buffer (kTapPayloadChunkMax bytes) for
// writev/sendmsg, the thread id (0 until first asked; reset in a fork
// child).
extern IDFLOW_TLS int t_in_hook;
extern IDFLOW_TLS hs_scratch_t* t_scratch;
extern IDFLOW_TLS char* t_gather;
extern IDFLOW_TLS int t_tid;
int ThreadId();

// Calls made by the tap itself (and by TLS libraries inside SSL_write) pass
// straight through: only the outermost hooked call of a thread observes.
class Guard {
 public:
  Guard() : entered_(t_in_hook == 0) { ++t_in_hook; }
  ~Guard() { --t_in_hook; }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  bool entered() const { return entered_; }

 private:
  bool entered_;
};

// Makes the pthread key that frees a thread's resources at its exit.
void InitThreadResources();
// Allocates this thread's gather buffer and (with a database) its scratch
// on first use; false if that failed (the call is then not observed).
bool EnsureThreadResources();

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_CORE_STATE_H_

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
extern size_t g_scan_cap;  // bytes scanned per call at most
extern int g_timeout_ms;   // start-up bound
extern int g_stack_depth;  // frames walked for the call chain
extern char g_socket_path[sizeof(sockaddr_un::sun_path)];
extern char g_exe[PATH_MAX];  // /proc/self/exe
extern void* g_main_base;     // dli_fbase of the main executable

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
inline bool Active() { return Ready() && g_db != nullptr; }

// One line on stderr when IDFLOW_TAP_DEBUG is set.
void Debug(const char* msg);
// Once per process, whatever IDFLOW_TAP_DEBUG says: a process that is not
// observed must not look clean.
void SayUnreachable(const char* what);
int64_t NowMs(clockid_t clock);

// Per-thread: the re-entrancy guard, the cloned scratch, the gather buffer
// (g_scan_cap bytes) for writev/sendmsg.
extern IDFLOW_TLS int t_in_hook;
extern IDFLOW_TLS hs_scratch_t* t_scratch;
extern IDFLOW_TLS char* t_gather;

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
// Allocates this thread's scratch and gather buffer on first use; false if
// that failed (the call is then not scanned).
bool EnsureThreadResources();

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_CORE_STATE_H_

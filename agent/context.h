// The usage context events are judged under (active scenarios, consent
// states, QA run id), as it changes while a test runs. A process starts with
// what its environment declared (IDFLOW_SCENARIO, IDFLOW_CONSENT,
// IDFLOW_RUN_ID, carried by its Hello); `idflowctl context set` and harnesses
// change it from a given moment, for the device or for one process. An event
// carries the context that was active when it happened (its timestamp), not
// the one active when the agent read it.
#ifndef IDFLOW_AGENT_CONTEXT_H_
#define IDFLOW_AGENT_CONTEXT_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "agent/control_protocol.h"

namespace idflow::agent {

struct ActiveContext {
  std::vector<std::string> scenarios;
  std::map<std::string, bool> consents;
  std::string run_id;
  bool operator==(const ActiveContext&) const = default;
};

// Applies a change: scenarios and run id replace, consents merge per key.
void ApplyPatch(const ContextPatch& patch, ActiveContext* context);

// Time-ordered changes per scope (the device, each process). Bounded: a scope
// keeps its latest kMaxChangesPerScope changes (older ones are folded into
// the scope's floor, which then applies to every time), and at most
// kMaxProcessScopes processes have their own changes (more is refused).
// Thread-safe.
class ContextBoard {
 public:
  static constexpr size_t kMaxChangesPerScope = 256;
  static constexpr size_t kMaxProcessScopes = 4096;

  // Records `patch` as effective for events at or after `at_unix_ms`
  // (pid 0: the device). False when the process table is full.
  bool Set(uint32_t pid, int64_t at_unix_ms, const ContextPatch& patch);

  // The context of an event of `pid` at `at_unix_ms`: what the process
  // declared at start (`declared`: its environment, the starting point),
  // changed by the device's changes up to then, then by the process's own
  // (the narrower scope wins). A device change holds for every process
  // from its moment on, also those started later, until changed again.
  ActiveContext Resolve(const ActiveContext& declared, uint32_t pid, int64_t at_unix_ms) const;

  // Drops a process's own changes (it exited: its pid may be reused).
  void ForgetProcess(uint32_t pid);

  size_t process_scopes() const;

 private:
  struct Change {
    int64_t at_unix_ms;
    ContextPatch patch;
  };
  struct Scope {
    ContextPatch floor;           // folded changes older than `changes`
    std::vector<Change> changes;  // sorted by at_unix_ms, stable for equal times
  };
  static void Add(Scope* scope, int64_t at_unix_ms, const ContextPatch& patch);
  static void ApplyUpTo(const Scope& scope, int64_t at_unix_ms, ActiveContext* context);

  mutable std::mutex mu_;
  Scope device_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint32_t, Scope> processes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_CONTEXT_H_

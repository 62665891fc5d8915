// Attribution: the call chain of a hooked call, i.e. the distinct modules on
// the stack, innermost first (call_chain.h), each with its real path and GNU
// build id. Which module is responsible is decided by the collector from
// policy data, not here.
//
// Each module's path and build id are computed once per (load address,
// dladdr name) and kept in a fixed table of immutable entries: modules
// loaded at start-up are filled by CacheLoadedModules(), ones dlopen'ed
// later on first sight. A fork() fence keeps the loader lock (dladdr, the
// unwinder, dl_iterate_phdr) from being held across fork.
#ifndef IDFLOW_AGENT_TAP_ATTRIBUTION_STACK_WALK_H_
#define IDFLOW_AGENT_TAP_ATTRIBUTION_STACK_WALK_H_

#include "agent/tap_protocol.h"

namespace idflow::tap {

// Most frames walked (IDFLOW_TAP_STACK_DEPTH is bounded by it).
inline constexpr int kMaxFrames = 64;

// Fills `chain` (zeroed) with the call chain of the current stack; `caller`
// (the hook's return address) is used when nothing unwinds. Stays empty
// inside the fork window. Costs a few µs: call it only to report.
void FillChain(void* caller, agent::TapWireChain* chain);

// Constructor only: caches every module loaded now and primes the unwinder
// (it allocates on first use), outside any hook.
void CacheLoadedModules();

// The loader fence: a loader call (dladdr, dl_iterate_phdr) from a hook
// runs only between EnterDl() returning true and LeaveDl(); false inside
// the fork window (skip the call, never wait).
bool EnterDl();
void LeaveDl();

// pthread_atfork handlers of the loader fence.
void AttributionAtForkPrepare();
void AttributionAtForkParent();
void AttributionAtForkChild();

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_ATTRIBUTION_STACK_WALK_H_

// Shared by the exported hooks (one file per family in this folder). Each
// hook calls the real function first (agent/tap/real/), then hands only
// what it reports as transferred to agent/tap/observe/ under the
// re-entrancy guard, and restores errno so the caller sees exactly the real
// result. Only these files define exported symbols (tap.map).
#ifndef IDFLOW_AGENT_TAP_HOOKS_HOOK_H_
#define IDFLOW_AGENT_TAP_HOOKS_HOOK_H_

#include <errno.h>

#include "agent/tap/core/state.h"
#include "agent/tap/observe/observe.h"
#include "agent/tap/real/real_functions.h"
#include "agent/tap_protocol.h"

#define IDFLOW_EXPORT extern "C" __attribute__((visibility("default")))
#define IDFLOW_CALLER __builtin_return_address(0)

namespace idflow::tap {

// Runs `body` under the re-entrancy guard with errno preserved.
template <typename Body>
inline void Observe(Body&& body) {
  int saved_errno = errno;
  Guard guard;
  if (guard.entered()) body();
  errno = saved_errno;
}

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_HOOKS_HOOK_H_

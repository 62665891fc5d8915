// Loader hooks: dlclose brings the ring's module table up to date at once,
// so records stamped before it still resolve to the objects it unloaded and
// later ones do not (agent/tap/attribution/module_table.h). dlopen is not
// hooked: glibc takes the caller's RUNPATH, $ORIGIN and namespace from its
// return address; new objects are found by the loader's counters instead.
#include "agent/tap/attribution/module_table.h"
#include "agent/tap/attribution/stack_walk.h"
#include "agent/tap/channel/agent_channel.h"
#include "agent/tap/hooks/hook.h"

using namespace idflow::tap;  // NOLINT: hooks are C symbols

IDFLOW_EXPORT int dlclose(void* handle) {
  DlcloseFn f = IDFLOW_REAL(dlclose);
  int r = f != nullptr ? f(handle) : -1;
  if (r == 0 && Ready()) {
    Observe([&] {
      if (EnterDl()) {
        SyncModules(OwnRing());
        LeaveDl();
      }
    });
  }
  return r;
}

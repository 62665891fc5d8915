// The call chain of a hooked call: the distinct modules on the stack,
// innermost first. A pure function over the walked return addresses and a
// pc -> module lookup, so a unit test can drive it with fake modules; the tap
// passes dladdr(). No allocation, no libstdc++ runtime.
#ifndef IDFLOW_AGENT_TAP_ATTRIBUTION_CALL_CHAIN_H_
#define IDFLOW_AGENT_TAP_ATTRIBUTION_CALL_CHAIN_H_

#include <stddef.h>
#include <stdint.h>

namespace idflow::tap {

struct ChainModule {
  uintptr_t base;    // load address: identifies the module
  const char* name;  // as the lookup reported it (dladdr's dli_fname)
  uintptr_t pc;      // first pc seen inside it
};

// Resolves `pc` to its module; false when no loaded module contains it.
using ModuleLookup = bool (*)(void* ctx, uintptr_t pc, ChainModule* out);

// Fills out[0, max) with the modules of pcs[0, n) (innermost frame first) in
// order of first appearance: each module once (a repeat, adjacent or not,
// keeps its innermost position), pcs no module contains skipped, the module
// at `exclude_base` (the tap itself) never listed. Returns the count.
size_t BuildCallChain(const uintptr_t* pcs, size_t n, ModuleLookup lookup, void* ctx,
                      uintptr_t exclude_base, ChainModule* out, size_t max);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_ATTRIBUTION_CALL_CHAIN_H_

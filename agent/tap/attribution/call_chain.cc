#include "agent/tap/attribution/call_chain.h"

namespace idflow::tap {

size_t BuildCallChain(const uintptr_t* pcs, size_t n, ModuleLookup lookup, void* ctx,
                      uintptr_t exclude_base, ChainModule* out, size_t max) {
  size_t count = 0;
  for (size_t i = 0; i < n && count < max; ++i) {
    ChainModule m;
    if (pcs[i] == 0 || !lookup(ctx, pcs[i], &m) || m.base == exclude_base) continue;
    bool seen = false;
    for (size_t k = 0; k < count && !seen; ++k) seen = out[k].base == m.base;
    if (seen) continue;
    m.pc = pcs[i];
    out[count++] = m;
  }
  return count;
}

}  // namespace idflow::tap

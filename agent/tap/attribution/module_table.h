// The module table in this process's ring (tap_protocol.h, TapRingModule):
// every loaded object with its address range, path and GNU build id, so that
// the hooks only record raw return addresses and the agent turns them into
// the call chain. Entries are appended, never reused; an object that went
// away is marked unloaded at a generation, and records stamped earlier still
// resolve through it.
//
// The table is brought up to date from dl_iterate_phdr: when the ring is
// made, after every dlclose (hooked), and when the loader's load/unload
// counters moved (looked at before every capture of frames: about 100 ns,
// paid by calls handed over, which are large or carry a match). dlopen
// itself is not interposed: glibc resolves $ORIGIN, the caller's RUNPATH
// and its namespace from dlopen's return address, which a wrapper would
// change.
#ifndef IDFLOW_AGENT_TAP_ATTRIBUTION_MODULE_TABLE_H_
#define IDFLOW_AGENT_TAP_ATTRIBUTION_MODULE_TABLE_H_

#include <link.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/tap_protocol.h"

namespace idflow::tap {

// Fills (or brings up to date) the table of `ring` from the loader.
void SyncModules(agent::TapRingHeader* ring);
// SyncModules for the hooks: only when the loader's counters moved (and
// outside the fork window).
void MaybeSyncModules(agent::TapRingHeader* ring);
// A fork child's new ring starts with its parent's table.
void CopyModules(const agent::TapRingHeader* from, agent::TapRingHeader* to);

// Raw return addresses (minus one: inside the call) of the current stack,
// innermost first, at most `max`: _Unwind_Backtrace, which finds frames with
// glibc's lock-free _dl_find_object (libgcc 12, glibc 2.35+): no loader
// lock, no allocation after the first call (primed at start-up).
int CaptureFrames(uint64_t* pcs, int max);

// NT_GNU_BUILD_ID of a loaded object, read from its PT_NOTE segments in
// memory; 0 when it has none.
size_t ReadBuildId(const dl_phdr_info* info, uint8_t* out);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_ATTRIBUTION_MODULE_TABLE_H_

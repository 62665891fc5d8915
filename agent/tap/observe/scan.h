// Matching one transmit call against the pattern database, with the
// stream's carry (its last bytes sent) so that an identifier split across
// two calls is found. Shared by the tap (inline, small calls) and the agent
// (every call the tap handed over in the ring): both find exactly the same
// matches in the same bytes. No allocation, no globals.
#ifndef IDFLOW_AGENT_TAP_OBSERVE_SCAN_H_
#define IDFLOW_AGENT_TAP_OBSERVE_SCAN_H_

#include <hs/hs_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/tap_protocol.h"

namespace idflow::tap {

// Bytes of a stream kept for its next call: one less than the longest form.
inline constexpr size_t kCarryMax = agent::kTapMaxPatternBytes - 1;

// At most this many events per call and kind (split, main): one per pattern.
inline constexpr int kMaxMatchesPerCall = 16;
struct MatchSet {
  int count;
  uint32_t id[kMaxMatchesPerCall];
  uint64_t from[kMaxMatchesPerCall];
  uint64_t to[kMaxMatchesPerCall];
};

inline void AddMatch(MatchSet* m, unsigned int id, uint64_t from, uint64_t to) {
  for (int i = 0; i < m->count; ++i) {
    if (m->id[i] == id) return;  // one event per (pattern, call)
  }
  if (m->count == kMaxMatchesPerCall) return;
  m->id[m->count] = id;
  m->from[m->count] = from;
  m->to[m->count] = to;
  ++m->count;
}

inline int OnMatch(unsigned int id, unsigned long long from, unsigned long long to, unsigned int,
                   void* ctx) {
  AddMatch(static_cast<MatchSet*>(ctx), id, from, to);
  return 0;
}

// What ScanCall found. A call of at most kCarryMax bytes is scanned once,
// together with the carry (`joint` = carry + data); a larger one is scanned
// with the first kCarryMax bytes after the carry for split matches, then on
// its own.
struct CallMatches {
  char joint[2 * kCarryMax];
  size_t joint_len;
  size_t boundary;      // carry bytes at the start of `joint`
  MatchSet split;       // in `joint`, straddling the boundary
  MatchSet joint_main;  // in `joint`, after the boundary (small calls)
  MatchSet main;        // in the data itself (larger calls)
  int total() const { return split.count + joint_main.count + main.count; }
};

void ScanCall(const hs_database_t* db, hs_scratch_t* scratch, const char* carry, size_t carry_len,
              const char* data, size_t n, CallMatches* out);

// The stream's next carry: the last kCarryMax bytes of carry + data,
// updated in place (`carry` holds kCarryMax bytes); returns its length.
size_t NextCarry(char* carry, size_t carry_len, const char* data, size_t n);

// The per-match fields of an event message: pattern, offset, split flag
// and the 64-byte context window around [from, to) within buf[0, n).
void SetEventMatch(agent::TapWireEvent* ev, const char* buf, uint64_t n, uint32_t id, uint64_t from,
                   uint64_t to, uint64_t offset, bool split);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_OBSERVE_SCAN_H_

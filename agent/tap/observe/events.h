// What the tap reports about one hooked call: the fields every event and
// cookie of the call share (destination, name, call chain), and the event
// and cookie messages handed to the channel. Internal to agent/tap/observe/.
#ifndef IDFLOW_AGENT_TAP_OBSERVE_EVENTS_H_
#define IDFLOW_AGENT_TAP_OBSERVE_EVENTS_H_

#include <stddef.h>
#include <stdint.h>

#include "agent/tap/observe/observe.h"
#include "agent/tap_protocol.h"

namespace idflow::tap {

constexpr int kMaxMatchesPerCall = 16;
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

inline constexpr int kMaxCookiesPerCall = 16;

// Fills the fields every event and cookie of one call share; `data` (n
// bytes, may be null) is looked at for an HTTP Host.
void FillCommon(const Call& c, const char* data, size_t n, agent::TapWireEvent* ev);

// One match event from `ev`'s common fields, with a context window of
// data[0, n) around [from, to).
void SendMatch(agent::TapWireEvent* ev, const char* data, size_t n, uint32_t id, uint64_t from,
               uint64_t to, uint64_t offset, bool split);

// One cookie message from the common fields of `ev`.
void SendCookie(const agent::TapWireEvent& ev, uint8_t direction, const char* name, size_t name_len,
                uint8_t flags, int64_t max_age, const char* domain, size_t domain_len);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_OBSERVE_EVENTS_H_

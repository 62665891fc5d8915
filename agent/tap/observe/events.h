// What the tap reports about one hooked call: the fields every event and
// cookie of the call share (destination, name, call chain), and the event
// and cookie messages handed to the channel. Internal to agent/tap/observe/.
#ifndef IDFLOW_AGENT_TAP_OBSERVE_EVENTS_H_
#define IDFLOW_AGENT_TAP_OBSERVE_EVENTS_H_

#include <stddef.h>
#include <stdint.h>

#include "agent/tap/observe/observe.h"
#include "agent/tap/observe/scan.h"
#include "agent/tap_protocol.h"

namespace idflow::tap {

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

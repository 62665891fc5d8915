// Bounds on what a client may make the collector store (docs/SECURITY.md):
// every string field of an event has a limit. Text past a limit is cut at a
// UTF-8 boundary (the event is kept, the cut counted); an event that cannot
// be meaningful (seq out of range, no identifier and no cookie) is refused.
#ifndef IDFLOW_COLLECTOR_LIMITS_H_
#define IDFLOW_COLLECTOR_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "idflow/v1/event.pb.h"

namespace idflow::collector {

inline constexpr size_t kMaxAgentIdBytes = 128;
inline constexpr size_t kMaxPathBytes = 4096;     // exe, module, peer executable
inline constexpr size_t kMaxHostnameBytes = 253;  // DNS limit
inline constexpr size_t kMaxShortBytes = 64;      // kinds, encodings, channels, ids
inline constexpr size_t kMaxSnippetBytes = 256;   // the tap's redaction window is 64
inline constexpr size_t kMaxDigestBytes = 128;
inline constexpr size_t kMaxCallChain = 16;  // the tap sends at most 8
inline constexpr size_t kMaxScenarios = 16;
inline constexpr size_t kMaxConsents = 32;
inline constexpr size_t kMaxCookieNameBytes = 256;
// Seqs are stored as SQL 64-bit signed integers.
inline constexpr uint64_t kMaxSeq = (uint64_t{1} << 63) - 1;

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
// Returns true when it cut.
bool TruncateUtf8(std::string* s, size_t max);

// Applies every field limit in place; returns how many fields were cut.
size_t BoundEvent(idflow::v1::Event* ev);

// An agent id: 1..kMaxAgentIdBytes of [A-Za-z0-9._:-].
absl::Status ValidateAgentId(const std::string& id);

// Refuses what no truncation can fix: INVALID_ARGUMENT.
absl::Status ValidateEvent(const idflow::v1::Event& ev);

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_LIMITS_H_

// The agent's side of the tap's Payload records (tap_protocol.h): the bytes
// of a transmit call the tap handed over instead of matching them on the
// app's thread. Matches them with the same code and the same carry the tap
// uses inline (agent/tap/observe/scan.h), resolves the raw return addresses
// through the ring's module table, and builds exactly the event messages the
// tap would have sent (TapWireEvent), which go through the usual decoder.
//
// Everything read comes from shared memory written by the app: the record
// is a private copy, validated field by field; module table entries are
// copied and bounded before use. Not thread-safe: one per connection.
#ifndef IDFLOW_AGENT_TAP_MATCHER_H_
#define IDFLOW_AGENT_TAP_MATCHER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "agent/pattern_db.h"
#include "agent/tap_protocol.h"

struct hs_scratch;

namespace idflow::agent {

// The distinct modules of `frames` (innermost first, at most kTapChainMax,
// never the tap itself), from the module table as it was at `generation`;
// `caller` is used when no frame resolves. Same rules as the tap's
// in-process walk (agent/tap/attribution/).
void ResolveTapChain(const uint64_t* frames, size_t count, uint64_t caller, uint64_t generation,
                     const TapRingModule* modules, uint32_t module_count, TapWireChain* chain);

class TapPayloadMatcher {
 public:
  TapPayloadMatcher() = default;
  ~TapPayloadMatcher();
  TapPayloadMatcher(const TapPayloadMatcher&) = delete;
  TapPayloadMatcher& operator=(const TapPayloadMatcher&) = delete;

  // Matches one Payload record against `db` (nullptr or empty: nothing to
  // find) and appends one encoded TapWireEvent per match to *events.
  // InvalidArgument for a malformed record.
  absl::Status Match(std::string_view record, const std::shared_ptr<const PatternDb>& db,
                     const TapRingModule* modules, uint32_t module_count,
                     std::vector<std::string>* events);

 private:
  std::shared_ptr<const PatternDb> db_;  // the one scratch_ was made for
  hs_scratch* scratch_ = nullptr;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_TAP_MATCHER_H_

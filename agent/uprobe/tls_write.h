// The pure half of the TLS uprobe source: what one probe record says, the
// modules of a process from /proc/PID/maps, and the Payload record (the one
// the tap hands over for large calls, agent/tap_protocol.h) that lets the
// agent's payload matcher turn a probed write into the same events a tap
// would have made. No BPF here: unit tests and fuzzers reach all of it.
#ifndef IDFLOW_AGENT_UPROBE_TLS_WRITE_H_
#define IDFLOW_AGENT_UPROBE_TLS_WRITE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/tap_protocol.h"

namespace idflow::agent {

// Which library's write function a probe sat on.
enum class TlsProbeKind { kOpenssl, kGo };

// One write seen by a probe (a view into the record it was parsed from).
struct TlsWrite {
  uint32_t tgid = 0;
  uint32_t tid = 0;
  TlsProbeKind kind = TlsProbeKind::kOpenssl;
  uint32_t len = 0;       // bytes the call was asked to write
  std::string_view data;  // the first min(len, IDFLOW_TLS_DATA_MAX) of them
  uint64_t return_address = 0;
  uint64_t ip = 0;      // where the probe fired (the function's entry), 0 if unknown
  uint64_t cookie = 0;  // the attachment (TlsUprobeSource's probe sites)
  // The user stack from the probe, innermost first, without the probed
  // function's own address: return addresses.
  std::vector<uint64_t> frames;
};

// Exactly a well-formed ring buffer record (tls_event.h) or InvalidArgument:
// size, source, lengths, frame bytes.
absl::StatusOr<TlsWrite> ParseTlsRecord(std::string_view record);

// The channel name events from this probe carry ("tls-uprobe-openssl",
// "tls-uprobe-go").
TapChannel TlsProbeChannel(TlsProbeKind kind);

// The module a probe sat in, without /proc (the process may be gone when
// its write is read): the object's span of PT_LOAD addresses [lo_vaddr,
// hi_vaddr) moved by its load bias, which the probed function's address
// gives (ip - its symbol value, page-aligned; an int3 may leave ip one
// byte past the entry). Empty (path_len 0) when ip cannot be that symbol.
TapRingModule ProbedModule(std::string_view path, uint64_t lo_vaddr, uint64_t hi_vaddr,
                           uint64_t symbol_vaddr, uint64_t ip);

// A process's loaded objects, as the tap's ring module table holds them
// (one entry per file: the span of its mappings), from the text of
// /proc/PID/maps. Anonymous and special mappings ([vdso], [heap]...) are
// left out; the tap itself is flagged kTapModuleIsTap (never in a chain).
// At most kTapRingModules entries. Malformed lines are skipped.
std::vector<TapRingModule> ModulesFromMaps(std::string_view maps);

// The Payload record (type kTapMsgPayload) for `write`, as the tap would
// have handed it over: channel TLS, the HTTP Host of a request as the
// destination's name, the probe's frames (its return address first).
// `timestamp_ms` is the wall clock the event carries.
std::string TlsPayloadRecord(const TlsWrite& write, uint64_t timestamp_ms);

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_UPROBE_TLS_WRITE_H_

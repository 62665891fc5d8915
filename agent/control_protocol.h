// Control messages on the agent's tap socket, from test harnesses, apps and
// `idflowctl`: change the active usage context (scenarios, consents, run id)
// of one process or of the device, and flush a QA run. Each request is
// answered by one ControlReply on the same connection; a client sends no
// Hello first. The frames share the tap's header (TapWireHeader, magic and
// version) so one socket carries both; their types are far from the tap's
// own (agent/tap_protocol.h).
#ifndef IDFLOW_AGENT_CONTROL_PROTOCOL_H_
#define IDFLOW_AGENT_CONTROL_PROTOCOL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/tap_protocol.h"

namespace idflow::agent {

inline constexpr uint16_t kTapMsgContextSet = 16;
inline constexpr uint16_t kTapMsgFlushRun = 17;
inline constexpr uint16_t kTapMsgControlReply = 18;
// `idflowctl agent status`: read-only, from anyone allowed on the socket.
inline constexpr uint16_t kTapMsgStatusRequest = 19;
inline constexpr uint16_t kTapMsgStatusReply = 20;
// `idflowctl run`/`qa`: watch a process's TLS writes with the agent's uprobe
// source (agent/uprobe/); answered with its coverage line.
inline constexpr uint16_t kTapMsgWatchTls = 21;
inline constexpr uint32_t kWatchTlsUnderTap = 1u << 8;  // runs with the preload tap
inline constexpr uint32_t kWatchTlsScanMaps = 1u << 9;  // probe the objects mapped now too

inline constexpr uint32_t kContextHasScenarios = 1u << 0;  // scenarios replace the active ones
inline constexpr uint32_t kContextHasRunId = 1u << 1;      // run_id replaces the active one
inline constexpr size_t kControlReplyTextMax = 512;
inline constexpr size_t kControlAgentIdMax = 128;
inline constexpr size_t kStatusVersionMax = 96;
inline constexpr size_t kStatusCollectorMax = 256;
// Drop totals are indexed by idflow.v1.DropCause (1 tap .. 5 dead_letter);
// the protocol does not depend on the proto, so the names live here too.
inline constexpr size_t kStatusDropSlots = 8;
inline constexpr const char* kStatusDropNames[] = {"",      "tap",  "ingress",
                                                   "spool", "disk", "dead_letter"};
inline constexpr uint32_t kStatusConnected = 1u << 0;  // a stream to `collector` is up

struct TapWireContextSet {
  TapWireHeader header;
  uint32_t pid;    // 0 = the device (every process without its own change)
  uint32_t flags;  // kContextHas*
  uint16_t scenarios_len;
  uint16_t consents_len;
  uint16_t run_id_len;
  uint16_t reserved;
  char scenarios[kTapScenarioMax];  // "a,b"; with kContextHasScenarios, "" = none active
  char consents[kTapConsentMax];    // "k=true,k2=false": merged into the active ones
  char run_id[kTapRunIdMax];
};
static_assert(sizeof(TapWireContextSet) ==
              16 + 16 + kTapScenarioMax + kTapConsentMax + kTapRunIdMax);

struct TapWireWatchTls {
  TapWireHeader header;
  uint32_t pid;    // the process (it may not have executed `exe` yet)
  uint32_t flags;  // kWatchTls*, kContextHas* (the context its events carry)
  uint16_t exe_len;
  uint16_t scenarios_len;
  uint16_t consents_len;
  uint16_t run_id_len;
  char exe[kTapModuleMax];  // absolute path of the program
  char scenarios[kTapScenarioMax];
  char consents[kTapConsentMax];
  char run_id[kTapRunIdMax];
};
static_assert(sizeof(TapWireWatchTls) ==
              16 + 16 + kTapModuleMax + kTapScenarioMax + kTapConsentMax + kTapRunIdMax);

struct TapWireFlushRun {
  TapWireHeader header;
  uint32_t timeout_ms;  // how long to wait for the run's processes to end
  uint16_t run_id_len;
  uint16_t reserved;
  char run_id[kTapRunIdMax];
};
static_assert(sizeof(TapWireFlushRun) == 16 + 8 + kTapRunIdMax);

struct TapWireControlReply {
  TapWireHeader header;
  uint32_t code;             // absl::StatusCode
  uint32_t open_processes;   // flush: the run's processes still connected
  uint64_t seq;              // flush: every event of the run is at or below it
  uint64_t applied_unix_ms;  // context: the change applies to events from then on
  uint16_t text_len;
  uint16_t agent_id_len;
  uint32_t reserved;
  char text[kControlReplyTextMax];  // the error message, or a note
  char agent_id[kControlAgentIdMax];
};
static_assert(sizeof(TapWireControlReply) == 16 + 32 + kControlReplyTextMax + kControlAgentIdMax);

struct TapWireStatusRequest {
  TapWireHeader header;
  uint32_t flags;  // 0
  uint32_t reserved;
};
static_assert(sizeof(TapWireStatusRequest) == 16 + 8);

struct TapWireStatusReply {
  TapWireHeader header;
  uint32_t code;   // absl::StatusCode
  uint32_t flags;  // kStatusConnected
  uint64_t now_unix_ms;
  uint64_t spool_events;  // spooled, not acknowledged yet
  uint64_t spool_bytes;   // segment bytes on disk
  uint64_t pending_events;
  uint64_t last_seq;
  uint64_t oldest_unsent_unix_ms;  // 0: nothing unsent
  uint64_t last_ack_seq;
  uint64_t last_ack_unix_ms;  // 0: no ack seen since the agent started
  uint64_t drops[kStatusDropSlots];
  uint64_t rss_bytes;
  uint32_t cpu_permille;  // of one core, over the watchdog's window
  uint32_t memory_level;  // WatchdogMemoryLevel
  uint32_t cpu_level;     // WatchdogCpuLevel
  uint32_t reserved;
  uint64_t max_rss_bytes;     // 0: no limit
  uint32_t max_cpu_permille;  // 0: no limit
  uint32_t reserved2;
  uint64_t watchdog_steps;  // degradations so far
  uint64_t watchdog_shed;   // tap events refused while shedding
  uint16_t agent_id_len;
  uint16_t version_len;
  uint16_t collector_len;
  uint16_t reserved3;
  char agent_id[kControlAgentIdMax];
  char version[kStatusVersionMax];
  char collector[kStatusCollectorMax];
};
static_assert(sizeof(TapWireStatusReply) == 16 + 8 + 8 * 8 + 8 * kStatusDropSlots + 8 + 16 + 8 + 8 +
                                                16 + 8 + kControlAgentIdMax + kStatusVersionMax +
                                                kStatusCollectorMax);

// What `idflowctl agent status` shows. Counts and times only: no
// identifier values.
struct AgentStatus {
  std::string agent_id;
  std::string version;    // "" when unknown
  std::string collector;  // the address in use (or last tried)
  bool connected = false;
  uint64_t now_unix_ms = 0;
  uint64_t spool_events = 0;
  uint64_t spool_bytes = 0;
  uint64_t pending_events = 0;
  uint64_t last_seq = 0;
  uint64_t oldest_unsent_unix_ms = 0;
  uint64_t last_ack_seq = 0;
  uint64_t last_ack_unix_ms = 0;
  uint64_t drops[kStatusDropSlots] = {};
  uint64_t rss_bytes = 0;
  uint32_t cpu_permille = 0;
  uint32_t memory_level = 0;
  uint32_t cpu_level = 0;
  uint64_t max_rss_bytes = 0;
  uint32_t max_cpu_permille = 0;
  uint64_t watchdog_steps = 0;
  uint64_t watchdog_shed = 0;
  bool operator==(const AgentStatus&) const = default;
};

// A context change. Unset parts leave the active value as it is.
struct ContextPatch {
  std::optional<std::vector<std::string>> scenarios;
  std::map<std::string, bool> consents;
  std::optional<std::string> run_id;
  bool operator==(const ContextPatch&) const = default;
};

struct ContextSetRequest {
  uint32_t pid = 0;  // 0 = the device
  ContextPatch patch;
};

struct FlushRunRequest {
  std::string run_id;
  uint32_t timeout_ms = 10000;
};

struct WatchTlsRequest {
  uint32_t pid = 0;
  std::string exe;  // absolute
  bool under_tap = false;
  bool scan_maps = false;
  ContextPatch context;  // what the process's events carry (as a tap's Hello)
  bool operator==(const WatchTlsRequest&) const = default;
};

struct ControlReply {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string text;
  uint32_t open_processes = 0;
  uint64_t seq = 0;
  uint64_t applied_unix_ms = 0;
  std::string agent_id;
  // Set in the answer to a status request: encoded as a status frame.
  std::optional<AgentStatus> status;
};

using ControlRequest = std::variant<ContextSetRequest, FlushRunRequest, WatchTlsRequest>;

// True when `bytes` starts with a control request header (type 16, 17, 21):
// such a frame goes to DecodeControlRequest, not DecodeTapMessage.
bool IsControlRequest(std::string_view bytes);

// Exactly well-formed or InvalidArgument: size, magic, version, lengths,
// a valid run id, scenario and consent syntax ("k=v" with v true/false).
absl::StatusOr<ControlRequest> DecodeControlRequest(std::string_view bytes);
// Either reply frame: a control reply, or a status reply (`status` set).
absl::StatusOr<ControlReply> DecodeControlReply(std::string_view bytes);
// The larger of the two reply frames: what a reader must be ready for.
inline constexpr size_t kControlReplyMaxBytes = sizeof(TapWireStatusReply) >
                                                        sizeof(TapWireControlReply)
                                                    ? sizeof(TapWireStatusReply)
                                                    : sizeof(TapWireControlReply);

// Status requests travel apart from ControlRequest (they change nothing and
// need no privilege): true when `bytes` starts with a status request header.
bool IsStatusRequest(std::string_view bytes);
// Exactly well-formed (size, header, zero flags) or InvalidArgument.
absl::Status DecodeStatusRequest(std::string_view bytes);
std::string EncodeStatusRequest();

// Encoders. A string longer than its wire array is an error.
absl::StatusOr<std::string> EncodeContextSet(const ContextSetRequest& req);
absl::StatusOr<std::string> EncodeFlushRun(const FlushRunRequest& req);
absl::StatusOr<std::string> EncodeWatchTls(const WatchTlsRequest& req);
std::string EncodeControlReply(const ControlReply& reply);

// Parses `idflowctl context set` arguments: scenario=a,b (or scenario= for
// none), consent.KEY=true|false, run_id=ID. InvalidArgument names the bad one.
absl::StatusOr<ContextPatch> ParseContextAssignments(const std::vector<std::string>& args);

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_CONTROL_PROTOCOL_H_

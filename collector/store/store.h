// Storage of events and their verdicts. Plain C++ types; back-ends beside this
// header (sqlite_store.h, postgres_store.h). Idempotent on (agent_id, seq).
// Every back-end passes the one conformance suite (tests/store/).
#ifndef IDFLOW_COLLECTOR_STORE_STORE_H_
#define IDFLOW_COLLECTOR_STORE_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace idflow::store {

// A module on the stack of the hooked call.
struct ModuleRef {
  std::string path;
  std::string build_id;
  bool operator==(const ModuleRef&) const = default;
};

// A cookie event's own fields (names and lifetimes only, never values).
struct CookieRecord {
  std::string name;
  std::string direction;         // "set_by_server" | "sent_by_client"
  std::string domain;            // Set-Cookie Domain attribute, "" = host-only
  int64_t max_age_seconds = -1;  // -1 = none given
  bool session = false;
  bool first_party = true;  // decided by the collector from the cookie policy
  bool operator==(const CookieRecord&) const = default;
};

// One judged event. Identifier values appear only as keyed digests.
struct EventRecord {
  std::string agent_id;
  uint64_t seq = 0;
  // where
  std::string device_id;
  std::string device_class;
  std::string firmware;
  // who
  int64_t pid = 0;
  std::string exe;
  std::vector<ModuleRef> call_chain;  // innermost first, as the tap saw it
  std::string module;                 // responsible module, decided by the collector
  std::string module_build_id;
  std::string sdk;       // SDK `module` maps to in the collector's bindings
  std::string sdk_hint;  // what the agent claimed (never decides)
  // what
  std::string action;   // transmit | acquire
  std::string channel;  // tcp | udp | unix | tls-openssl | ...
  std::string dest_ip;
  uint32_t dest_port = 0;
  std::string dest_host;
  std::string dest_peer_exe;
  // which identifier ("cookie" for cookie events, which carry `cookie`)
  std::string data_type;  // kind: mac_address, oaid, ..., cookie
  std::string instance;   // e.g. eth0
  std::string encoding;   // raw, nosep, upper, md5, ...
  std::string digest;     // keyed digest of the value
  int64_t offset = 0;
  std::string snippet;  // redacted context
  bool has_cookie = false;
  CookieRecord cookie;
  // context
  std::vector<std::string> scenarios;
  std::map<std::string, bool> consents;
  std::string run_id;  // the QA run that produced it ("" = none)
  // accounting
  uint64_t count = 1;
  int64_t first_seen_unix_ms = 0;
  int64_t last_seen_unix_ms = 0;
  // verdict
  std::string verdict;  // category name (common/verdict_categories.h)
  std::string finding;  // clear | observation | violation
  std::string statement;
  std::string statement_version;
  std::string entry;
  std::string explanation;

  // "ip:port", the hostname or the peer executable: what reports show.
  std::string Destination() const;
};

// Loss per cause as an agent last reported it (cumulative over its life).
struct DropCounts {
  uint64_t tap = 0;
  uint64_t ingress = 0;
  uint64_t spool = 0;
  uint64_t disk = 0;
  uint64_t dead_letter = 0;
  uint64_t Total() const { return tap + ingress + spool + disk + dead_letter; }
  bool operator==(const DropCounts&) const = default;
};

// What the store knows of one agent.
struct AgentRecord {
  std::string agent_id;
  std::string device_id;
  std::string device_class;
  std::string firmware;
  std::string agent_version;
  int64_t last_seen_unix_ms = 0;
  uint64_t stored_up_to = 0;  // every seq <= this is an event or a declared gap
  // Tap events the stored rows stand for (each row weighs its aggregated
  // count): with the drops, the accounting identity
  // events_stored + drops.Total() == events the agent's taps produced.
  uint64_t events_stored = 0;
  uint64_t gap_events = 0;  // seqs declared lost on the wire
  DropCounts drops;
};

struct VerdictFilter {
  std::string device_id;         // "" = any
  std::string device_class;      // "" = any
  std::string firmware;          // "" = any
  std::string sdk;               // "" = any
  std::string data_type;         // "" = any
  std::string verdict;           // "" = any
  bool violations_only = false;  // finding == "violation"
  std::string finding;           // "" = any; clear | observation | violation
  std::string agent_id;          // "" = any
  std::string run_id;            // "" = any
  int64_t since_unix_ms = 0;     // > 0: groups/events last seen at or after it
  int64_t until_unix_ms = 0;     // > 0: groups/events last seen before it
  size_t limit = 1000;
  size_t offset = 0;  // rows (groups for QueryVerdicts) to skip: pagination
};

// Events with the same (device, sdk, module, data_type, encoding, destination,
// cookie name and direction, verdict, statement, entry) grouped, with the
// summed count.
struct VerdictGroup {
  EventRecord sample;  // the most recent event of the group (seq, digest of it)
  uint64_t count = 0;
  int64_t first_seen_unix_ms = 0;
  int64_t last_seen_unix_ms = 0;
};

// One cell line of the SDK x data-type matrix: the events of one
// (sdk, data_type, verdict), summed. A cell is every line with its sdk and
// data_type; its colour is the worst finding among them.
struct MatrixRow {
  std::string sdk;  // "" = no SDK bound (unattributed or app code)
  std::string data_type;
  std::string verdict;
  std::string finding;
  uint64_t count = 0;  // sum of the events' count
  int64_t first_seen_unix_ms = 0;
  int64_t last_seen_unix_ms = 0;
};

// Events of one (time bucket, sdk, verdict), summed: the overview's chart.
struct HistogramRow {
  int64_t bucket_start_unix_ms = 0;  // multiple of the bucket width (UTC)
  std::string sdk;
  std::string verdict;
  std::string finding;
  uint64_t count = 0;
};

// One agent's batch or declared gap, for Store::Write. `generation` fences
// the write: when nonzero it must equal the agent's current ClaimStream
// generation, or the op fails with ABORTED (a newer stream, maybe on another
// collector sharing the database, owns the agent). 0 = unfenced.
struct WriteOp {
  std::string agent_id;
  uint64_t generation = 0;
  // Either events, whose seqs run contiguously from LastSeq(agent_id) + 1 ...
  std::vector<EventRecord> events;
  // ... or, when `events` is empty, the declared-lost range gap_from..gap_to.
  uint64_t gap_from = 0;
  uint64_t gap_to = 0;
  std::string gap_cause;
};

class Store {
 public:
  virtual ~Store() = default;

  // Group commit: every op in one durable transaction, each op checked on
  // its own (a savepoint each). The outer status fails only when nothing
  // could be committed (I/O, connection); otherwise one status per op, in
  // order: OK (committed), FAILED_PRECONDITION (the first seq does not follow
  // what is stored, counting earlier ops of the same call), INVALID_ARGUMENT
  // (not contiguous in itself, or empty), ABORTED (fenced out). Ops of one
  // agent are applied in order, so a stream's in-flight batches can share a
  // call. Verdict aggregates (QueryVerdicts, QueryMatrix, QueryHistogram) are
  // updated in the same transaction.
  // The default runs each op through AppendContiguous / RecordGap without
  // fencing (back-ends override it).
  virtual absl::StatusOr<std::vector<absl::Status>> Write(const std::vector<WriteOp>& ops);

  // Makes `collector_id` the owner of `agent_id`'s one live stream and
  // returns the new generation (strictly increasing per agent, across every
  // collector sharing the store). Writes fenced with an older generation
  // fail with ABORTED. The default returns 0: no fencing (a store that only
  // one collector may open).
  virtual absl::StatusOr<uint64_t> ClaimStream(const std::string& agent_id,
                                               const std::string& collector_id);
  // Current generation of `agent_id` (0 when never claimed), so that a
  // collector can end a stream another collector superseded.
  virtual absl::StatusOr<uint64_t> StreamGeneration(const std::string& agent_id);

  // Appends in one transaction. Events whose (agent_id, seq) is already
  // stored are skipped, so re-delivery never duplicates. Returns how many
  // rows were inserted.
  virtual absl::StatusOr<uint64_t> Append(const std::vector<EventRecord>& events) = 0;

  // The delivery path: one agent's batch, whose seqs must run contiguously
  // from LastSeq(agent_id) + 1. Checked and inserted in one transaction, so
  // that concurrent streams (or collectors sharing a database) can never
  // store past a hole: FAILED_PRECONDITION when the first seq does not follow,
  // INVALID_ARGUMENT when the batch is not contiguous in itself.
  virtual absl::Status AppendContiguous(const std::string& agent_id,
                                        const std::vector<EventRecord>& events) = 0;

  // Records seqs from..to as declared lost (SeqGap), under the same
  // contiguity rule as AppendContiguous.
  virtual absl::Status RecordGap(const std::string& agent_id, uint64_t from, uint64_t to,
                                 const std::string& cause) = 0;

  // Highest seq accounted for (stored event or declared gap); 0 when none.
  virtual absl::StatusOr<uint64_t> LastSeq(const std::string& agent_id) = 0;

  // Creates or updates an agent's row: identity and last seen on every
  // hello, drop counters whenever reported (never moving backwards).
  virtual absl::Status UpsertAgent(const AgentRecord& agent) = 0;
  virtual absl::Status UpdateDrops(const std::string& agent_id, const DropCounts& drops,
                                   int64_t seen_unix_ms) = 0;
  // Agents (one device, or all when ""), by agent id, with their counts.
  virtual absl::StatusOr<std::vector<AgentRecord>> ListAgents(const std::string& device_id,
                                                              size_t limit, size_t offset) = 0;

  // Groups matching every set field of `f`, non-clear first, then newest
  // last seen first; `limit`/`offset` page through them.
  virtual absl::StatusOr<std::vector<VerdictGroup>> QueryVerdicts(const VerdictFilter& f) = 0;
  // The matrix over the events matching `f` (every field but
  // limit/offset/agent_id/run_id, which are INVALID_ARGUMENT when set: the
  // aggregates do not keep them), ordered by sdk, data_type, verdict.
  // Served from aggregates maintained at ingest.
  virtual absl::StatusOr<std::vector<MatrixRow>> QueryMatrix(const VerdictFilter& f);
  // Per bucket of `bucket_ms` (a positive multiple of one hour), sdk and
  // verdict, over events matching `f`'s device_id, sdk, data_type, verdict,
  // finding and since/until (bucket granularity; other fields set are
  // INVALID_ARGUMENT). Ordered by bucket, sdk, verdict. From aggregates.
  virtual absl::StatusOr<std::vector<HistogramRow>> QueryHistogram(const VerdictFilter& f,
                                                                   int64_t bucket_ms);
  // Raw events, newest first, for drill-down and tests.
  virtual absl::StatusOr<std::vector<EventRecord>> QueryEvents(const VerdictFilter& f) = 0;
  virtual absl::StatusOr<uint64_t> CountEvents(const VerdictFilter& f) = 0;

  // Retention: deletes stored events last seen before `before_unix_ms`
  // (whole day partitions where the back-end has them) and returns how many
  // rows went. Aggregates, agents' accounting and LastSeq are kept: a pruned
  // event still counts as delivered. Default: UNIMPLEMENTED.
  virtual absl::StatusOr<uint64_t> PruneBefore(int64_t before_unix_ms);
};

// "sqlite:PATH" (or a bare path) or "postgresql://..." / "postgres://...".
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url);

// The URL as logs and messages may show it: a password in the user info is
// replaced by "***", and a query naming a password is dropped.
std::string RedactStoreUrl(const std::string& url);

}  // namespace idflow::store

#endif  // IDFLOW_COLLECTOR_STORE_STORE_H_

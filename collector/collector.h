// idflow-collector as a library: gRPC Ingest and Query services (callback
// API), the policy engine, the store, and the HTTP side (health, metrics).
#ifndef IDFLOW_COLLECTOR_COLLECTOR_H_
#define IDFLOW_COLLECTOR_COLLECTOR_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/auth.h"
#include "collector/policy/policy.h"
#include "collector/store/store.h"
#include "common/verdict_categories.h"

namespace grpc {
class Server;
}
namespace idflow::http {
class HttpServer;
}

namespace idflow::collector {

struct CollectorOptions {
  std::string listen = "127.0.0.1:0";  // gRPC HOST:PORT
  std::string http;                    // HTTP HOST:PORT, "" = off
  std::string store_url;               // sqlite:PATH | postgresql://...
  std::string policies_dir;
  // Owner name for stream claims in a shared store: unique per collector.
  // "" = HOSTNAME:GRPC_PORT.
  std::string collector_id;
  // Shared bearer token for Query, the dashboard and Ingest; "" = none.
  std::string auth_token;
  std::string agent_tokens_file;  // "AGENT_ID sha256:HEX" lines: per-agent Ingest tokens
  std::string tls_cert, tls_key, tls_client_ca;  // PEM paths; "" = plaintext
  // Ingest beyond loopback without any credential is refused unless this is set.
  bool allow_unauthenticated_ingest = false;

  // Ingest pipeline bounds (memory is bounded by them, never by the agents).
  // A stream stops reading (gRPC flow control then holds its agent) while it
  // has this many batches, or this many events, handed on and not committed.
  // Events bound the memory; the batch bound is loose because an agent at a
  // low rate sends many one-event batches, and a stream may only have as
  // many in one commit as it has in flight (at 8, 50 ms commits would cap
  // such a stream at 160 events/s).
  size_t max_batches_in_flight = 64;
  size_t max_events_in_flight = 16384;
  // Streams stop reading while the commit queue holds this many events (a
  // few commits' worth; at about 1 KiB an event, 64 MiB).
  size_t max_queued_events = 65536;
  // One Store::Write takes at most this much of the queue.
  size_t max_ops_per_commit = 256;
  size_t max_events_per_commit = 16384;
  // How often an idle stream's claim is checked against the store, so that a
  // stream superseded on another collector ends even with nothing to write.
  std::chrono::milliseconds claim_check_interval{1000};
  // Retention: events last seen longer ago than this are deleted (whole day
  // partitions on PostgreSQL); aggregates and accounting stay. 0 = kept.
  std::chrono::hours retention{0};
  std::chrono::milliseconds retention_interval{std::chrono::hours(1)};
};

// Metrics declared once: X(member, type, metric name, help). Each counter
// counts what was committed to the store, once (a refused or superseded batch
// counts in none of the event counters); gauges are the pipeline's state now.
#define IDFLOW_COLLECTOR_COUNTERS(X)                                                               \
  X(streams, counter, "idflow_collector_streams_total", "Ingest streams opened.")                  \
  X(batches, counter, "idflow_collector_batches_total", "Batches committed to the store.")         \
  X(events, counter, "idflow_collector_events_total", "Events committed to the store.")            \
  X(gap_events, counter, "idflow_collector_gap_events_total",                                      \
    "Sequence numbers agents declared lost (SeqGap) and the store recorded.")                      \
  X(store_errors, counter, "idflow_collector_store_errors_total", "Store operations that failed.") \
  X(cookie_verdicts, counter, "idflow_collector_cookie_verdicts_total",                            \
    "Cookie events committed.")                                                                    \
  X(rejected_streams, counter, "idflow_collector_rejected_streams_total",                          \
    "Streams ended for a protocol error (sequence, size, identity).")                              \
  X(unauthenticated, counter, "idflow_collector_unauthenticated_total",                            \
    "Streams or queries refused for missing or wrong credentials.")                                \
  X(superseded_streams, counter, "idflow_collector_superseded_streams_total",                      \
    "Streams replaced by a newer stream of the same agent.")                                       \
  X(fields_truncated, counter, "idflow_collector_fields_truncated_total",                          \
    "Event fields cut to their documented limit.")                                                 \
  X(pruned_events, counter, "idflow_collector_pruned_events_total",                                \
    "Stored events deleted by retention (--retention-days).")                                      \
  X(commits, counter, "idflow_collector_commits_total",                                            \
    "Store writes (group commits of the batches and gaps queued across streams).")                 \
  X(commit_ops, counter, "idflow_collector_commit_ops_total",                                      \
    "Batches and gaps written by those commits (per commit: divide by commits_total).")            \
  X(commit_us, counter, "idflow_collector_commit_microseconds_total",                              \
    "Time spent in store writes (mean latency: divide by commits_total).")                         \
  X(commit_cpu_us, counter, "idflow_collector_commit_cpu_microseconds_total",                      \
    "CPU time the committer spent in store writes (the rest of the commit time waits on "          \
    "fsync and locks).")                                                                           \
  X(backpressure_us, counter, "idflow_collector_backpressure_microseconds_total",                  \
    "Time streams spent not reading because their in-flight bound or the commit queue was "        \
    "full (gRPC flow control then holds the agents).")                                             \
  X(queued_ops, gauge, "idflow_collector_commit_queue_ops",                                        \
    "Batches and gaps waiting for the committer.")                                                 \
  X(queued_events, gauge, "idflow_collector_commit_queue_events",                                  \
    "Events waiting for the committer.")                                                           \
  X(last_commit_us, gauge, "idflow_collector_last_commit_microseconds",                            \
    "Duration of the latest store write.")

struct CollectorCounters {
#define IDFLOW_COUNTER_MEMBER_(member, type, name, help) std::atomic<uint64_t> member{0};
  IDFLOW_COLLECTOR_COUNTERS(IDFLOW_COUNTER_MEMBER_)
#undef IDFLOW_COUNTER_MEMBER_
  std::atomic<uint64_t> verdicts_by_category[kCategoryCount] = {};
};

// One live stream per agent id within this collector: each hello takes a new
// generation, and only the newest generation may commit (older streams end
// with ABORTED). Across collectors sharing a store, Store::ClaimStream fences
// the writes as well.
class StreamRegistry {
 public:
  uint64_t Claim(const std::string& agent_id) {
    std::lock_guard lock(mu_);
    return ++generation_[agent_id];
  }
  bool IsCurrent(const std::string& agent_id, uint64_t generation) {
    std::lock_guard lock(mu_);
    auto it = generation_.find(agent_id);
    return it != generation_.end() && it->second == generation;
  }

 private:
  std::mutex mu_;
  std::map<std::string, uint64_t> generation_;
};

class IngestPipeline;

class Collector {
 public:
  // Loads policies, opens the store, binds the ports. Errors are ready to print.
  static absl::StatusOr<std::unique_ptr<Collector>> Start(const CollectorOptions& options);
  // The same over a store opened by the caller (options.store_url unused).
  static absl::StatusOr<std::unique_ptr<Collector>> Start(const CollectorOptions& options,
                                                          std::unique_ptr<store::Store> store);
  ~Collector();

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  // Stops accepting, lets open streams finish what is in flight (bounded by a
  // grace period), then commits or fails what is still queued. Idempotent.
  void Shutdown();
  void Wait();

  // Exposed for in-process tests and the HTTP handlers.
  store::Store& store() { return *store_; }
  const policy::Policy& policy() const { return policy_; }
  CollectorCounters& counters() { return counters_; }
  StreamRegistry& streams() { return streams_; }
  const IngestAuth& auth() const { return auth_; }
  const CollectorOptions& options() const { return options_; }
  std::string MetricsText();

  class IngestService;
  class QueryService;

 private:
  Collector() = default;

  CollectorOptions options_;
  policy::Policy policy_;
  std::unique_ptr<store::Store> store_;
  CollectorCounters counters_;
  StreamRegistry streams_;
  IngestAuth auth_;
  // Declared after store_ and before server_: streams (gone first) hand
  // writes to it, and it writes to the store (gone last).
  std::unique_ptr<IngestPipeline> pipeline_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<QueryService> query_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<http::HttpServer> http_;
  int grpc_port_ = 0;
  int http_port_ = 0;
  std::once_flag shutdown_once_;
};

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_COLLECTOR_H_

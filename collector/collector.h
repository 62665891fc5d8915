// idflow-collector as a library: gRPC Ingest and Query services (callback
// API), the policy engine, the store, and the HTTP side (health, metrics).
#ifndef IDFLOW_COLLECTOR_COLLECTOR_H_
#define IDFLOW_COLLECTOR_COLLECTOR_H_

#include <atomic>
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
  std::string collector_id = "collector";
  // Shared bearer token for Query, the dashboard and Ingest; "" = none.
  std::string auth_token;
  std::string agent_tokens_file;  // "AGENT_ID sha256:HEX" lines: per-agent Ingest tokens
  std::string tls_cert, tls_key, tls_client_ca;  // PEM paths; "" = plaintext
  // Ingest beyond loopback without any credential is refused unless this is set.
  bool allow_unauthenticated_ingest = false;
};

// Counters declared once: X(member, metric name, help). Each counts what
// was committed to the store, once (a refused or superseded batch counts in
// none of the event counters).
#define IDFLOW_COLLECTOR_COUNTERS(X)                                                       \
  X(streams, "idflow_collector_streams_total", "Ingest streams opened.")                   \
  X(batches, "idflow_collector_batches_total", "Batches committed to the store.")          \
  X(events, "idflow_collector_events_total", "Events committed to the store.")             \
  X(gap_events, "idflow_collector_gap_events_total",                                       \
    "Sequence numbers agents declared lost (SeqGap) and the store recorded.")              \
  X(store_errors, "idflow_collector_store_errors_total", "Store operations that failed.")  \
  X(cookie_verdicts, "idflow_collector_cookie_verdicts_total", "Cookie events committed.") \
  X(rejected_streams, "idflow_collector_rejected_streams_total",                           \
    "Streams ended for a protocol error (sequence, size, identity).")                      \
  X(unauthenticated, "idflow_collector_unauthenticated_total",                             \
    "Streams or queries refused for missing or wrong credentials.")                        \
  X(superseded_streams, "idflow_collector_superseded_streams_total",                       \
    "Streams replaced by a newer stream of the same agent.")                               \
  X(fields_truncated, "idflow_collector_fields_truncated_total",                           \
    "Event fields cut to their documented limit.")

struct CollectorCounters {
#define IDFLOW_COUNTER_MEMBER_(member, name, help) std::atomic<uint64_t> member{0};
  IDFLOW_COLLECTOR_COUNTERS(IDFLOW_COUNTER_MEMBER_)
#undef IDFLOW_COUNTER_MEMBER_
  std::atomic<uint64_t> verdicts_by_category[kCategoryCount] = {};
};

// One live stream per agent id: each hello takes a new generation, and only
// the newest generation may commit (older streams end with ABORTED).
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

class Collector {
 public:
  // Loads policies, opens the store, binds the ports. Errors are ready to print.
  static absl::StatusOr<std::unique_ptr<Collector>> Start(const CollectorOptions& options);
  ~Collector();

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
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
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<QueryService> query_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<http::HttpServer> http_;
  int grpc_port_ = 0;
  int http_port_ = 0;
};

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_COLLECTOR_H_

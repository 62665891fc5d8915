// idflow-collector as a library: gRPC Ingest and Query services (callback
// API), the policy engine, the store, and the HTTP side (health, metrics).
#ifndef IDFLOW_COLLECTOR_COLLECTOR_H_
#define IDFLOW_COLLECTOR_COLLECTOR_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
  std::string auth_token;  // bearer token for Query and the dashboard; "" = none
  std::string tls_cert, tls_key, tls_client_ca;  // PEM paths; "" = plaintext
};

struct CollectorCounters {
  std::atomic<uint64_t> streams{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> store_errors{0};
  std::atomic<uint64_t> cookie_verdicts{0};
  std::atomic<uint64_t> verdicts_by_category[kCategoryCount] = {};
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
  std::string MetricsText();

  class IngestService;
  class QueryService;

 private:
  Collector() = default;

  CollectorOptions options_;
  policy::Policy policy_;
  std::unique_ptr<store::Store> store_;
  CollectorCounters counters_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<QueryService> query_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<http::HttpServer> http_;
  int grpc_port_ = 0;
  int http_port_ = 0;
};

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_COLLECTOR_H_

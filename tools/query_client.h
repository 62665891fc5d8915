// The Query API as idflowctl uses it: shared connection flags (collector,
// TLS, token, timeout) and listings that follow every page.
#ifndef IDFLOW_TOOLS_QUERY_CLIENT_H_
#define IDFLOW_TOOLS_QUERY_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/flags.h"
#include "idflow/v1/query.grpc.pb.h"

namespace idflow::tools {

// --collector, --auth-token-file, --timeout, --tls-ca, --tls-cert, --tls-key.
void AddQueryFlags(FlagSet* flags);

class QueryClient {
 public:
  // Errors (unreadable files, bad numbers) are ready to print.
  static absl::StatusOr<QueryClient> FromFlags(const FlagSet& flags);

  // Every page of a listing; errors name the collector.
  absl::StatusOr<std::vector<idflow::v1::Verdict>> ListVerdicts(
      const idflow::v1::VerdictFilter& filter, size_t max_items) const;
  // Stored events, newest first, at most `max_items`.
  absl::StatusOr<std::vector<idflow::v1::StoredEvent>> ListEvents(
      const idflow::v1::VerdictFilter& filter, size_t max_items) const;
  absl::StatusOr<std::vector<idflow::v1::AgentStatus>> ListAgents(const std::string& device) const;

 private:
  template <typename Request, typename Response, typename Call>
  absl::Status EachPage(Request req, Call call,
                        const std::function<bool(const Response&)>& on_page) const;

  std::string address_;
  std::string token_;
  int timeout_seconds_ = 10;
  std::shared_ptr<idflow::v1::Query::Stub> stub_;
};

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_QUERY_CLIENT_H_

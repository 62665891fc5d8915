// Who may speak for an agent and who may read (docs/SECURITY.md). Plain C++
// over what the transport edge extracts: the bearer token and the verified
// certificate identities of the peer.
#ifndef IDFLOW_COLLECTOR_AUTH_H_
#define IDFLOW_COLLECTOR_AUTH_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace idflow::collector {

struct IngestAuth {
  // --auth-token-file: one shared bearer token for Query, the dashboard and
  // Ingest. "" = none.
  std::string shared_token;
  // --agent-tokens FILE: agent id -> SHA-256 (hex) of that agent's token.
  std::map<std::string, std::string> agent_token_sha256;
  // Mutual TLS with a client CA: the agent id must be the certificate's
  // identity (CN, or a SAN equal to the id or ending in "/agents/<id>").
  bool mtls = false;

  bool Any() const { return !shared_token.empty() || !agent_token_sha256.empty() || mtls; }
};

// Reads "AGENT_ID sha256:HEX" lines ('#' comments, blank lines allowed).
// Errors name FILE:LINE.
absl::StatusOr<std::map<std::string, std::string>> LoadAgentTokens(const std::string& path);

// Compares in time independent of where the strings differ (and of their
// lengths: both sides are hashed first).
bool TokensMatch(const std::string& presented, const std::string& expected);

// The token of an "authorization: Bearer T" header value; "" when absent.
std::string BearerToken(const std::string& header_value);

// May the peer speak for `agent_id`? UNAUTHENTICATED for a missing or wrong
// token, PERMISSION_DENIED for a certificate naming another agent.
absl::Status AuthorizeAgent(const IngestAuth& auth, const std::string& bearer,
                            const std::vector<std::string>& peer_identities,
                            const std::string& agent_id);

// True for 127.0.0.0/8, [::1] and localhost listen addresses.
bool IsLoopbackListen(const std::string& host_port);

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_AUTH_H_

// Agent messages for tests that speak Ingest.Stream directly: a hello, and
// batches of one ordinary event (an SDK sending the MAC to its own host).
#ifndef IDFLOW_TESTS_COLLECTOR_INGEST_MESSAGES_H_
#define IDFLOW_TESTS_COLLECTOR_INGEST_MESSAGES_H_

#include <cstdint>
#include <string>

#include "idflow/v1/ingest.pb.h"

namespace idflow::testing {

inline idflow::v1::Event IngestEvent(const std::string& agent, uint64_t seq) {
  idflow::v1::Event e;
  e.set_agent_id(agent);
  e.set_seq(seq);
  e.mutable_device()->set_id("dev-1");
  e.mutable_origin()->add_call_chain()->set_path("/opt/app/lib/libidm_sdk.so");
  e.set_action(idflow::v1::ACTION_TRANSMIT);
  e.set_channel("tcp");
  e.mutable_destination()->set_hostname("idm.discovery.mi.com");
  e.mutable_identifier()->set_kind("mac_address");
  e.mutable_identifier()->set_encoding("raw");
  e.mutable_identifier()->set_digest(std::string(64, 'd'));
  e.mutable_context()->add_scenarios("device_discovery");
  return e;
}

// Seqs first..first+n-1.
inline idflow::v1::AgentMessage IngestBatch(const std::string& agent, uint64_t first, uint64_t n) {
  idflow::v1::AgentMessage m;
  for (uint64_t s = first; s < first + n; ++s)
    *m.mutable_batch()->add_events() = IngestEvent(agent, s);
  return m;
}

inline idflow::v1::AgentMessage IngestHello(const std::string& agent) {
  idflow::v1::AgentMessage m;
  m.mutable_hello()->set_agent_id(agent);
  m.mutable_hello()->mutable_device()->set_id("dev-1");
  return m;
}

}  // namespace idflow::testing

#endif  // IDFLOW_TESTS_COLLECTOR_INGEST_MESSAGES_H_

// The transport edge: protobuf events to the plain types of the policy engine
// and the store, and back for the query API.
#ifndef IDFLOW_COLLECTOR_CONVERT_H_
#define IDFLOW_COLLECTOR_CONVERT_H_

#include "collector/policy/cookies.h"
#include "collector/policy/policy.h"
#include "collector/store/store.h"
#include "idflow/v1/event.pb.h"
#include "idflow/v1/query.pb.h"

namespace idflow::collector {

const char* ActionName(idflow::v1::Action action);
// "set_by_server", "sent_by_client", "" for unspecified.
const char* CookieDirectionName(idflow::v1::CookieDirection d);

// The event as received. origin.module and origin.sdk are the agent's claims:
// they land in sdk_hint only; JudgeEvent decides module and SDK.
store::EventRecord ToRecord(const idflow::v1::Event& ev);
policy::Flow ToFlow(const store::EventRecord& rec);
policy::CookieObservation ToCookieObservation(const store::EventRecord& rec);

// Judges a record against the loaded policy (cookie events against the cookie
// policies, identifier events against the statements) and fills the
// responsible module, SDK, category, finding and explanation. Returns the
// category.
Category JudgeEvent(const policy::Policy& policy, store::EventRecord* rec);

store::VerdictFilter FromProto(const idflow::v1::VerdictFilter& f);
idflow::v1::Verdict ToProto(const store::VerdictGroup& g);
idflow::v1::StoredEvent ToProto(const store::EventRecord& rec);
idflow::v1::AgentStatus ToProto(const store::AgentRecord& agent);

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_CONVERT_H_

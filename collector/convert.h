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

store::EventRecord ToRecord(const idflow::v1::Event& ev);
policy::Flow ToFlow(const store::EventRecord& rec);
void ApplyVerdict(const policy::Verdict& v, store::EventRecord* rec);

// Cookie events: the site is the destination host; a cookie seen on the wire
// between an app and that host is first-party to it (on-device there is no
// page origin to call it third-party against).
policy::CookieObservation ToCookieObservation(const idflow::v1::Event& ev);
// Verdict fields only; ToRecord stores data_type "cookie:NAME", encoding = direction.
void ApplyCookieVerdict(const policy::CookieVerdict& v, store::EventRecord* rec);

store::VerdictFilter FromProto(const idflow::v1::VerdictFilter& f);
idflow::v1::Verdict ToProto(const store::VerdictGroup& g);
idflow::v1::StoredEvent ToProto(const store::EventRecord& rec);

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_CONVERT_H_

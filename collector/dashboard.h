// The collector's HTTP side: /healthz, /metrics (Prometheus text), the
// violations dashboard (/) and its JSON API (/api/verdicts, /api/agents).
#ifndef IDFLOW_COLLECTOR_DASHBOARD_H_
#define IDFLOW_COLLECTOR_DASHBOARD_H_

#include <string>
#include <vector>

#include "collector/http/http_server.h"
#include "collector/store/store.h"

namespace idflow::collector {

class Collector;

void RegisterHttpRoutes(http::HttpServer* server, Collector* collector);

// JSON array of verdict groups, the fields of `idflowctl violations --format json`.
std::string VerdictGroupsJson(const std::vector<store::VerdictGroup>& groups);
// {"agents":[...]}: per agent, where its data stands and its losses per cause.
std::string AgentsJson(const std::vector<store::AgentRecord>& agents);

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_DASHBOARD_H_

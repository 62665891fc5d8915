// The collector's HTTP side: /healthz, /metrics (Prometheus text), the
// dashboard's page (collector/web/, embedded) and its JSON API behind the
// bearer token: /api/overview, /api/matrix, /api/verdicts, /api/agents,
// /api/devices, /api/devices/{id}/timeline, /api/policies,
// /api/policies/diff and /api/changes (the live-update cursor).
// Parameters and answers: collector/web/README.md ("API").
#ifndef IDFLOW_COLLECTOR_DASHBOARD_H_
#define IDFLOW_COLLECTOR_DASHBOARD_H_

#include <string>
#include <vector>

#include "collector/http/http_server.h"
#include "collector/store/store.h"

namespace idflow::collector {

class Collector;

void RegisterHttpRoutes(http::HttpServer* server, Collector* collector);

// {"agents":[...]}: per agent, where its data stands and its losses per cause.
std::string AgentsJson(const std::vector<store::AgentRecord>& agents);

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_DASHBOARD_H_

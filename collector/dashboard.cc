#include "collector/dashboard.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "collector/collector.h"
#include "common/json.h"
#include "common/verdict_categories.h"

namespace idflow::collector {
namespace {

// A single self-contained page: no external assets, so it works on an
// offline QA network. The token, when one is configured, is read from the
// URL fragment (#token=...), which browsers never send to the server.
constexpr char kDashboardHtml[] = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>idflow: declared vs observed identifier flows</title>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
 header{background:#1d232a;color:#fff;padding:12px 20px}
 header h1{font-size:18px;margin:0}
 main{padding:16px 20px}
 .cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
 .card{background:#fff;border-radius:8px;padding:10px 14px;min-width:120px;box-shadow:0 1px 2px #0002}
 .card b{display:block;font-size:22px}
 form{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:12px}
 input,select,button{font:inherit;padding:4px 8px}
 table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
 th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}
 th{background:#eef0f3;font-weight:600}
 td.expl{color:#4a5560;max-width:520px}
 .v{font-weight:600;border-radius:4px;padding:1px 6px;white-space:nowrap}
 .clear{background:#dff3e4;color:#145c2a}
 .bad{background:#fde2e1;color:#8a1c13}
 .warn{background:#fff1cc;color:#7a5400}
 .obs{background:#e3ecfa;color:#1f4a8a}
 tr.observation td{color:#4a5560}
 #status,#gaps-status{color:#4a5560;margin:8px 0}
 h2{font-size:16px;margin:16px 0 8px}
 td.lost{color:#8a1c13;font-weight:600}
</style></head>
<body><header><h1>idflow &mdash; observed identifier flows judged against declared policies</h1></header>
<main>
<div class="cards" id="cards"></div>
<section id="gaps"><h2>Data gaps</h2><div id="gaps-status">loading&hellip;</div>
<table><thead><tr><th>agent</th><th>device</th><th>last seen</th><th>stored up to</th>
<th>events</th><th>lost: tap</th><th>ingress</th><th>spool</th><th>disk</th><th>dead letter</th></tr></thead>
<tbody id="gap-rows"></tbody></table></section>
<h2>Verdicts</h2>
<form id="filters">
 <input name="device" placeholder="device id">
 <input name="sdk" placeholder="SDK">
 <select name="verdict"><option value="">all verdicts</option>@CATEGORY_OPTIONS@</select>
 <select name="show"><option value="violations">violations only</option>
  <option value="findings">violations and observations</option>
  <option value="all">everything, clear included</option></select>
 <button type="submit">Apply</button>
</form>
<div id="status">loading&hellip;</div>
<table><thead><tr><th>finding</th><th>verdict</th><th>device</th><th>SDK</th><th>module</th><th>data type</th>
<th>encoding</th><th>destination</th><th>count</th><th>statement / entry</th><th>explanation</th></tr></thead>
<tbody id="rows"></tbody></table>
</main>
<script>
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const headers = token ? {Authorization: 'Bearer ' + token} : {};
const cls = v => v.finding === 'clear' ? 'clear' : v.finding === 'observation' ? 'obs'
    : (v.verdict === 'vague' ? 'warn' : 'bad');
function cell(text, c) { const td = document.createElement('td'); td.textContent = text; if (c) td.className = c; return td; }
async function load() {
  const f = new FormData(document.getElementById('filters'));
  const q = new URLSearchParams();
  for (const k of ['device', 'sdk', 'verdict']) if (f.get(k)) q.set(k, f.get(k));
  const show = f.get('show') || 'violations';
  q.set('violations_only', show === 'violations' ? 'true' : 'false');
  const status = document.getElementById('status');
  try {
    const r = await fetch('/api/verdicts?' + q, {headers});
    if (!r.ok) { status.textContent = 'error: HTTP ' + r.status; return; }
    const data = await r.json();
    const rows = document.getElementById('rows');
    rows.replaceChildren();
    const counts = {};
    for (const v of data.verdicts) {
      if (show === 'findings' && v.finding === 'clear') continue;
      counts[v.finding] = (counts[v.finding] || 0) + v.count;
      const tr = document.createElement('tr');
      tr.className = v.finding;
      const vt = cell(''); const span = document.createElement('span');
      span.className = 'v ' + cls(v); span.textContent = v.verdict; vt.appendChild(span);
      const data = v.cookie ? 'cookie ' + v.cookie : v.data_type;
      const mod = cell((v.module || '-').split('/').pop());
      mod.title = 'call chain (innermost first): ' + (v.call_chain || []).join(' \u2190 ');
      tr.append(cell(v.finding), vt, cell(v.device), cell(v.sdk || '-'), mod,
                cell(data), cell(v.cookie_direction || v.encoding), cell(v.destination || '-'),
                cell(String(v.count)),
                cell(v.statement ? v.statement + ' ' + v.statement_version + ' / ' + (v.entry || '-') : '-'),
                cell(v.explanation, 'expl'));
      rows.appendChild(tr);
    }
    const cards = document.getElementById('cards');
    cards.replaceChildren();
    for (const [k, n] of Object.entries(counts)) {
      const d = document.createElement('div'); d.className = 'card';
      const b = document.createElement('b'); b.textContent = n; d.append(b, document.createTextNode(k));
      cards.appendChild(d);
    }
    status.textContent = rows.children.length + ' verdict groups';
  } catch (e) { status.textContent = 'error: ' + e; }
}
// "No violations" must never mean "no data": every agent's reported losses.
async function loadGaps() {
  const status = document.getElementById('gaps-status');
  try {
    const r = await fetch('/api/agents', {headers});
    if (!r.ok) { status.textContent = 'error: HTTP ' + r.status; return; }
    const data = await r.json();
    const rows = document.getElementById('gap-rows');
    rows.replaceChildren();
    let lost = 0;
    for (const a of data.agents) {
      const tr = document.createElement('tr');
      const d = a.drops;
      tr.append(cell(a.agent_id), cell(a.device), cell(a.last_seen_unix_ms ? new Date(a.last_seen_unix_ms).toISOString() : '-'),
                cell(String(a.stored_up_to)), cell(String(a.events_stored)));
      for (const k of ['tap', 'ingress', 'spool', 'disk', 'dead_letter']) {
        lost += d[k];
        tr.append(cell(String(d[k]), d[k] ? 'lost' : ''));
      }
      rows.appendChild(tr);
    }
    status.textContent = data.agents.length + ' agents, ' + lost + ' events reported lost' +
        (lost ? ': verdicts below do not cover them' : '');
  } catch (e) { status.textContent = 'error: ' + e; }
}
function refresh() { load(); loadGaps(); }
document.getElementById('filters').addEventListener('submit', e => { e.preventDefault(); load(); });
refresh();
setInterval(refresh, 10000);
</script></body></html>
)HTML";

}  // namespace

std::string VerdictGroupsJson(const std::vector<store::VerdictGroup>& groups) {
  std::string out = "{\"verdicts\":[";
  bool first = true;
  for (const auto& g : groups) {
    const store::EventRecord& s = g.sample;
    auto q = [](const std::string& v) { return absl::StrCat("\"", JsonEscape(v), "\""); };
    std::string chain = absl::StrJoin(
        s.call_chain, ",", [&](std::string* o, const auto& m) { absl::StrAppend(o, q(m.path)); });
    absl::StrAppend(
        &out, first ? "" : ",", "{\"finding\":", q(s.finding), ",\"call_chain\":[", chain, "]",
        s.has_cookie ? absl::StrCat(",\"cookie\":", q(s.cookie.name),
                                    ",\"cookie_direction\":", q(s.cookie.direction))
                     : "",
        ",\"device\":", q(s.device_id), ",\"sdk\":", q(s.sdk), ",\"module\":", q(s.module),
        ",\"data_type\":", q(s.data_type), ",\"encoding\":", q(s.encoding),
        ",\"destination\":", q(s.Destination()), ",\"verdict\":", q(s.verdict),
        ",\"statement\":", q(s.statement), ",\"statement_version\":", q(s.statement_version),
        ",\"entry\":", q(s.entry), ",\"explanation\":", q(s.explanation), ",\"count\":", g.count,
        ",\"first_seen_unix_ms\":", g.first_seen_unix_ms,
        ",\"last_seen_unix_ms\":", g.last_seen_unix_ms, "}");
    first = false;
  }
  out += "]}";
  return out;
}

std::string AgentsJson(const std::vector<store::AgentRecord>& agents) {
  std::string out = "{\"agents\":[";
  bool first = true;
  for (const auto& a : agents) {
    auto q = [](const std::string& v) { return absl::StrCat("\"", JsonEscape(v), "\""); };
    absl::StrAppend(&out, first ? "" : ",", "{\"agent_id\":", q(a.agent_id),
                    ",\"device\":", q(a.device_id), ",\"last_seen_unix_ms\":", a.last_seen_unix_ms,
                    ",\"stored_up_to\":", a.stored_up_to, ",\"events_stored\":", a.events_stored,
                    ",\"gap_events\":", a.gap_events, ",\"drops\":{\"tap\":", a.drops.tap,
                    ",\"ingress\":", a.drops.ingress, ",\"spool\":", a.drops.spool,
                    ",\"disk\":", a.drops.disk, ",\"dead_letter\":", a.drops.dead_letter, "}}");
    first = false;
  }
  out += "]}";
  return out;
}

void RegisterHttpRoutes(http::HttpServer* server, Collector* c) {
  server->Handle("GET", "/healthz",
                 [](const http::Request&) { return http::Response::Text(200, "ok\n"); });
  server->Handle("GET", "/metrics", [c](const http::Request&) {
    http::Response r = http::Response::Text(200, c->MetricsText());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });
  server->Handle(
      "GET", "/api/verdicts",
      [c](const http::Request& req) {
        auto params = req.QueryParams();
        store::VerdictFilter f;
        f.device_id = params["device"];
        f.sdk = params["sdk"];
        f.verdict = params["verdict"];
        f.violations_only = params["violations_only"] == "true";
        f.finding = params["finding"];
        if (!f.finding.empty() && f.finding != "clear" && f.finding != "observation" &&
            f.finding != "violation") {
          return http::Response::Json(
              400, "{\"error\":\"finding must be clear, observation or violation\"}");
        }
        if (!params["limit"].empty()) {
          size_t limit = 0;
          if (!absl::SimpleAtoi(params["limit"], &limit) || limit == 0) {
            return http::Response::Json(400, "{\"error\":\"limit must be a positive integer\"}");
          }
          f.limit = limit;
        }
        auto groups = c->store().QueryVerdicts(f);
        if (!groups.ok()) {
          return http::Response::Json(
              500, absl::StrCat("{\"error\":\"", JsonEscape(groups.status().ToString()), "\"}"));
        }
        return http::Response::Json(200, VerdictGroupsJson(*groups));
      },
      http::Access::kProtected);
  server->Handle(
      "GET", "/api/agents",
      [c](const http::Request& req) {
        auto params = req.QueryParams();
        auto agents = c->store().ListAgents(params["device"], 1000, 0);
        if (!agents.ok()) {
          return http::Response::Json(
              500, absl::StrCat("{\"error\":\"", JsonEscape(agents.status().ToString()), "\"}"));
        }
        return http::Response::Json(200, AgentsJson(*agents));
      },
      http::Access::kProtected);
  // The verdict filter offers every category of the one list.
  static const std::string page = [] {
    std::string options;
    for (const CategoryInfo& info : kCategories) {
      absl::StrAppend(&options, "<option>", info.name, "</option>");
    }
    return absl::StrReplaceAll(kDashboardHtml, {{"@CATEGORY_OPTIONS@", options}});
  }();
  server->Handle("GET", "/", [](const http::Request& req) {
    if (req.path != "/" && req.path != "/index.html")
      return http::Response::Text(404, "not found\n");
    return http::Response::Html(200, page);
  });
}

}  // namespace idflow::collector

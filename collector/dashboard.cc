#include "collector/dashboard.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collector/collector.h"
#include "common/json.h"

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
 #status{color:#4a5560;margin:8px 0}
</style></head>
<body><header><h1>idflow &mdash; observed identifier flows judged against declared policies</h1></header>
<main>
<div class="cards" id="cards"></div>
<form id="filters">
 <input name="device" placeholder="device id">
 <input name="sdk" placeholder="SDK">
 <select name="verdict"><option value="">all verdicts</option>
  <option>clear</option><option>vague</option><option>omitted</option><option>undeclared_party</option>
  <option>wrong_recipient</option><option>out_of_scenario</option><option>no_consent</option>
  <option>method_mismatch</option></select>
 <label><input type="checkbox" name="violations_only" checked> violations only</label>
 <button type="submit">Apply</button>
</form>
<div id="status">loading&hellip;</div>
<table><thead><tr><th>verdict</th><th>device</th><th>SDK</th><th>module</th><th>data type</th>
<th>encoding</th><th>destination</th><th>count</th><th>statement / entry</th><th>explanation</th></tr></thead>
<tbody id="rows"></tbody></table>
</main>
<script>
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const headers = token ? {Authorization: 'Bearer ' + token} : {};
const cls = v => v === 'clear' ? 'clear' : (v === 'vague' ? 'warn' : 'bad');
function cell(text, c) { const td = document.createElement('td'); td.textContent = text; if (c) td.className = c; return td; }
async function load() {
  const f = new FormData(document.getElementById('filters'));
  const q = new URLSearchParams();
  for (const k of ['device', 'sdk', 'verdict']) if (f.get(k)) q.set(k, f.get(k));
  q.set('violations_only', f.get('violations_only') ? 'true' : 'false');
  const status = document.getElementById('status');
  try {
    const r = await fetch('/api/verdicts?' + q, {headers});
    if (!r.ok) { status.textContent = 'error: HTTP ' + r.status; return; }
    const data = await r.json();
    const rows = document.getElementById('rows');
    rows.replaceChildren();
    const counts = {};
    for (const v of data.verdicts) {
      counts[v.verdict] = (counts[v.verdict] || 0) + v.count;
      const tr = document.createElement('tr');
      const vt = cell(''); const span = document.createElement('span');
      span.className = 'v ' + cls(v.verdict); span.textContent = v.verdict; vt.appendChild(span);
      tr.append(vt, cell(v.device), cell(v.sdk || '-'), cell(v.module.split('/').pop()),
                cell(v.data_type), cell(v.encoding), cell(v.destination), cell(String(v.count)),
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
    status.textContent = data.verdicts.length + ' verdict groups';
  } catch (e) { status.textContent = 'error: ' + e; }
}
document.getElementById('filters').addEventListener('submit', e => { e.preventDefault(); load(); });
load();
setInterval(load, 10000);
</script></body></html>
)HTML";

}  // namespace

std::string VerdictGroupsJson(const std::vector<store::VerdictGroup>& groups) {
  std::string out = "{\"verdicts\":[";
  bool first = true;
  for (const auto& g : groups) {
    const store::EventRecord& s = g.sample;
    auto q = [](const std::string& v) { return absl::StrCat("\"", JsonEscape(v), "\""); };
    absl::StrAppend(&out, first ? "" : ",", "{\"device\":", q(s.device_id), ",\"sdk\":", q(s.sdk),
                    ",\"module\":", q(s.module), ",\"data_type\":", q(s.data_type),
                    ",\"encoding\":", q(s.encoding), ",\"destination\":", q(s.Destination()),
                    ",\"verdict\":", q(s.verdict), ",\"statement\":", q(s.statement),
                    ",\"statement_version\":", q(s.statement_version), ",\"entry\":", q(s.entry),
                    ",\"explanation\":", q(s.explanation), ",\"count\":", g.count,
                    ",\"first_seen_unix_ms\":", g.first_seen_unix_ms,
                    ",\"last_seen_unix_ms\":", g.last_seen_unix_ms, "}");
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
  server->Handle("GET", "/", [](const http::Request& req) {
    if (req.path != "/" && req.path != "/index.html")
      return http::Response::Text(404, "not found\n");
    return http::Response::Html(200, kDashboardHtml);
  });
}

}  // namespace idflow::collector

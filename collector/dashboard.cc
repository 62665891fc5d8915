#include "collector/dashboard.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "collector/collector.h"
#include "collector/policy/diff.h"
#include "collector/web/web_assets.h"
#include "common/json.h"
#include "common/verdict_categories.h"
#include "nlohmann/json.hpp"

namespace idflow::collector {
namespace {

using nlohmann::json;

constexpr size_t kDefaultPage = 50;
constexpr size_t kMaxPage = 1000;
// A device whose agent said hello, and which sent no event, within this long
// is "reporting"; beyond it, "silent" (overridable per request).
constexpr int64_t kDefaultSilentAfterMs = 15 * 60 * 1000;
constexpr int64_t kHourMs = 3600 * 1000;
// Agents looked at for the overview's device and data-gap counts.
constexpr size_t kOverviewAgents = 10000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every answer of the page and the API: nothing is framed, sniffed or loaded
// from elsewhere (the page must work offline and keep data in the page).
void Harden(http::Response* r) {
  r->headers.emplace_back("Content-Security-Policy",
                          "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                          "base-uri 'none'; frame-ancestors 'none'");
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back("Cache-Control", "no-store");
}

http::Response JsonResponse(int status, const json& body) {
  http::Response r =
      http::Response::Json(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
  Harden(&r);
  return r;
}

http::Response Error(int status, const std::string& message) {
  return JsonResponse(status, json{{"error", message}});
}

http::Response StoreError(const absl::Status& s) {
  // A filter the back-end cannot serve is the caller's mistake, not ours.
  if (s.code() == absl::StatusCode::kInvalidArgument) return Error(400, std::string(s.message()));
  return Error(s.code() == absl::StatusCode::kUnimplemented ? 501 : 500, s.ToString());
}

// Query parameters checked against what a route accepts: an unknown or
// malformed one is a 400 naming it, so a typo never silently widens a view.
class Params {
 public:
  Params(const http::Request& req, const std::vector<std::string>& allowed)
      : values_(req.QueryParams()) {
    for (const auto& [k, v] : values_) {
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        Fail(absl::StrCat("unknown parameter \"", k, "\" (accepted: ", absl::StrJoin(allowed, ", "),
                          ")"));
      }
    }
  }

  std::string Str(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() ? "" : it->second;
  }
  bool Has(const std::string& key) const { return !Str(key).empty(); }

  int64_t Int(const std::string& key, int64_t def, int64_t min, int64_t max) {
    std::string v = Str(key);
    if (v.empty()) return def;
    int64_t n = 0;
    if (!absl::SimpleAtoi(v, &n) || n < min || n > max) {
      Fail(absl::StrCat(key, " must be an integer from ", min, " to ", max, ", not \"", v, "\""));
      return def;
    }
    return n;
  }

  bool Bool(const std::string& key) {
    std::string v = Str(key);
    if (v.empty() || v == "false") return false;
    if (v == "true") return true;
    Fail(absl::StrCat(key, " must be true or false, not \"", v, "\""));
    return false;
  }

  void Fail(std::string message) {
    if (!error_) error_ = std::move(message);
  }
  const std::optional<std::string>& error() const { return error_; }

 private:
  std::map<std::string, std::string> values_;
  std::optional<std::string> error_;
};

const std::vector<std::string> kFilterKeys = {
    "device",          "device_class", "firmware", "sdk",   "data_type", "verdict", "finding",
    "violations_only", "agent",        "run",      "since", "until",     "limit",   "offset"};

// The verdict filter from the request's parameters; pagination defaults to
// one page of kDefaultPage.
store::VerdictFilter FilterFrom(Params& p) {
  store::VerdictFilter f;
  f.device_id = p.Str("device");
  f.device_class = p.Str("device_class");
  f.firmware = p.Str("firmware");
  f.sdk = p.Str("sdk");
  f.data_type = p.Str("data_type");
  f.verdict = p.Str("verdict");
  if (!f.verdict.empty() && !CategoryFromName(f.verdict)) {
    p.Fail(absl::StrCat("verdict \"", f.verdict, "\" is no verdict category"));
  }
  f.finding = p.Str("finding");
  if (!f.finding.empty() && f.finding != "clear" && f.finding != "observation" &&
      f.finding != "violation") {
    p.Fail("finding must be clear, observation or violation");
  }
  f.violations_only = p.Bool("violations_only");
  f.agent_id = p.Str("agent");
  f.run_id = p.Str("run");
  f.since_unix_ms = p.Int("since", 0, 0, INT64_MAX);
  f.until_unix_ms = p.Int("until", 0, 0, INT64_MAX);
  if (f.since_unix_ms > 0 && f.until_unix_ms > 0 && f.until_unix_ms <= f.since_unix_ms) {
    p.Fail("until must be after since");
  }
  f.limit = static_cast<size_t>(p.Int("limit", kDefaultPage, 1, kMaxPage));
  f.offset = static_cast<size_t>(p.Int("offset", 0, 0, INT32_MAX));
  return f;
}

// Pages are fetched one row longer than asked: the extra row only says
// whether there is a next page.
template <typename T>
json PageOf(std::vector<T>* rows, size_t limit, size_t offset) {
  bool more = rows->size() > limit;
  if (more) rows->resize(limit);
  return json{{"offset", offset},
              {"limit", limit},
              {"next_offset", more ? json(offset + limit) : json(nullptr)}};
}

int FindingRank(std::string_view finding, std::string_view verdict) {
  if (finding == "violation") return verdict == "vague" ? 3 : 4;
  if (finding == "observation") return 2;
  return finding == "clear" ? 1 : 0;
}

json CallChainJson(const std::vector<store::ModuleRef>& chain) {
  json out = json::array();
  for (const auto& m : chain) out.push_back({{"path", m.path}, {"build_id", m.build_id}});
  return out;
}

json ConsentsJson(const std::map<std::string, bool>& consents) {
  json out = json::object();
  for (const auto& [k, v] : consents) out[k] = v;
  return out;
}

const policy::Entry* FindEntry(const policy::Policy& pol, const std::string& statement,
                               const std::string& version, const std::string& entry) {
  for (const auto& s : pol.statements) {
    if (s.id != statement || (!version.empty() && s.version != version)) continue;
    for (const auto& e : s.entries) {
      if (e.id == entry) return &e;
    }
  }
  return nullptr;
}

// One verdict group with all of its evidence.
json GroupJson(const store::VerdictGroup& g, const policy::Policy& pol) {
  const store::EventRecord& s = g.sample;
  json j = {{"finding", s.finding},
            {"verdict", s.verdict},
            {"device", s.device_id},
            {"device_class", s.device_class},
            {"firmware", s.firmware},
            {"agent_id", s.agent_id},
            {"seq", s.seq},
            {"exe", s.exe},
            {"pid", s.pid},
            {"sdk", s.sdk},
            {"module", s.module},
            {"module_build_id", s.module_build_id},
            {"call_chain", CallChainJson(s.call_chain)},
            {"action", s.action},
            {"channel", s.channel},
            {"data_type", s.data_type},
            {"instance", s.instance},
            {"encoding", s.encoding},
            {"destination", s.Destination()},
            {"dest_host", s.dest_host},
            {"dest_ip", s.dest_ip},
            {"dest_port", s.dest_port},
            {"snippet", s.snippet},
            {"scenarios", s.scenarios},
            {"consents", ConsentsJson(s.consents)},
            {"run_id", s.run_id},
            {"statement", s.statement},
            {"statement_version", s.statement_version},
            {"entry", s.entry},
            {"explanation", s.explanation},
            {"count", g.count},
            {"first_seen_unix_ms", g.first_seen_unix_ms},
            {"last_seen_unix_ms", g.last_seen_unix_ms}};
  if (auto c = CategoryFromName(s.verdict)) j["verdict_meaning"] = InfoOf(*c).meaning;
  if (s.has_cookie) {
    j["cookie"] = s.cookie.name;
    j["cookie_direction"] = s.cookie.direction;
    j["cookie_domain"] = s.cookie.domain;
    j["cookie_max_age_seconds"] = s.cookie.max_age_seconds;
  }
  if (const policy::Entry* e = FindEntry(pol, s.statement, s.statement_version, s.entry)) {
    j["entry_title"] = e->title;
    j["entry_data_types"] = e->data_types;
  }
  return j;
}

// When a device last did anything: its agents' hellos or its newest event.
int64_t LastActive(store::Store& st, const store::AgentRecord& a) {
  store::VerdictFilter f;
  f.device_id = a.device_id;  // indexed with last seen
  f.limit = 1;
  auto newest = st.QueryEvents(f);
  int64_t t = a.last_seen_unix_ms;
  if (newest.ok() && !newest->empty()) t = std::max(t, newest->front().last_seen_unix_ms);
  return t;
}

json DropsJson(const store::DropCounts& d) {
  return {{"tap", d.tap},   {"ingress", d.ingress},         {"spool", d.spool},
          {"disk", d.disk}, {"dead_letter", d.dead_letter}, {"total", d.Total()}};
}

json DeviceJson(const store::AgentRecord& a, int64_t last_active, int64_t now,
                int64_t silent_after) {
  return {{"agent_id", a.agent_id},
          {"device", a.device_id},
          {"device_class", a.device_class},
          {"firmware", a.firmware},
          {"agent_version", a.agent_version},
          {"last_seen_unix_ms", a.last_seen_unix_ms},
          {"last_active_unix_ms", last_active},
          {"status", now - last_active > silent_after ? "silent" : "reporting"},
          {"stored_up_to", a.stored_up_to},
          {"events_stored", a.events_stored},
          {"gap_events", a.gap_events},
          {"drops", DropsJson(a.drops)}};
}

http::Response Overview(Collector* c, const http::Request& req) {
  Params p(req, {"since", "until", "bucket_ms", "silent_after_ms", "device", "sdk"});
  const int64_t now = NowMs();
  store::VerdictFilter f;
  f.since_unix_ms = p.Int("since", now - 24 * kHourMs, 0, INT64_MAX);
  f.until_unix_ms = p.Int("until", 0, 0, INT64_MAX);
  f.device_id = p.Str("device");
  f.sdk = p.Str("sdk");
  const int64_t bucket = p.Int("bucket_ms", kHourMs, kHourMs, 366 * 24 * kHourMs);
  if (bucket % kHourMs != 0) p.Fail("bucket_ms must be a multiple of one hour (3600000)");
  const int64_t silent_after =
      p.Int("silent_after_ms", kDefaultSilentAfterMs, 1000, 365 * 24 * kHourMs);
  if (p.error()) return Error(400, *p.error());
  auto hist = c->store().QueryHistogram(f, bucket);
  if (!hist.ok()) return StoreError(hist.status());

  json buckets = json::array();
  std::map<std::pair<std::string, std::string>, std::pair<std::string, uint64_t>> by_sdk;
  std::map<std::string, uint64_t> totals = {{"clear", 0}, {"observation", 0}, {"violation", 0}};
  for (const auto& h : *hist) {
    buckets.push_back({{"start_unix_ms", h.bucket_start_unix_ms},
                       {"sdk", h.sdk},
                       {"verdict", h.verdict},
                       {"finding", h.finding},
                       {"count", h.count}});
    auto& e = by_sdk[{h.sdk, h.verdict}];
    e.first = h.finding;
    e.second += h.count;
    totals[h.finding] += h.count;
  }
  json categories = json::array();
  for (const auto& [key, v] : by_sdk) {
    categories.push_back(
        {{"sdk", key.first}, {"verdict", key.second}, {"finding", v.first}, {"count", v.second}});
  }

  auto agents = c->store().ListAgents("", kOverviewAgents + 1, 0);
  if (!agents.ok()) return StoreError(agents.status());
  const bool truncated = agents->size() > kOverviewAgents;
  if (truncated) agents->resize(kOverviewAgents);
  std::set<std::string> devices, reporting;
  store::DropCounts lost;
  uint64_t gap_events = 0, with_losses = 0;
  for (const auto& a : *agents) {
    devices.insert(a.device_id);
    if (now - LastActive(c->store(), a) <= silent_after) reporting.insert(a.device_id);
    lost.tap += a.drops.tap;
    lost.ingress += a.drops.ingress;
    lost.spool += a.drops.spool;
    lost.disk += a.drops.disk;
    lost.dead_letter += a.drops.dead_letter;
    gap_events += a.gap_events;
    if (a.drops.Total() + a.gap_events > 0) ++with_losses;
  }
  json out = {
      {"since_unix_ms", f.since_unix_ms},
      {"until_unix_ms", f.until_unix_ms},
      {"now_unix_ms", now},
      {"bucket_ms", bucket},
      {"totals", totals},
      {"buckets", std::move(buckets)},
      {"by_sdk_verdict", std::move(categories)},
      {"devices",
       {{"total", devices.size()},
        {"reporting", reporting.size()},
        {"silent", devices.size() - reporting.size()},
        {"silent_after_ms", silent_after},
        {"agents", agents->size()},
        {"truncated", truncated}}},
      {"gaps",
       {{"agents_with_losses", with_losses},
        {"lost", DropsJson(lost)},
        {"gap_events", gap_events}}},
  };
  return JsonResponse(200, out);
}

http::Response Matrix(Collector* c, const http::Request& req) {
  Params p(req, {"device", "device_class", "firmware", "sdk", "data_type", "verdict", "finding",
                 "since", "until"});
  store::VerdictFilter f = FilterFrom(p);
  f.limit = 0;
  f.offset = 0;
  if (p.error()) return Error(400, *p.error());
  auto rows = c->store().QueryMatrix(f);
  if (!rows.ok()) return StoreError(rows.status());

  struct Cell {
    bool declared = false;
    std::vector<std::string> entries;
    json verdicts = json::array();
    uint64_t count = 0;
    int rank = 0;
    std::string worst_verdict, worst_finding;
    int64_t first_seen = 0, last_seen = 0;
  };
  std::map<std::pair<std::string, std::string>, Cell> cells;
  // Declared: which SDK's statement entries name which data type. Shown
  // only under the same SDK and data-type filters as the observed side.
  const policy::Policy& pol = c->policy();
  for (const auto& s : pol.statements) {
    for (const auto& e : s.entries) {
      if (e.sdk.empty() || (!f.sdk.empty() && e.sdk != f.sdk)) continue;
      for (const auto& dt : e.data_types) {
        if (!f.data_type.empty() && dt != f.data_type) continue;
        Cell& cell = cells[{e.sdk, dt}];
        cell.declared = true;
        cell.entries.push_back(absl::StrCat(s.id, " ", s.version, " / ", e.id));
      }
    }
  }
  for (const auto& r : *rows) {
    Cell& cell = cells[{r.sdk, r.data_type}];
    cell.verdicts.push_back({{"verdict", r.verdict},
                             {"finding", r.finding},
                             {"count", r.count},
                             {"first_seen_unix_ms", r.first_seen_unix_ms},
                             {"last_seen_unix_ms", r.last_seen_unix_ms}});
    cell.count += r.count;
    int rank = FindingRank(r.finding, r.verdict);
    if (rank > cell.rank) {
      cell.rank = rank;
      cell.worst_verdict = r.verdict;
      cell.worst_finding = r.finding;
    }
    if (cell.first_seen == 0 || r.first_seen_unix_ms < cell.first_seen)
      cell.first_seen = r.first_seen_unix_ms;
    cell.last_seen = std::max(cell.last_seen, r.last_seen_unix_ms);
  }
  std::set<std::string> sdks, types;
  json out_cells = json::array();
  for (auto& [key, cell] : cells) {
    sdks.insert(key.first);
    types.insert(key.second);
    out_cells.push_back({{"sdk", key.first},
                         {"data_type", key.second},
                         {"declared", cell.declared},
                         {"entries", cell.entries},
                         {"observed", cell.count > 0},
                         {"count", cell.count},
                         {"worst_verdict", cell.worst_verdict},
                         {"worst_finding", cell.worst_finding},
                         {"first_seen_unix_ms", cell.first_seen},
                         {"last_seen_unix_ms", cell.last_seen},
                         {"verdicts", std::move(cell.verdicts)}});
  }
  return JsonResponse(200, {{"sdks", sdks}, {"data_types", types}, {"cells", out_cells}});
}

http::Response Verdicts(Collector* c, const http::Request& req) {
  Params p(req, kFilterKeys);
  store::VerdictFilter f = FilterFrom(p);
  if (p.error()) return Error(400, *p.error());
  const size_t limit = f.limit;
  ++f.limit;
  auto groups = c->store().QueryVerdicts(f);
  if (!groups.ok()) return StoreError(groups.status());
  json out = PageOf(&*groups, limit, f.offset);
  json list = json::array();
  for (const auto& g : *groups) list.push_back(GroupJson(g, c->policy()));
  out["verdicts"] = std::move(list);
  return JsonResponse(200, out);
}

http::Response Devices(Collector* c, const http::Request& req) {
  Params p(req, {"limit", "offset", "silent_after_ms"});
  const size_t limit = p.Int("limit", kDefaultPage, 1, kMaxPage);
  const size_t offset = p.Int("offset", 0, 0, INT32_MAX);
  const int64_t silent_after =
      p.Int("silent_after_ms", kDefaultSilentAfterMs, 1000, 365 * 24 * kHourMs);
  if (p.error()) return Error(400, *p.error());
  auto agents = c->store().ListAgents("", limit + 1, offset);
  if (!agents.ok()) return StoreError(agents.status());
  json out = PageOf(&*agents, limit, offset);
  const int64_t now = NowMs();
  json list = json::array();
  for (const auto& a : *agents) {
    list.push_back(DeviceJson(a, LastActive(c->store(), a), now, silent_after));
  }
  out["devices"] = std::move(list);
  return JsonResponse(200, out);
}

// What changed in the usage context from `before` (older) to `after`.
json ContextChange(const store::EventRecord& before, const store::EventRecord& after) {
  json consents = json::array();
  std::set<std::string> keys;
  for (const auto& [k, v] : before.consents) keys.insert(k);
  for (const auto& [k, v] : after.consents) keys.insert(k);
  for (const auto& k : keys) {
    auto b = before.consents.find(k);
    auto a = after.consents.find(k);
    json bv = b == before.consents.end() ? json(nullptr) : json(b->second);
    json av = a == after.consents.end() ? json(nullptr) : json(a->second);
    if (bv != av) consents.push_back({{"consent", k}, {"before", bv}, {"after", av}});
  }
  if (before.scenarios == after.scenarios && consents.empty()) return nullptr;
  return {{"scenarios_before", before.scenarios},
          {"scenarios_after", after.scenarios},
          {"consents", consents}};
}

http::Response Timeline(Collector* c, const http::Request& req, const std::string& device) {
  Params p(req, {"limit", "offset", "since", "until", "silent_after_ms"});
  store::VerdictFilter f;
  f.device_id = device;
  f.limit = p.Int("limit", kDefaultPage, 1, kMaxPage);
  f.offset = p.Int("offset", 0, 0, INT32_MAX);
  f.since_unix_ms = p.Int("since", 0, 0, INT64_MAX);
  f.until_unix_ms = p.Int("until", 0, 0, INT64_MAX);
  const int64_t silent_after =
      p.Int("silent_after_ms", kDefaultSilentAfterMs, 1000, 365 * 24 * kHourMs);
  if (p.error()) return Error(400, *p.error());
  auto agents = c->store().ListAgents(device, kMaxPage, 0);
  if (!agents.ok()) return StoreError(agents.status());
  const size_t limit = f.limit;
  // One more row than the page: it tells whether there is a next page and
  // what the context was before the page's oldest event.
  f.limit = limit + 1;
  auto events = c->store().QueryEvents(f);
  if (!events.ok()) return StoreError(events.status());
  if (agents->empty() && events->empty() && f.offset == 0) {
    return Error(404, absl::StrCat("no agent and no event for device \"", device, "\""));
  }
  json list = json::array();
  for (size_t i = 0; i < events->size() && i < limit; ++i) {
    const store::EventRecord& e = (*events)[i];
    json j = {{"agent_id", e.agent_id},
              {"seq", e.seq},
              {"time_unix_ms", e.last_seen_unix_ms},
              {"first_seen_unix_ms", e.first_seen_unix_ms},
              {"count", e.count},
              {"exe", e.exe},
              {"pid", e.pid},
              {"sdk", e.sdk},
              {"module", e.module},
              {"action", e.action},
              {"data_type", e.data_type},
              {"encoding", e.encoding},
              {"destination", e.Destination()},
              {"verdict", e.verdict},
              {"finding", e.finding},
              {"scenarios", e.scenarios},
              {"consents", ConsentsJson(e.consents)},
              {"run_id", e.run_id},
              {"context_change",
               i + 1 < events->size() ? ContextChange((*events)[i + 1], e) : json(nullptr)}};
    if (e.has_cookie) j["cookie"] = e.cookie.name;
    list.push_back(std::move(j));
  }
  json out = PageOf(&*events, limit, f.offset);
  const int64_t now = NowMs();
  json health = json::array();
  for (const auto& a : *agents) {
    health.push_back(DeviceJson(a, LastActive(c->store(), a), now, silent_after));
  }
  out["device"] = device;
  out["agents"] = std::move(health);
  out["events"] = std::move(list);
  return JsonResponse(200, out);
}

json StatementJson(const policy::Statement& s) {
  json entries = json::array();
  for (const auto& e : s.entries) {
    entries.push_back({{"id", e.id},
                       {"title", e.title},
                       {"third_party", e.third_party},
                       {"entity", e.entity},
                       {"sharing_type", e.sharing_type},
                       {"sdk", e.sdk},
                       {"shared_data", e.shared_data},
                       {"data_types", e.data_types},
                       {"unmapped", e.unmapped},
                       {"purpose", e.purpose},
                       {"usage_scenario", e.usage_scenario},
                       {"scenarios", e.scenarios},
                       {"sharing_methods", e.sharing_methods},
                       {"requires_consent", e.requires_consent},
                       {"rules_link", e.rules_link},
                       {"line", e.line}});
  }
  return {{"id", s.id},         {"version", s.version}, {"title", s.title},
          {"source", s.source}, {"file", s.file},       {"entries", std::move(entries)}};
}

json CookiePolicyJson(const policy::CookiePolicy& cp) {
  json rows = json::array();
  for (const auto& r : cp.cookies) {
    rows.push_back({{"name", r.name},
                    {"category", r.category},
                    {"purpose", r.purpose},
                    {"duration", r.duration},
                    {"session", r.session},
                    {"max_age_seconds", r.max_age_seconds},
                    {"source", r.source},
                    {"first_party", r.first_party},
                    {"line", r.line}});
  }
  return {{"id", cp.id},       {"version", cp.version},
          {"title", cp.title}, {"source", cp.source},
          {"sites", cp.sites}, {"first_party_only", cp.first_party_only},
          {"file", cp.file},   {"cookies", std::move(rows)}};
}

http::Response Policies(Collector* c, const http::Request& req) {
  Params p(req, {});
  if (p.error()) return Error(400, *p.error());
  const policy::Policy& pol = c->policy();
  json statements = json::array(), cookies = json::array(), apps = json::array(),
       bindings = json::array();
  for (const auto& s : pol.statements) statements.push_back(StatementJson(s));
  for (const auto& cp : pol.cookie_policies) cookies.push_back(CookiePolicyJson(cp));
  for (const auto& a : pol.app_policies) {
    json features = json::array();
    for (const auto& ft : a.features) {
      features.push_back({{"id", ft.id},
                          {"title", ft.title},
                          {"data_types", ft.data_types},
                          {"requires_consent", ft.requires_consent},
                          {"optional", ft.optional}});
    }
    apps.push_back({{"id", a.id},
                    {"version", a.version},
                    {"title", a.title},
                    {"sdks", a.sdks},
                    {"file", a.file},
                    {"features", std::move(features)}});
  }
  for (const auto& b : pol.bindings) {
    bindings.push_back({{"sdk", b.sdk},
                        {"modules", b.modules},
                        {"processes", b.processes},
                        {"file", b.file},
                        {"line", b.line}});
  }
  // The one list of categories (common/verdict_categories.h): the page's filter.
  json categories = json::array();
  for (const CategoryInfo& info : kCategories) {
    categories.push_back(
        {{"name", info.name}, {"finding", FindingName(info.finding)}, {"meaning", info.meaning}});
  }
  return JsonResponse(200, {{"categories", std::move(categories)},
                            {"statements", std::move(statements)},
                            {"cookie_policies", std::move(cookies)},
                            {"app_policies", std::move(apps)},
                            {"bindings", std::move(bindings)}});
}

// Two loaded versions of one statement, or the loaded policy against the
// policy directory as it is on disk now (what a restart would load).
http::Response PoliciesDiff(Collector* c, const http::Request& req) {
  Params p(req, {"statement", "from", "to", "against"});
  if (p.error()) return Error(400, *p.error());
  const policy::Policy& pol = c->policy();
  if (p.Str("against") == "disk") {
    if (c->options().policies_dir.empty())
      return Error(400, "the collector has no policy directory");
    auto on_disk = policy::LoadPolicyDir(c->options().policies_dir);
    if (!on_disk.ok()) return Error(409, std::string(on_disk.status().message()));
    return JsonResponse(200, json::parse(policy::DiffToJson(policy::DiffPolicies(pol, *on_disk))));
  }
  if (p.Has("against")) return Error(400, "against must be \"disk\"");
  const std::string id = p.Str("statement");
  std::vector<std::string> versions;
  for (const auto& s : pol.statements) {
    if (s.id == id) versions.push_back(s.version);
  }
  if (id.empty() || !p.Has("from") || !p.Has("to")) {
    return Error(400, "give statement, from and to (versions of that statement), or against=disk");
  }
  if (versions.empty()) return Error(404, absl::StrCat("no statement \"", id, "\" is loaded"));
  auto find = [&](const std::string& v) -> const policy::Statement* {
    for (const auto& s : pol.statements) {
      if (s.id == id && s.version == v) return &s;
    }
    return nullptr;
  };
  const policy::Statement* from = find(p.Str("from"));
  const policy::Statement* to = find(p.Str("to"));
  if (from == nullptr || to == nullptr) {
    return Error(404, absl::StrCat("statement \"", id, "\" has versions ",
                                   absl::StrJoin(versions, ", "), " loaded"));
  }
  return JsonResponse(200, json::parse(policy::DiffToJson(policy::DiffStatements({*from}, {*to}))));
}

// The cheap change cursor the page polls: it moves whenever this collector
// commits a batch or a declared gap.
http::Response Changes(Collector* c, const http::Request& req) {
  Params p(req, {});
  if (p.error()) return Error(400, *p.error());
  CollectorCounters& n = c->counters();
  const uint64_t batches = n.batches.load(std::memory_order_relaxed);
  const uint64_t events = n.events.load(std::memory_order_relaxed);
  const uint64_t gaps = n.gap_events.load(std::memory_order_relaxed);
  return JsonResponse(200, {{"cursor", absl::StrCat(batches, ".", events, ".", gaps)},
                            {"batches", batches},
                            {"events", events},
                            {"gap_events", gaps},
                            {"now_unix_ms", NowMs()}});
}

http::Response Asset(const http::Request& req) {
  std::string path = req.path == "/" ? "/index.html" : req.path;
  const web::WebAsset* a = web::FindWebAsset(path);
  if (a == nullptr) return http::Response::Text(404, "not found\n");
  http::Response r;
  r.content_type = a->content_type;
  r.body = std::string(a->view());
  Harden(&r);
  return r;
}

}  // namespace

std::string AgentsJson(const std::vector<store::AgentRecord>& agents) {
  json list = json::array();
  for (const auto& a : agents) {
    json d = DropsJson(a.drops);
    d.erase("total");
    list.push_back({{"agent_id", a.agent_id},
                    {"device", a.device_id},
                    {"agent_version", a.agent_version},
                    {"last_seen_unix_ms", a.last_seen_unix_ms},
                    {"stored_up_to", a.stored_up_to},
                    {"events_stored", a.events_stored},
                    {"gap_events", a.gap_events},
                    {"drops", d}});
  }
  return json{{"agents", list}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

void RegisterHttpRoutes(http::HttpServer* server, Collector* c) {
  using http::Access;
  using http::Request;
  server->Handle("GET", "/healthz",
                 [](const Request&) { return http::Response::Text(200, "ok\n"); });
  server->Handle("GET", "/metrics", [c](const Request&) {
    http::Response r = http::Response::Text(200, c->MetricsText());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });
  auto api = [&](const char* path, std::function<http::Response(Collector*, const Request&)> fn) {
    server->Handle(
        "GET", path, [c, fn](const Request& req) { return fn(c, req); }, Access::kProtected);
  };
  api("/api/overview", Overview);
  api("/api/matrix", Matrix);
  api("/api/verdicts", Verdicts);
  api("/api/changes", Changes);
  api("/api/policies", Policies);
  api("/api/policies/diff", PoliciesDiff);
  api("/api/agents", [](Collector* col, const Request& req) {
    Params p(req, {"device", "limit", "offset"});
    const size_t limit = p.Int("limit", kMaxPage, 1, kMaxPage);
    const size_t offset = p.Int("offset", 0, 0, INT32_MAX);
    if (p.error()) return Error(400, *p.error());
    auto agents = col->store().ListAgents(p.Str("device"), limit, offset);
    if (!agents.ok()) return StoreError(agents.status());
    http::Response r = http::Response::Json(200, AgentsJson(*agents));
    Harden(&r);
    return r;
  });
  // /api/devices and /api/devices/{id}/timeline (the id percent-encoded).
  api("/api/devices", [](Collector* col, const Request& req) {
    constexpr std::string_view kBase = "/api/devices";
    std::string_view rest = std::string_view(req.path).substr(kBase.size());
    if (rest.empty() || rest == "/") return Devices(col, req);
    constexpr std::string_view kTimeline = "/timeline";
    if (rest.size() > kTimeline.size() + 1 && rest.ends_with(kTimeline)) {
      std::string_view id = rest.substr(1, rest.size() - 1 - kTimeline.size());
      if (id.find('/') == std::string_view::npos)
        return Timeline(col, req, http::PercentDecode(id));
    }
    return Error(404, "expected /api/devices or /api/devices/{device}/timeline");
  });
  server->Handle(
      "GET", "/api", [](const Request&) { return Error(404, "no such API"); }, Access::kProtected);
  // The page and its modules are public (they hold no data); the data is not.
  server->Handle("GET", "/", [](const Request& req) { return Asset(req); });
}

}  // namespace idflow::collector

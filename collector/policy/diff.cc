#include "collector/policy/diff.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/policy/cookies.h"
#include "nlohmann/json.hpp"

namespace idflow::policy {
namespace {

// ---- fields -----------------------------------------------------------------

// One comparable field of an item, rendered as strings.
struct Field {
  const char* name;
  std::vector<std::string> value;
  bool list;
};
using Fields = std::vector<Field>;

Field Text(const char* name, const std::string& v) { return {name, {v}, false}; }
Field List(const char* name, const std::vector<std::string>& v) { return {name, v, true}; }
Field Bool(const char* name, bool v) { return {name, {v ? "true" : "false"}, false}; }
Field Int(const char* name, int64_t v) { return {name, {absl::StrCat(v)}, false}; }

// The fields a verdict depends on plus the published wording behind them;
// positions (file, line, source_line) are not compared. Ids are the keys.
Fields FieldsOf(const Statement& s) {
  return {Text("version", s.version), Text("title", s.title), Text("source", s.source)};
}
Fields FieldsOf(const Entry& e) {
  return {Text("title", e.title),
          Text("third_party", e.third_party),
          Text("entity", e.entity),
          Text("sharing_type", e.sharing_type),
          List("data_types", e.data_types),
          List("shared_data", e.shared_data),
          Text("purpose", e.purpose),
          List("scenarios", e.scenarios),
          Text("usage_scenario", e.usage_scenario),
          List("sharing_methods", e.sharing_methods),
          List("requires_consent", e.requires_consent),
          Text("rules_link", e.rules_link)};
}
Fields FieldsOf(const CookiePolicy& p) {
  return {Text("version", p.version), Text("title", p.title), Text("source", p.source),
          List("sites", p.sites), Bool("first_party_only", p.first_party_only)};
}
Fields FieldsOf(const CookieRow& r) {
  return {Text("category", r.category),
          Text("purpose", r.purpose),
          Text("duration", r.duration),
          Bool("session", r.session),
          Int("max_age_seconds", r.max_age_seconds),
          Text("source", r.source),
          Bool("first_party", r.first_party)};
}
Fields FieldsOf(const AppPolicy& a) {
  return {Text("version", a.version), Text("title", a.title), Text("source", a.source),
          Text("entity", a.entity), List("sdks", a.sdks)};
}
Fields FieldsOf(const AppFeature& f) {
  return {Text("title", f.title),
          Text("section", f.section),
          Bool("optional", f.optional),
          List("collected", f.collected),
          List("data_types", f.data_types),
          Text("purpose", f.purpose),
          List("requires_consent", f.requires_consent)};
}
Fields FieldsOf(const ConsentPurpose& p) {
  return {Text("consent", p.consent), Text("title", p.title), Text("section", p.section),
          Text("purpose", p.purpose), List("data_types", p.data_types)};
}
Fields FieldsOf(const Binding& b) {
  return {List("modules", b.modules), List("processes", b.processes)};
}
Fields FieldsOf(const DataType& t) { return {List("parents", t.parents), List("terms", t.terms)}; }
Fields FieldsOf(const Entity& e) {
  return {Text("name", e.name), List("aliases", e.aliases), List("domains", e.domains)};
}
Fields FieldsOf(const Scenario& s) { return {List("terms", s.terms)}; }
Fields FieldsOf(const SharingMethod& m) {
  return {List("terms", m.terms), List("actions", m.actions), List("channels", m.channels)};
}
Fields FieldsOf(const Consent& c) { return {List("terms", c.terms)}; }

// Shown after the id of an added or removed item.
template <typename T>
std::string DetailOf(const T&) {
  return "";
}
std::string DetailOf(const Statement& s) { return s.version; }

void CompareFields(const std::string& kind, const std::string& id, const Fields& a, const Fields& b,
                   std::vector<Change>* out) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i].value == b[i].value) continue;
    Change c;
    c.kind = kind;
    c.id = id;
    c.field = a[i].name;
    c.list = a[i].list;
    c.before = a[i].value;
    c.after = b[i].value;
    out->push_back(std::move(c));
  }
}

Change AddedOrRemoved(Change::Op op, const std::string& kind, const std::string& id,
                      const std::string& detail = "") {
  Change c;
  c.op = op;
  c.kind = kind;
  c.id = id;
  c.detail = detail;
  return c;
}

// ---- keyed items ------------------------------------------------------------

template <typename T>
std::vector<const T*> Ptrs(const std::vector<T>& v) {
  std::vector<const T*> out;
  out.reserve(v.size());
  for (const T& x : v) out.push_back(&x);
  return out;
}

// Items by key(item); a key repeated within one side becomes "KEY #2", "KEY #3"
// (in order), so repeated rows pair up by position.
template <typename T, typename KeyFn>
std::map<std::string, const T*> ByKey(const std::vector<const T*>& items, KeyFn key) {
  std::map<std::string, const T*> out;
  std::map<std::string, int> seen;
  for (const T* x : items) {
    std::string k = key(*x);
    const int n = ++seen[k];
    if (n > 1) absl::StrAppend(&k, " #", n);
    out.emplace(std::move(k), x);
  }
  return out;
}

// DetailOf(x), unless the key already ends with it ("s v2" for a statement
// loaded in several versions).
template <typename T>
std::string Detail(const std::string& key, const T& x) {
  std::string d = DetailOf(x);
  return absl::EndsWith(key, absl::StrCat(" ", d)) ? std::string() : d;
}

// Added (sorted by key), then removed, then changed fields of items present on
// both sides.
template <typename T, typename KeyFn>
void DiffItems(const std::string& kind, const std::vector<const T*>& a,
               const std::vector<const T*>& b, KeyFn key, std::vector<Change>* out) {
  const auto ka = ByKey(a, key);
  const auto kb = ByKey(b, key);
  for (const auto& [k, x] : kb) {
    if (!ka.count(k)) out->push_back(AddedOrRemoved(Change::Op::kAdded, kind, k, Detail(k, *x)));
  }
  for (const auto& [k, x] : ka) {
    if (!kb.count(k)) out->push_back(AddedOrRemoved(Change::Op::kRemoved, kind, k, Detail(k, *x)));
  }
  for (const auto& [k, x] : ka) {
    auto it = kb.find(k);
    if (it != kb.end()) CompareFields(kind, k, FieldsOf(*x), FieldsOf(*it->second), out);
  }
}

template <typename T>
void DiffById(const std::string& kind, const std::vector<T>& a, const std::vector<T>& b,
              std::vector<Change>* out) {
  DiffItems(
      kind, Ptrs(a), Ptrs(b), [](const T& x) { return x.id; }, out);
}

// (kind, id) pairs: added, then removed.
using KindIds = std::set<std::pair<std::string, std::string>>;
void DiffSet(const KindIds& a, const KindIds& b, std::vector<Change>* out) {
  for (const auto& [kind, id] : b) {
    if (!a.count({kind, id})) out->push_back(AddedOrRemoved(Change::Op::kAdded, kind, id));
  }
  for (const auto& [kind, id] : a) {
    if (!b.count({kind, id})) out->push_back(AddedOrRemoved(Change::Op::kRemoved, kind, id));
  }
}

// Groups of one section, paired by name. `body(old, new, out)` lists what the
// group holds (an added or removed group is compared with an empty one); a
// group on both sides also gets its own fields ("~ version v1 -> v2").
template <typename T, typename KeyFn, typename BodyFn>
void DiffGroups(const std::string& section, const std::vector<const T*>& a,
                const std::vector<const T*>& b, KeyFn key, BodyFn body,
                std::vector<ChangeGroup>* out) {
  static const T kEmpty{};
  const auto ka = ByKey(a, key);
  const auto kb = ByKey(b, key);
  std::set<std::string> names;
  for (const auto& [k, x] : ka) names.insert(k);
  for (const auto& [k, x] : kb) names.insert(k);
  for (const std::string& name : names) {
    auto ia = ka.find(name);
    auto ib = kb.find(name);
    ChangeGroup g;
    g.section = section;
    g.name = name;
    const T& x = ia == ka.end() ? kEmpty : *ia->second;
    const T& y = ib == kb.end() ? kEmpty : *ib->second;
    if (ia == ka.end()) {
      g.status = Change::Op::kAdded;
    } else if (ib == kb.end()) {
      g.status = Change::Op::kRemoved;
    } else {
      CompareFields("", "", FieldsOf(x), FieldsOf(y), &g.changes);
    }
    body(x, y, &g.changes);
    if (g.status != Change::Op::kChanged || !g.changes.empty()) out->push_back(std::move(g));
  }
}

// ---- statements -------------------------------------------------------------

// "id", or "id version" for an id that either side loads in several versions
// (so that a lone statement pairs up across a version change).
auto StatementKey(const std::vector<Statement>& a, const std::vector<Statement>& b) {
  std::map<std::string, int> na, nb;
  for (const Statement& s : a) ++na[s.id];
  for (const Statement& s : b) ++nb[s.id];
  std::set<std::string> several;
  for (const auto* n : {&na, &nb}) {
    for (const auto& [id, count] : *n) {
      if (count > 1) several.insert(id);
    }
  }
  return
      [several](const Statement& s) { return several.count(s.id) ? s.id + " " + s.version : s.id; };
}

struct SdkView {
  KindIds data_types;
  std::vector<const Entry*> entries;
};

std::map<std::string, SdkView> BySdk(const std::vector<Statement>& statements) {
  std::map<std::string, SdkView> out;
  for (const Statement& s : statements) {
    for (const Entry& e : s.entries) {
      SdkView& v = out[e.sdk];
      for (const std::string& t : e.data_types) v.data_types.insert({"data type", t});
      v.entries.push_back(&e);
    }
  }
  return out;
}

void AppendStatementGroups(const std::vector<Statement>& a, const std::vector<Statement>& b,
                           std::vector<ChangeGroup>* out) {
  ChangeGroup top;
  top.section = "statements";
  DiffItems("statement", Ptrs(a), Ptrs(b), StatementKey(a, b), &top.changes);
  if (!top.changes.empty()) out->push_back(std::move(top));

  const auto va = BySdk(a);
  const auto vb = BySdk(b);
  std::set<std::string> sdks;
  for (const auto& [k, v] : va) sdks.insert(k);
  for (const auto& [k, v] : vb) sdks.insert(k);
  static const SdkView kNone;
  for (const std::string& sdk : sdks) {
    auto ia = va.find(sdk);
    auto ib = vb.find(sdk);
    const SdkView& x = ia == va.end() ? kNone : ia->second;
    const SdkView& y = ib == vb.end() ? kNone : ib->second;
    ChangeGroup g;
    g.section = "sdk";
    g.name = sdk;
    if (ia == va.end()) g.status = Change::Op::kAdded;
    if (ib == vb.end()) g.status = Change::Op::kRemoved;
    DiffSet(x.data_types, y.data_types, &g.changes);
    DiffItems(
        "entry", x.entries, y.entries, [](const Entry& e) { return e.id; }, &g.changes);
    if (!g.changes.empty() || g.status != Change::Op::kChanged) out->push_back(std::move(g));
  }
}

// ---- other sections ---------------------------------------------------------

void AppendCookieGroups(const Policy& a, const Policy& b, std::vector<ChangeGroup>* out) {
  DiffGroups(
      "cookies", Ptrs(a.cookie_policies), Ptrs(b.cookie_policies),
      [](const CookiePolicy& p) { return p.id; },
      [](const CookiePolicy& x, const CookiePolicy& y, std::vector<Change>* changes) {
        DiffItems(
            "cookie", Ptrs(x.cookies), Ptrs(y.cookies), [](const CookieRow& r) { return r.name; },
            changes);
      },
      out);
}

void AppendAppGroups(const Policy& a, const Policy& b, std::vector<ChangeGroup>* out) {
  DiffGroups(
      "app", Ptrs(a.app_policies), Ptrs(b.app_policies), [](const AppPolicy& p) { return p.id; },
      [](const AppPolicy& x, const AppPolicy& y, std::vector<Change>* changes) {
        DiffById("feature", x.features, y.features, changes);
        DiffById("consent purpose", x.consent_purposes, y.consent_purposes, changes);
      },
      out);
}

const char* PatternKind(ModulePattern::Kind k) {
  switch (k) {
    case ModulePattern::Kind::kSoname:
      return "soname";
    case ModulePattern::Kind::kGlob:
      return "glob";
    case ModulePattern::Kind::kPath:
      return "path";
  }
  return "path";
}

KindIds Patterns(const std::vector<ModulePattern>& v) {
  KindIds out;
  for (const ModulePattern& p : v) out.insert({PatternKind(p.kind), p.pattern});
  return out;
}

void AppendBindingGroups(const Policy& a, const Policy& b, std::vector<ChangeGroup>* out) {
  DiffGroups(
      "binding", Ptrs(a.bindings), Ptrs(b.bindings), [](const Binding& x) { return x.sdk; },
      [](const Binding& x, const Binding& y, std::vector<Change>* changes) {
        // The binding's own fields are its content: listed for added and
        // removed bindings too (against an empty one).
        if (x.sdk.empty() || y.sdk.empty())
          CompareFields("", "", FieldsOf(x), FieldsOf(y), changes);
      },
      out);
  auto patterns = [&](const char* name, const std::vector<ModulePattern>& x,
                      const std::vector<ModulePattern>& y) {
    ChangeGroup g;
    g.section = "module_patterns";
    g.name = name;
    DiffSet(Patterns(x), Patterns(y), &g.changes);
    if (!g.changes.empty()) out->push_back(std::move(g));
  };
  patterns("runtime", a.runtime, b.runtime);
  patterns("first_party", a.first_party, b.first_party);
}

// Scenario ids with their terms (ids listed only in `scenarios` get none).
std::vector<Scenario> Scenarios(const Ontology& o) {
  std::vector<Scenario> out;
  for (const std::string& id : o.scenarios) {
    Scenario s{id, {}};
    for (const Scenario& d : o.scenario_defs) {
      if (d.id == id) s.terms = d.terms;
    }
    out.push_back(std::move(s));
  }
  return out;
}

void AppendOntologyGroup(const Ontology& a, const Ontology& b, std::vector<ChangeGroup>* out) {
  ChangeGroup g;
  g.section = "ontology";
  DiffById("data type", a.data_types, b.data_types, &g.changes);
  DiffById("entity", a.entities, b.entities, &g.changes);
  DiffById("scenario", Scenarios(a), Scenarios(b), &g.changes);
  DiffById("sharing method", a.sharing_methods, b.sharing_methods, &g.changes);
  DiffById("consent", a.consents, b.consents, &g.changes);
  if (!g.changes.empty()) out->push_back(std::move(g));
}

// ---- verdicts ---------------------------------------------------------------

// The module named in explanations: no module path is judged.
constexpr char kHypotheticalModule[] = "hypothetical";
constexpr char kHypotheticalAction[] = "transmit";
constexpr char kHypotheticalChannel[] = "tcp";
constexpr char kThirdPartyDomain[] = "third-party.invalid";

void DeclaredSdks(const Policy& p, std::set<std::string>* out) {
  for (const Statement& s : p.statements) {
    for (const Entry& e : s.entries) out->insert(e.sdk);
  }
  for (const AppPolicy& a : p.app_policies) out->insert(a.sdks.begin(), a.sdks.end());
}

std::vector<VerdictChange> DiffVerdicts(const Policy& a, const Policy& b) {
  std::set<std::string> sdks;
  DeclaredSdks(a, &sdks);
  DeclaredSdks(b, &sdks);
  std::set<std::string> types;
  for (const DataType& t : a.ontology.data_types) types.insert(t.id);
  for (const DataType& t : b.ontology.data_types) types.insert(t.id);
  std::vector<VerdictChange> out;
  for (const std::string& sdk : sdks) {
    const Responsible r{Responsible::Role::kSdk, kHypotheticalModule, sdk};
    for (const std::string& type : types) {
      Flow f;
      f.data_type = type;
      f.action = kHypotheticalAction;
      f.channel = kHypotheticalChannel;
      Verdict before = JudgeResolved(a, r, f);
      Verdict after = JudgeResolved(b, r, f);
      if (before.category != after.category) {
        out.push_back({sdk, type, std::move(before), std::move(after)});
      }
    }
  }
  return out;
}

std::string SiteHost(const std::string& site) {
  return site.rfind("*.", 0) == 0 ? site.substr(2) : site;
}

std::vector<CookieVerdictChange> DiffCookieVerdicts(const Policy& a, const Policy& b) {
  // (host, name, session, max_age_seconds, third_party), sorted.
  using Key = std::tuple<std::string, std::string, bool, int64_t, bool>;
  std::set<Key> cookies;
  for (const Policy* p : {&a, &b}) {
    for (const CookiePolicy& cp : p->cookie_policies) {
      for (const std::string& site : cp.sites) {
        for (const CookieRow& row : cp.cookies) {
          cookies.insert({SiteHost(site), row.name, row.session,
                          row.session ? 0 : row.max_age_seconds, !row.first_party});
        }
      }
    }
  }
  std::vector<CookieVerdictChange> out;
  for (const auto& [host, name, session, max_age, third_party] : cookies) {
    CookieObservation o;
    o.host = host;
    o.domain = third_party ? kThirdPartyDomain : "";
    o.name = name;
    o.session = session;
    o.max_age_seconds = max_age;
    o.direction = CookieDirection::kSetByServer;
    CookieVerdict before = JudgeCookie(a, o);
    CookieVerdict after = JudgeCookie(b, o);
    if (before.category != after.category) {
      out.push_back(
          {host, name, session, max_age, third_party, std::move(before), std::move(after)});
    }
  }
  return out;
}

// ---- rendering --------------------------------------------------------------

// Plain when it reads as one token, else quoted.
std::string Scalar(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("_.:/*@+-#").find(c) != std::string_view::npos;
  });
  return plain ? s : absl::StrCat("\"", s, "\"");
}

std::string Value(const Change& c, const std::vector<std::string>& v) {
  if (c.list) return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
  return Scalar(v.empty() ? std::string() : v.front());
}

char OpChar(Change::Op op) {
  switch (op) {
    case Change::Op::kAdded:
      return '+';
    case Change::Op::kRemoved:
      return '-';
    case Change::Op::kChanged:
      return '~';
  }
  return '~';
}

const char* OpName(Change::Op op) {
  switch (op) {
    case Change::Op::kAdded:
      return "added";
    case Change::Op::kRemoved:
      return "removed";
    case Change::Op::kChanged:
      return "changed";
  }
  return "changed";
}

std::string FormatChange(const Change& c) {
  std::string out(1, OpChar(c.op));
  if (!c.kind.empty()) absl::StrAppend(&out, " ", c.kind, " ", c.id);
  if (!c.detail.empty()) absl::StrAppend(&out, " ", c.detail);
  if (c.op == Change::Op::kChanged) {
    absl::StrAppend(&out, c.kind.empty() ? " " : ": ", c.field, " ", Value(c, c.before), " -> ",
                    Value(c, c.after));
  }
  return out;
}

std::string Heading(const ChangeGroup& g) {
  std::string h;
  if (g.section == "sdk") h = "SDK " + g.name;
  if (g.section == "cookies") h = "cookie policy " + g.name;
  if (g.section == "app") h = "app policy " + g.name;
  if (g.section == "binding") h = "binding " + g.name;
  if (g.section == "module_patterns") h = "bindings " + g.name;
  if (g.section == "ontology") h = "ontology";
  if (g.status != Change::Op::kChanged) absl::StrAppend(&h, " (", OpName(g.status), ")");
  return h;
}

// "session", "30d", "4h", "15min", "90s", or "no lifetime".
std::string Lifetime(bool session, int64_t seconds) {
  if (session) return "session";
  if (seconds < 0) return "no lifetime";
  if (seconds > 0 && seconds % 86400 == 0) return absl::StrCat(seconds / 86400, "d");
  if (seconds > 0 && seconds % 3600 == 0) return absl::StrCat(seconds / 3600, "h");
  if (seconds > 0 && seconds % 60 == 0) return absl::StrCat(seconds / 60, "min");
  return absl::StrCat(seconds, "s");
}

constexpr char kFlowNote[] =
    "each SDK transmits each data type over tcp, no host, scenario or consent";
constexpr char kCookieNote[] =
    "each declared cookie set by each site of its policy with its declared lifetime";

using Json = nlohmann::ordered_json;

Json ChangeJson(const Change& c) {
  Json j;
  j["op"] = OpName(c.op);
  j["kind"] = c.kind;
  j["id"] = c.id;
  if (!c.detail.empty()) j["detail"] = c.detail;
  if (c.op == Change::Op::kChanged) {
    j["field"] = c.field;
    if (c.list) {
      j["old"] = c.before;
      j["new"] = c.after;
    } else {
      j["old"] = c.before.empty() ? std::string() : c.before.front();
      j["new"] = c.after.empty() ? std::string() : c.after.front();
    }
  }
  return j;
}

Json VerdictJson(const Verdict& v) {
  return Json{{"category", CategoryName(v.category)},
              {"finding", FindingName(v.finding)},
              {"statement", v.statement},
              {"version", v.version},
              {"entry", v.entry},
              {"explanation", v.explanation}};
}

Json CookieVerdictJson(const CookieVerdict& v) {
  return Json{{"category", CategoryName(v.category)},
              {"finding", FindingName(v.finding)},
              {"policy", v.policy},
              {"version", v.version},
              {"row", v.cookie},
              {"explanation", v.explanation}};
}

}  // namespace

PolicyDiff DiffStatements(const std::vector<Statement>& old_statements,
                          const std::vector<Statement>& new_statements) {
  PolicyDiff d;
  AppendStatementGroups(old_statements, new_statements, &d.groups);
  return d;
}

PolicyDiff DiffPolicies(const Policy& old_policy, const Policy& new_policy) {
  PolicyDiff d;
  AppendStatementGroups(old_policy.statements, new_policy.statements, &d.groups);
  AppendCookieGroups(old_policy, new_policy, &d.groups);
  AppendAppGroups(old_policy, new_policy, &d.groups);
  AppendBindingGroups(old_policy, new_policy, &d.groups);
  AppendOntologyGroup(old_policy.ontology, new_policy.ontology, &d.groups);
  d.verdicts = DiffVerdicts(old_policy, new_policy);
  d.cookie_verdicts = DiffCookieVerdicts(old_policy, new_policy);
  return d;
}

std::string FormatDiff(const PolicyDiff& diff) {
  std::string out;
  for (const ChangeGroup& g : diff.groups) {
    // Statement-level lines stand unindented, as they did before the other sections.
    const bool top = g.section == "statements";
    if (!top) absl::StrAppend(&out, Heading(g), ":\n");
    for (const Change& c : g.changes) absl::StrAppend(&out, top ? "" : "  ", FormatChange(c), "\n");
  }
  if (!diff.verdicts.empty()) absl::StrAppend(&out, "verdicts (", kFlowNote, "):\n");
  for (const VerdictChange& v : diff.verdicts) {
    absl::StrAppend(&out, "  ~ ", v.sdk, " / ", v.data_type, ": ", CategoryName(v.before.category),
                    " -> ", CategoryName(v.after.category), "\n");
  }
  if (!diff.cookie_verdicts.empty())
    absl::StrAppend(&out, "cookie verdicts (", kCookieNote, "):\n");
  for (const CookieVerdictChange& v : diff.cookie_verdicts) {
    absl::StrAppend(&out, "  ~ ", v.host, " / cookie ", v.cookie, " (",
                    Lifetime(v.session, v.max_age_seconds), v.third_party ? ", third-party" : "",
                    "): ", CategoryName(v.before.category), " -> ", CategoryName(v.after.category),
                    "\n");
  }
  return out;
}

std::string DiffToJson(const PolicyDiff& diff) {
  Json j;
  j["identical"] = diff.empty();
  j["groups"] = Json::array();
  for (const ChangeGroup& g : diff.groups) {
    Json jg{{"section", g.section}, {"name", g.name}, {"status", OpName(g.status)}};
    jg["changes"] = Json::array();
    for (const Change& c : g.changes) jg["changes"].push_back(ChangeJson(c));
    j["groups"].push_back(std::move(jg));
  }
  j["verdicts"] = Json::array();
  for (const VerdictChange& v : diff.verdicts) {
    j["verdicts"].push_back(Json{{"sdk", v.sdk},
                                 {"data_type", v.data_type},
                                 {"old", VerdictJson(v.before)},
                                 {"new", VerdictJson(v.after)}});
  }
  j["cookie_verdicts"] = Json::array();
  for (const CookieVerdictChange& v : diff.cookie_verdicts) {
    j["cookie_verdicts"].push_back(Json{{"host", v.host},
                                        {"cookie", v.cookie},
                                        {"session", v.session},
                                        {"max_age_seconds", v.max_age_seconds},
                                        {"third_party", v.third_party},
                                        {"old", CookieVerdictJson(v.before)},
                                        {"new", CookieVerdictJson(v.after)}});
  }
  j["hypothetical_flow"] = Json{{"responsible", "sdk"},
                                {"module", kHypotheticalModule},
                                {"action", kHypotheticalAction},
                                {"channel", kHypotheticalChannel},
                                {"dest_host", ""},
                                {"dest_ip", ""},
                                {"scenarios", Json::array()},
                                {"consents", Json::object()}};
  j["hypothetical_cookie"] = Json{{"direction", "set_by_server"},
                                  {"host", "site without a leading *."},
                                  {"domain_first_party", ""},
                                  {"domain_third_party", kThirdPartyDomain}};
  // Invalid UTF-8 in a policy text is replaced, never thrown.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace idflow::policy

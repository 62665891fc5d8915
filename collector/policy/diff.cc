#include "collector/policy/diff.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace idflow::policy {
namespace {

struct SdkView {
  std::set<std::string> data_types;
  std::map<std::string, const Entry*> entries;  // by entry id
};

std::map<std::string, SdkView> BySdk(const std::vector<Statement>& statements) {
  std::map<std::string, SdkView> out;
  for (const Statement& s : statements) {
    for (const Entry& e : s.entries) {
      SdkView& v = out[e.sdk];
      v.data_types.insert(e.data_types.begin(), e.data_types.end());
      v.entries.emplace(e.id, &e);
    }
  }
  return out;
}

std::vector<std::string> Minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::string List(const std::vector<std::string>& v) {
  return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
}

// Fields a verdict depends on, plus the published wording that backs them.
void CompareEntries(const Entry& a, const Entry& b, std::vector<std::string>* out) {
  auto list = [&](const char* field, const std::vector<std::string>& x,
                  const std::vector<std::string>& y) {
    if (x != y) out->push_back(absl::StrCat(a.id, ": ", field, " ", List(x), " -> ", List(y)));
  };
  auto text = [&](const char* field, const std::string& x, const std::string& y) {
    if (x != y) out->push_back(absl::StrCat(a.id, ": ", field, " \"", x, "\" -> \"", y, "\""));
  };
  text("third_party", a.third_party, b.third_party);
  text("entity", a.entity, b.entity);
  text("sharing_type", a.sharing_type, b.sharing_type);
  list("data_types", a.data_types, b.data_types);
  list("shared_data", a.shared_data, b.shared_data);
  text("purpose", a.purpose, b.purpose);
  list("scenarios", a.scenarios, b.scenarios);
  text("usage_scenario", a.usage_scenario, b.usage_scenario);
  list("sharing_methods", a.sharing_methods, b.sharing_methods);
  list("requires_consent", a.requires_consent, b.requires_consent);
  text("rules_link", a.rules_link, b.rules_link);
}

}  // namespace

PolicyDiff DiffStatements(const std::vector<Statement>& old_statements,
                          const std::vector<Statement>& new_statements) {
  PolicyDiff d;
  // Statements pair up by id; a version change is what `diff` is usually run for.
  std::map<std::string, const Statement*> olds, news;
  for (const Statement& s : old_statements) olds.emplace(s.id, &s);
  for (const Statement& s : new_statements) news.emplace(s.id, &s);
  for (const auto& [id, s] : olds) {
    auto it = news.find(id);
    if (it == news.end()) {
      d.statements.push_back(absl::StrCat("- statement ", id, " ", s->version));
    } else if (it->second->version != s->version) {
      d.statements.push_back(
          absl::StrCat("~ statement ", id, ": version ", s->version, " -> ", it->second->version));
    }
  }
  for (const auto& [id, s] : news) {
    if (!olds.count(id)) d.statements.push_back(absl::StrCat("+ statement ", id, " ", s->version));
  }

  const auto a = BySdk(old_statements);
  const auto b = BySdk(new_statements);
  std::set<std::string> sdks;
  for (const auto& [k, v] : a) sdks.insert(k);
  for (const auto& [k, v] : b) sdks.insert(k);
  static const SdkView kNone;
  for (const std::string& sdk : sdks) {
    auto ia = a.find(sdk);
    auto ib = b.find(sdk);
    const SdkView& va = ia == a.end() ? kNone : ia->second;
    const SdkView& vb = ib == b.end() ? kNone : ib->second;
    SdkDiff s;
    s.sdk = sdk;
    s.added = ia == a.end();
    s.removed = ib == b.end();
    s.data_types_added = Minus(vb.data_types, va.data_types);
    s.data_types_removed = Minus(va.data_types, vb.data_types);
    for (const auto& [id, e] : vb.entries) {
      auto it = va.entries.find(id);
      if (it == va.entries.end()) {
        s.entries_added.push_back(id);
      } else {
        CompareEntries(*it->second, *e, &s.entries_changed);
      }
    }
    for (const auto& [id, e] : va.entries) {
      if (!vb.entries.count(id)) s.entries_removed.push_back(id);
    }
    if (s.added || s.removed || !s.data_types_added.empty() || !s.data_types_removed.empty() ||
        !s.entries_added.empty() || !s.entries_removed.empty() || !s.entries_changed.empty()) {
      d.sdks.push_back(std::move(s));
    }
  }
  return d;
}

std::string FormatDiff(const PolicyDiff& diff) {
  std::string out;
  for (const std::string& s : diff.statements) absl::StrAppend(&out, s, "\n");
  for (const SdkDiff& s : diff.sdks) {
    absl::StrAppend(&out, "SDK ", s.sdk, s.added ? " (added)" : "", s.removed ? " (removed)" : "",
                    ":\n");
    for (const auto& t : s.data_types_added) absl::StrAppend(&out, "  + data type ", t, "\n");
    for (const auto& t : s.data_types_removed) absl::StrAppend(&out, "  - data type ", t, "\n");
    for (const auto& e : s.entries_added) absl::StrAppend(&out, "  + entry ", e, "\n");
    for (const auto& e : s.entries_removed) absl::StrAppend(&out, "  - entry ", e, "\n");
    for (const auto& c : s.entries_changed) absl::StrAppend(&out, "  ~ entry ", c, "\n");
  }
  return out;
}

}  // namespace idflow::policy

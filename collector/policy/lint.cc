// Findings that do not stop loading but usually mean the policy is incomplete.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/policy/cookies.h"
#include "collector/policy/importer.h"
#include "collector/policy/policy.h"

namespace idflow::policy {

std::vector<std::string> LintPolicy(const Policy& policy) {
  std::vector<std::string> out;
  std::set<std::string> used_types, used_scenarios, bound;
  for (const Binding& b : policy.bindings) bound.insert(b.sdk);
  for (const Statement& s : policy.statements) {
    for (const Entry& e : s.entries) {
      const std::string where = absl::StrCat(s.file, ":", e.line, ": entry ", e.id, ": ");
      if (e.data_types.empty()) out.push_back(where + "declares no data type");
      if (e.data_types.size() < e.shared_data.size() && e.data_types.size() <= 1 &&
          e.shared_data.size() > 1) {
        out.push_back(where + "maps several shared-data items to at most one data type");
      }
      // Clauses no data type covers are kept (`unmapped`) and never judged:
      // say so, and flag any the file does not list (lost to the verdicts).
      for (const std::string& clause : e.unmapped) {
        out.push_back(absl::StrCat(where, "shared-data clause '", clause,
                                   "' maps to no data type (kept as unmapped, not judged)"));
      }
      for (const std::string& item : e.shared_data) {
        for (const std::string& clause : MapSharedData(item, policy.ontology).unmapped) {
          if (std::find(e.unmapped.begin(), e.unmapped.end(), clause) != e.unmapped.end()) continue;
          out.push_back(absl::StrCat(where, "shared-data clause '", clause,
                                     "' maps to no data type and is not listed under unmapped: "
                                     "lost to the verdicts"));
        }
      }
      if (e.scenarios.empty())
        out.push_back(where + "has no scenario, so out_of_scenario never fires");
      if (e.sharing_methods.empty()) out.push_back(where + "has no sharing method");
      used_types.insert(e.data_types.begin(), e.data_types.end());
      used_scenarios.insert(e.scenarios.begin(), e.scenarios.end());
    }
  }
  for (const CookiePolicy& c : policy.cookie_policies) {
    for (std::string& f : LintCookiePolicy(c)) out.push_back(std::move(f));
  }
  for (const AppPolicy& a : policy.app_policies) {
    for (const AppFeature& f : a.features)
      used_types.insert(f.data_types.begin(), f.data_types.end());
  }
  for (const DataType& t : policy.ontology.data_types) {
    bool used = used_types.count(t.id) > 0;
    // A type is also "used" when a declared type sits below it (it is a broader term).
    for (const std::string& u : used_types) used = used || policy.ontology.Subsumes(t.id, u);
    if (!used)
      out.push_back(absl::StrCat("ontology: data type ", t.id, " is declared by no entry"));
  }
  for (const std::string& sc : policy.ontology.scenarios) {
    if (!used_scenarios.count(sc)) {
      out.push_back(absl::StrCat("ontology: scenario ", sc, " is used by no entry"));
    }
  }
  return out;
}

}  // namespace idflow::policy

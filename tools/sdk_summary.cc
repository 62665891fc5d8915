#include "tools/sdk_summary.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/policy/text_normalize.h"

namespace idflow::tools {
namespace {

// The data types `sdk` declares over all its statement entries, else over
// the features of the app policy naming it; in file order, each once.
std::vector<std::string> DeclaredTypes(const policy::Policy& p, const std::string& sdk) {
  std::vector<std::string> out;
  auto add = [&](const std::vector<std::string>& types) {
    for (const std::string& t : types) {
      if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    }
  };
  for (const policy::Statement& s : p.statements) {
    for (const policy::Entry& e : s.entries) {
      if (policy::SameFolded(e.sdk, sdk)) add(e.data_types);
    }
  }
  if (!out.empty()) return out;
  for (const policy::AppPolicy& a : p.app_policies) {
    for (const std::string& name : a.sdks) {
      if (!policy::SameFolded(name, sdk)) continue;
      for (const policy::AppFeature& f : a.features) add(f.data_types);
    }
  }
  return out;
}

// Whether a statement entry or an app policy names `sdk`.
bool Named(const policy::Policy& p, const std::string& sdk) {
  for (const policy::Statement& s : p.statements) {
    for (const policy::Entry& e : s.entries) {
      if (policy::SameFolded(e.sdk, sdk)) return true;
    }
  }
  for (const policy::AppPolicy& a : p.app_policies) {
    for (const std::string& name : a.sdks) {
      if (policy::SameFolded(name, sdk)) return true;
    }
  }
  return false;
}

ObservedType Cover(const policy::Ontology& o, const std::vector<std::string>& declared,
                   const std::string& type) {
  ObservedType t;
  t.data_type = type;
  for (const std::string& d : declared) {
    if (d == type) {
      t.coverage = Coverage::kDeclared;
      return t;
    }
  }
  for (const std::string& d : declared) {
    if (!type.empty() && o.Subsumes(d, type)) {
      t.coverage = Coverage::kBroader;
      t.via = d;
      return t;
    }
  }
  return t;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "IDM SDK (libidm_sdk.so)", or the module alone for an undeclared one.
std::string Who(const std::string& sdk, const std::vector<std::string>& modules) {
  std::vector<std::string> names;
  for (const std::string& m : modules) names.push_back(Basename(m));
  const std::string mods = absl::StrJoin(names, ", ");
  if (sdk.empty()) return mods.empty() ? std::string("(unknown module)") : mods;
  return mods.empty() ? sdk : absl::StrCat(sdk, " (", mods, ")");
}

std::string CoverageText(const ObservedType& t) {
  switch (t.coverage) {
    case Coverage::kDeclared:
      return "declared";
    case Coverage::kBroader:
      return absl::StrCat("only as ", t.via);
    case Coverage::kUndeclared:
      break;
  }
  return "not declared";
}

}  // namespace

std::vector<SdkSummary> SummarizeSdks(const policy::Policy& policy,
                                      const std::vector<idflow::v1::Verdict>& verdicts) {
  // Key: (undeclared, the SDK name when a declaration names it, else the
  // module), so that declared SDKs come first.
  using Key = std::pair<bool, std::string>;
  std::map<Key, SdkSummary> by_key;
  std::map<Key, std::map<std::string, std::set<std::string>>> types, cookies;
  std::map<Key, std::set<std::string>> modules;
  for (const idflow::v1::Verdict& v : verdicts) {
    if (v.module().empty()) continue;
    const bool declared = !v.sdk().empty() && Named(policy, v.sdk());
    const Key key{!declared, declared ? v.sdk() : v.module()};
    SdkSummary& s = by_key[key];
    if (declared && s.sdk.empty()) {
      s.sdk = v.sdk();
      s.declared = DeclaredTypes(policy, v.sdk());
    }
    modules[key].insert(v.module());
    if (!v.cookie_name().empty()) {
      cookies[key][v.cookie_name()].insert(v.verdict());
    } else {
      types[key][v.data_type()].insert(v.verdict());
    }
  }
  std::vector<SdkSummary> out;
  for (auto& [key, s] : by_key) {
    s.modules.assign(modules[key].begin(), modules[key].end());
    for (const auto& [type, cats] : types[key]) {
      ObservedType t = Cover(policy.ontology, s.declared, type);
      t.categories.assign(cats.begin(), cats.end());
      s.observed.push_back(std::move(t));
    }
    for (const auto& [name, cats] : cookies[key]) {
      s.cookies.push_back({name, std::vector<std::string>(cats.begin(), cats.end())});
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string FormatSdkSummary(const std::vector<SdkSummary>& sdks,
                             const std::vector<idflow::v1::Verdict>& verdicts) {
  if (verdicts.empty()) return "no verdicts\n";
  std::string out = "SDKs: declared data types against observed ones\n";
  for (const SdkSummary& s : sdks) {
    absl::StrAppend(&out, Who(s.sdk, s.modules), "\n  declared  ",
                    s.sdk.empty() ? std::string("nothing (no statement names it)")
                                  : absl::StrJoin(s.declared, ", "),
                    "\n");
    if (!s.observed.empty()) {
      std::vector<std::string> items;
      for (const ObservedType& t : s.observed) {
        items.push_back(absl::StrCat(t.data_type, " (", CoverageText(t), ": ",
                                     absl::StrJoin(t.categories, ", "), ")"));
      }
      absl::StrAppend(&out, "  observed  ", absl::StrJoin(items, ", "), "\n");
    }
    if (!s.cookies.empty()) {
      std::vector<std::string> items;
      for (const ObservedCookie& c : s.cookies) {
        items.push_back(absl::StrCat(c.name, " (", absl::StrJoin(c.categories, ", "), ")"));
      }
      absl::StrAppend(&out, "  cookies   ", absl::StrJoin(items, ", "), "\n");
    }
  }
  std::vector<const idflow::v1::Verdict*> violations;
  for (const idflow::v1::Verdict& v : verdicts) {
    if (v.finding() == idflow::v1::FINDING_VIOLATION) violations.push_back(&v);
  }
  // In the order of the SDK blocks (declared SDKs first), then by category.
  std::sort(violations.begin(), violations.end(), [](const auto* a, const auto* b) {
    return std::make_tuple(a->sdk().empty(), a->sdk(), a->verdict(), a->data_type(),
                           a->cookie_name(), a->module(), a->destination()) <
           std::make_tuple(b->sdk().empty(), b->sdk(), b->verdict(), b->data_type(),
                           b->cookie_name(), b->module(), b->destination());
  });
  absl::StrAppend(&out, "\nViolations (", violations.size(), ")\n");
  for (const idflow::v1::Verdict* v : violations) {
    const std::string what =
        v->cookie_name().empty()
            ? absl::StrCat(v->action(), " ", v->data_type(),
                           v->destination().empty() ? "" : absl::StrCat(" to ", v->destination()))
            : absl::StrCat("cookie ", v->cookie_name(),
                           v->destination().empty() ? "" : absl::StrCat(" of ", v->destination()));
    absl::StrAppend(&out, "  ", v->verdict(), "  ", Who(v->sdk(), {v->module()}), "  ", what,
                    "\n    ", v->explanation(), "\n");
  }
  return out;
}

}  // namespace idflow::tools

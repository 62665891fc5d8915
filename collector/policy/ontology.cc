// Lookups over the ontology and the device bindings.
#include <fnmatch.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "collector/policy/policy.h"

namespace idflow::policy {

const DataType* Ontology::FindDataType(const std::string& id) const {
  for (const DataType& t : data_types) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

bool Ontology::Subsumes(const std::string& ancestor, const std::string& id) const {
  // Breadth-first up the parent links; `seen` also stops a malformed cycle.
  std::vector<std::string> frontier{id};
  std::set<std::string> seen;
  while (!frontier.empty()) {
    std::string cur = std::move(frontier.back());
    frontier.pop_back();
    if (cur == ancestor) return true;
    if (!seen.insert(cur).second) continue;
    if (const DataType* t = FindDataType(cur)) {
      frontier.insert(frontier.end(), t->parents.begin(), t->parents.end());
    }
  }
  return false;
}

const Entity* Ontology::FindEntityByName(const std::string& name_or_alias) const {
  for (const Entity& e : entities) {
    if (absl::EqualsIgnoreCase(e.name, name_or_alias)) return &e;
    for (const std::string& a : e.aliases) {
      if (absl::EqualsIgnoreCase(a, name_or_alias)) return &e;
    }
  }
  return nullptr;
}

namespace {

// Lower-cases a host and strips a trailing dot and any ":port" ("[v6]:port" too).
std::string NormalizeHost(const std::string& hostname) {
  std::string h = absl::AsciiStrToLower(absl::StripAsciiWhitespace(hostname));
  if (!h.empty() && h.front() == '[') {
    size_t close = h.find(']');
    h = close == std::string::npos ? h.substr(1) : h.substr(1, close - 1);
  } else if (std::count(h.begin(), h.end(), ':') == 1) {
    h = h.substr(0, h.find(':'));
  }
  while (!h.empty() && h.back() == '.') h.pop_back();
  return h;
}

// Length of the matched suffix when `pattern` covers `host`, else -1.
int DomainMatch(const std::string& pattern, const std::string& host) {
  std::string p = absl::AsciiStrToLower(pattern);
  while (!p.empty() && p.back() == '.') p.pop_back();
  if (absl::StartsWith(p, "*.")) {
    std::string base = p.substr(2);
    if (host == base || absl::EndsWith(host, "." + base)) return static_cast<int>(base.size());
    return -1;
  }
  return host == p ? static_cast<int>(p.size()) : -1;
}

}  // namespace

const Entity* Ontology::FindEntityByHost(const std::string& hostname) const {
  const std::string host = NormalizeHost(hostname);
  if (host.empty()) return nullptr;
  // Most specific pattern wins, so a sub-domain can belong to another entity.
  const Entity* best = nullptr;
  int best_len = -1;
  for (const Entity& e : entities) {
    for (const std::string& d : e.domains) {
      int len = DomainMatch(d, host);
      if (len > best_len) {
        best_len = len;
        best = &e;
      }
    }
  }
  return best;
}

const Entity* Ontology::FindEntity(const std::string& id) const {
  for (const Entity& e : entities) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

const SharingMethod* Ontology::FindSharingMethod(const std::string& id) const {
  for (const SharingMethod& m : sharing_methods) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

bool Ontology::HasScenario(const std::string& id) const {
  return std::find(scenarios.begin(), scenarios.end(), id) != scenarios.end();
}

bool Ontology::HasConsent(const std::string& id) const {
  for (const Consent& c : consents) {
    if (c.id == id) return true;
  }
  return false;
}

std::string Policy::SdkForModule(const std::string& module_path, const std::string& exe) const {
  // No FNM_PATHNAME: "*/libfoo.so" must match at any depth.
  if (!module_path.empty()) {
    for (const Binding& b : bindings) {
      for (const std::string& g : b.modules) {
        if (fnmatch(g.c_str(), module_path.c_str(), 0) == 0) return b.sdk;
      }
    }
  }
  if (!exe.empty()) {
    for (const Binding& b : bindings) {
      for (const std::string& g : b.processes) {
        if (fnmatch(g.c_str(), exe.c_str(), 0) == 0) return b.sdk;
      }
    }
  }
  return "";
}

}  // namespace idflow::policy

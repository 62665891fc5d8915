// Lookups over the ontology (module and binding lookups: responsible.cc).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "collector/policy/importer.h"
#include "collector/policy/policy.h"

namespace idflow::policy {

const DataType* Ontology::FindDataType(const std::string& id) const {
  for (const DataType& t : data_types) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

namespace {

// Depth-first up the parent links without allocating: Judge calls this per
// flow. The loader rejects cycles; the depth bound only guards hand-built
// ontologies.
bool SubsumesAt(const Ontology& o, const std::string& ancestor, const std::string& id, int depth) {
  if (id == ancestor) return true;
  if (depth > 64) return false;
  const DataType* t = o.FindDataType(id);
  if (t == nullptr) return false;
  for (const std::string& p : t->parents) {
    if (SubsumesAt(o, ancestor, p, depth + 1)) return true;
  }
  return false;
}

}  // namespace

bool Ontology::Subsumes(const std::string& ancestor, const std::string& id) const {
  return SubsumesAt(*this, ancestor, id, 0);
}

const Entity* Ontology::FindEntityByName(const std::string& name_or_alias) const {
  for (const Entity& e : entities) {
    if (absl::EqualsIgnoreCase(e.name, name_or_alias)) return &e;
    for (const std::string& a : e.aliases) {
      if (absl::EqualsIgnoreCase(a, name_or_alias)) return &e;
    }
  }
  // As the importer compares names (width, spaces next to CJK): a statement
  // it wrote must load.
  const std::string wanted = NormalizeForMatch(name_or_alias);
  for (const Entity& e : entities) {
    if (NormalizeForMatch(e.name) == wanted) return &e;
    for (const std::string& a : e.aliases) {
      if (NormalizeForMatch(a) == wanted) return &e;
    }
  }
  return nullptr;
}

namespace {

// Strips whitespace, a trailing dot and any ":port" ("[v6]:port" too). Case is
// left alone (DomainMatch ignores it), so this is a view, not a copy.
absl::string_view NormalizeHost(absl::string_view h) {
  h = absl::StripAsciiWhitespace(h);
  if (!h.empty() && h.front() == '[') {
    size_t close = h.find(']');
    h = close == absl::string_view::npos ? h.substr(1) : h.substr(1, close - 1);
  } else if (std::count(h.begin(), h.end(), ':') == 1) {
    h = h.substr(0, h.find(':'));
  }
  while (!h.empty() && h.back() == '.') h.remove_suffix(1);
  return h;
}

// Length of the matched suffix when `pattern` covers `host`, case-insensitive,
// else -1. No allocation: Judge calls this per flow and pattern.
int DomainMatch(absl::string_view pattern, absl::string_view host) {
  while (!pattern.empty() && pattern.back() == '.') pattern.remove_suffix(1);
  if (absl::ConsumePrefix(&pattern, "*.")) {
    if (absl::EqualsIgnoreCase(host, pattern)) return static_cast<int>(pattern.size());
    if (host.size() > pattern.size() && host[host.size() - pattern.size() - 1] == '.' &&
        absl::EndsWithIgnoreCase(host, pattern)) {
      return static_cast<int>(pattern.size());
    }
    return -1;
  }
  return absl::EqualsIgnoreCase(host, pattern) ? static_cast<int>(pattern.size()) : -1;
}

}  // namespace

const Entity* Ontology::FindEntityByHost(const std::string& hostname) const {
  const absl::string_view host = NormalizeHost(hostname);
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

}  // namespace idflow::policy

// Differences between two policies (e.g. two published versions) for
// `idflowctl policy diff`: what changed in every section (statements per SDK,
// cookie policies, app policies, bindings, ontology) and how the verdicts of
// hypothetical flows and cookies change. Rules: docs/POLICY.md §7.
#ifndef IDFLOW_COLLECTOR_POLICY_DIFF_H_
#define IDFLOW_COLLECTOR_POLICY_DIFF_H_

#include <cstdint>
#include <string>
#include <vector>

#include "collector/policy/cookies.h"
#include "collector/policy/policy.h"

namespace idflow::policy {

// One change: an item added or removed, or a field of an item changed.
struct Change {
  enum class Op { kAdded, kRemoved, kChanged };
  Op op = Op::kChanged;
  std::string
      kind;  // "statement", "entry", "data type", "cookie", "feature", ...; "" = the group itself
  std::string id;      // the item's id within its kind ("" with kind "")
  std::string detail;  // kAdded/kRemoved: shown after the id, e.g. a statement's version
  std::string field;   // kChanged only: e.g. "data_types", "max_age_seconds"
  bool list = false;   // kChanged: the field is a list (before/after are its items)
  std::vector<std::string> before;  // kChanged: old value (one element for a scalar)
  std::vector<std::string> after;
};

// Changes under one heading, e.g. one SDK, one cookie policy, the ontology.
struct ChangeGroup {
  // "statements", "sdk", "cookies", "app", "binding", "module_patterns", "ontology"
  std::string section;
  std::string name;  // SDK name, policy id, "runtime"/"first_party"; "" for statements/ontology
  Change::Op status = Change::Op::kChanged;  // kAdded/kRemoved: only one side has the group
  // The group's own fields first (kind ""), then per kind of item: +, then -,
  // then ~, each by id.
  std::vector<Change> changes;
};

// The verdict of one hypothetical SDK flow (see `DiffPolicies`) changed.
struct VerdictChange {
  std::string sdk;
  std::string data_type;
  Verdict before;
  Verdict after;
};

// The verdict of one hypothetical cookie (see `DiffPolicies`) changed.
struct CookieVerdictChange {
  std::string host;
  std::string cookie;
  bool session = false;
  int64_t max_age_seconds = -1;
  bool third_party = false;  // the row declaring it is third-party
  CookieVerdict before;
  CookieVerdict after;
};

struct PolicyDiff {
  // Sorted: statements, SDKs, cookie policies, app policies, bindings,
  // module patterns, ontology; within a section by name. Only groups with
  // changes.
  std::vector<ChangeGroup> groups;
  std::vector<VerdictChange> verdicts;               // by SDK, then data type
  std::vector<CookieVerdictChange> cookie_verdicts;  // by host, cookie, lifetime, party
  bool empty() const { return groups.empty() && verdicts.empty() && cookie_verdicts.empty(); }
};

// Statement sections only (groups "statements" and "sdk"): statements pair up
// by id (by id and version when one side holds several versions of an id),
// entries by id, grouped per SDK.
PolicyDiff DiffStatements(const std::vector<Statement>& old_statements,
                          const std::vector<Statement>& new_statements);

// Every section, then the verdict changes. The hypothetical flows: for every
// SDK that a statement entry or app policy of either side declares, and every
// data type id of either ontology, JudgeResolved(policy,
// Responsible{kSdk, module "hypothetical", sdk}, Flow{data_type, action "transmit",
// channel "tcp", no destination host or IP, no scenario, no consent}) on both
// sides; reported when the category differs. The hypothetical cookies: for
// every row of every cookie policy of either side and every site of that
// policy (host = the site without a leading "*."), a Set-Cookie from that host
// with the row's name and declared lifetime (session or max_age_seconds),
// host-only when the row is first-party, else with Domain "third-party.invalid";
// JudgeCookie on both sides, reported when the category differs.
PolicyDiff DiffPolicies(const Policy& old_policy, const Policy& new_policy);

// Human-readable rendering, one change per line ("+"/"-"/"~" prefixes).
std::string FormatDiff(const PolicyDiff& diff);

// One JSON document (an object, newline-terminated): {"identical", "groups",
// "verdicts", "cookie_verdicts", "hypothetical_flow", "hypothetical_cookie"}.
std::string DiffToJson(const PolicyDiff& diff);

}  // namespace idflow::policy

#endif  // IDFLOW_COLLECTOR_POLICY_DIFF_H_

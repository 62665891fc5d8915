// Differences between two sets of statements (e.g. two published versions),
// grouped per SDK, for `idflowctl policy diff`.
#ifndef IDFLOW_COLLECTOR_POLICY_DIFF_H_
#define IDFLOW_COLLECTOR_POLICY_DIFF_H_

#include <string>
#include <vector>

#include "collector/policy/policy.h"

namespace idflow::policy {

// One SDK's changes. Entries are matched by entry id.
struct SdkDiff {
  std::string sdk;
  bool added = false;                         // the SDK is named only in NEW
  bool removed = false;                       // the SDK is named only in OLD
  std::vector<std::string> data_types_added;  // over all entries of the SDK
  std::vector<std::string> data_types_removed;
  std::vector<std::string> entries_added;
  std::vector<std::string> entries_removed;
  // Entries in both with different fields: "ENTRY: FIELD [old] -> [new]".
  std::vector<std::string> entries_changed;
};

struct PolicyDiff {
  // Statement-level changes: "statement ID: version V1 -> V2", added/removed statements.
  std::vector<std::string> statements;
  std::vector<SdkDiff> sdks;  // sorted by SDK name, only SDKs with changes
  bool empty() const { return statements.empty() && sdks.empty(); }
};

PolicyDiff DiffStatements(const std::vector<Statement>& old_statements,
                          const std::vector<Statement>& new_statements);

// Human-readable rendering, one change per line ("+"/"-"/"~" prefixes).
std::string FormatDiff(const PolicyDiff& diff);

}  // namespace idflow::policy

#endif  // IDFLOW_COLLECTOR_POLICY_DIFF_H_

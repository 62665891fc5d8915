// Published data-sharing statement text -> Statement, and Statement -> the
// checked-in YAML. Derivation rules: docs/POLICY.md section 4.
#ifndef IDFLOW_COLLECTOR_POLICY_IMPORTER_H_
#define IDFLOW_COLLECTOR_POLICY_IMPORTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/policy/policy.h"

namespace idflow::policy {

// Parses the published text (`Version:` line, headings, `• Label: value`
// bullets, English or Chinese labels) into a Statement whose id lists are
// derived through `ontology`. Errors are InvalidArgument
// "SOURCE:LINE:COLUMN: message". `source_name` becomes Statement::source.
absl::StatusOr<Statement> ImportStatementText(const std::string& text,
                                              const std::string& source_name,
                                              const Ontology& ontology);

// Same, and appends non-fatal findings ("SOURCE:LINE:COLUMN: message") to
// `warnings`: shared-data items, scenarios or methods matching no ontology
// term (kept verbatim, never dropped), ignored labels.
absl::StatusOr<Statement> ImportStatementText(const std::string& text,
                                              const std::string& source_name,
                                              const Ontology& ontology,
                                              std::vector<std::string>* warnings);

// Emits `statement` in the format of policies/statements/*.yaml.
std::string StatementToYaml(const Statement& statement);

// Lower-case ASCII slug: runs of other characters become one '-'.
std::string Slug(const std::string& text);

// Splits a published shared-data list into items: on , ， 、 ; ； outside
// (nested) (), （）, 【】; a leading "and "/"or "/和/及/以及 is dropped.
std::vector<std::string> SplitSharedData(const std::string& value);

// Ontology data type ids one shared-data item maps to (docs/POLICY.md §4).
std::vector<std::string> MapSharedDataItem(const std::string& item, const Ontology& ontology);

}  // namespace idflow::policy

#endif  // IDFLOW_COLLECTOR_POLICY_IMPORTER_H_

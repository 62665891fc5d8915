// Verdict reports for people and pipelines: table, JSON lines, JUnit, SARIF.
#ifndef IDFLOW_TOOLS_REPORT_H_
#define IDFLOW_TOOLS_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/verdict_categories.h"
#include "idflow/v1/query.pb.h"

namespace idflow::tools {

// The finding of a verdict group: the collector's, or derived from the
// category name when an older collector sent none.
Finding FindingOfVerdict(const idflow::v1::Verdict& v);
bool IsViolation(const idflow::v1::Verdict& v);

// Formats: "table", "json" (one object per line), "junit", "sarif".
absl::StatusOr<std::string> FormatVerdicts(const std::vector<idflow::v1::Verdict>& verdicts,
                                           const std::string& format);

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_REPORT_H_

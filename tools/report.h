// Verdict reports for people and pipelines: table, JSON lines, JUnit, SARIF
// 2.1.0 and a self-contained HTML page.
#ifndef IDFLOW_TOOLS_REPORT_H_
#define IDFLOW_TOOLS_REPORT_H_

#include <cstdint>
#include <map>
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

// The usage context events of a run were judged under, from a moment on.
struct ContextChange {
  int64_t at_unix_ms = 0;  // the first event seen under it
  std::vector<std::string> scenarios;
  std::map<std::string, bool> consents;
  bool operator==(const ContextChange&) const = default;
};

// The context timeline of a run from its events: the first context, then
// one change each time an event (in time order) carries a different one.
std::vector<ContextChange> ContextTimeline(std::vector<idflow::v1::StoredEvent> events);

// What `idflowctl qa` adds to a report: the test command, how it ended, and
// the accounting that says every event it produced was judged or counted lost.
struct RunSummary {
  std::string run_id;
  std::vector<std::string> command;
  int exit_code = 0;      // the command's exit code; 128+N when killed by signal N
  std::string exit_text;  // "exited 0", "killed by signal 9", "could not start: ..."
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  uint64_t events_judged = 0;          // tap events stored and judged
  uint64_t events_lost = 0;            // tap events counted lost on the way (every cause)
  std::vector<ContextChange> context;  // ContextTimeline of the run's events
  // Where the run's TLS plaintext was seen (tls: preload ...; uprobe: ...):
  // a blind spot is stated, never silent. "" when unknown (a later report).
  std::string tls_coverage;
  // `idflowctl report` of an earlier run: no command, exit or accounting known.
  bool later = false;
};

// "table, json, junit, sarif, html": for usage and error messages.
inline constexpr char kReportFormats[] = "table, json, junit, sarif, html";
bool IsReportFormat(const std::string& format);

// Formats: "table", "json" (one object per line), "junit" (one test case per
// statement entry exercised), "sarif" (2.1.0, one rule per category),
// "html" (one page, inline CSS, no external assets). `run` (optional) adds
// the test command and its accounting.
absl::StatusOr<std::string> FormatReport(const std::vector<idflow::v1::Verdict>& verdicts,
                                         const std::string& format, const RunSummary* run);
inline absl::StatusOr<std::string> FormatVerdicts(const std::vector<idflow::v1::Verdict>& verdicts,
                                                  const std::string& format) {
  return FormatReport(verdicts, format, nullptr);
}

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_REPORT_H_

// The report of a QA run, shared by `idflowctl qa` (just after the run) and
// `idflowctl report` (later): the run's verdict groups and context timeline
// from the collector, formatted, written, and the exit code they imply.
#ifndef IDFLOW_TOOLS_RUN_REPORT_H_
#define IDFLOW_TOOLS_RUN_REPORT_H_

#include <string>

#include "idflow/v1/query.pb.h"
#include "tools/query_client.h"
#include "tools/report.h"

namespace idflow::tools {

struct RunReportOptions {
  std::string format = "table";
  std::string out;       // "" = stdout; else written atomically
  std::string command;   // "qa" or "report", for messages
  bool timeline = true;  // list the events too, for the context timeline
  // Set run->events_judged from the verdict groups' counts (a shared
  // collector's agent counts hold other runs' events too).
  bool judged_from_verdicts = false;
};

// Lists what `filter` selects (verdicts and, for the timeline, events),
// fills run->context, writes the report and a summary line on stderr.
// Returns 1 when a violation is found, 0 when none, 2 when the collector or
// the output failed (the reason on stderr).
int WriteRunReport(const QueryClient& client, const idflow::v1::VerdictFilter& filter,
                   RunSummary* run, const RunReportOptions& options);

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_RUN_REPORT_H_

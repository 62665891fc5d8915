#include "tools/run_report.h"

#include <iostream>

#include "common/file_util.h"

namespace idflow::tools {
namespace {

// Bounds what a report loads: a run is a test, not a fleet's history.
constexpr size_t kMaxVerdictGroups = 100000;
constexpr size_t kMaxTimelineEvents = 200000;

}  // namespace

int WriteRunReport(const QueryClient& client, const idflow::v1::VerdictFilter& filter,
                   RunSummary* run, const RunReportOptions& options) {
  const std::string who = "idflowctl " + options.command + ": ";
  auto verdicts = client.ListVerdicts(filter, kMaxVerdictGroups);
  if (!verdicts.ok()) {
    std::cerr << who << verdicts.status().message() << "\n";
    return 2;
  }
  if (options.judged_from_verdicts) {
    run->events_judged = 0;
    for (const auto& v : *verdicts) run->events_judged += v.count();
  }
  if (options.timeline) {
    auto events = client.ListEvents(filter, kMaxTimelineEvents);
    if (!events.ok()) {
      std::cerr << who << events.status().message() << "\n";
      return 2;
    }
    if (events->size() == kMaxTimelineEvents) {
      std::cerr << who << "warning: the context timeline covers the latest " << kMaxTimelineEvents
                << " events only\n";
    }
    run->context = ContextTimeline(*std::move(events));
  }
  auto text = FormatReport(*verdicts, options.format, run);
  if (!text.ok()) {
    std::cerr << who << text.status().message() << "\n";
    return 2;
  }
  if (options.out.empty()) {
    std::cout << *text << std::flush;
  } else if (absl::Status st = WriteFileAtomic(options.out, *text); !st.ok()) {
    std::cerr << who << st.message() << "\n";
    return 2;
  }
  size_t violations = 0;
  for (const auto& v : *verdicts) violations += IsViolation(v);
  if (!run->later) {
    // The command's own result is reported apart and never hides a violation.
    if (run->exit_code != 0) {
      std::cerr << who << "the test command " << run->exit_text
                << " (reported; its flows are judged all the same)\n";
    }
    std::cerr << who << "run " << run->run_id << ": " << violations << " violations in "
              << verdicts->size() << " verdict groups; " << run->events_judged << " events judged, "
              << run->events_lost << " lost\n";
    if (!run->tls_coverage.empty()) std::cerr << who << run->tls_coverage << "\n";
  } else {
    if (!run->run_id.empty() && verdicts->empty()) {
      std::cerr << who << "warning: no event carries run id " << run->run_id
                << ": the run observed nothing, or the id is wrong\n";
    }
    std::cerr << who << (run->run_id.empty() ? "" : "run " + run->run_id + ": ") << violations
              << " violations in " << verdicts->size() << " verdict groups\n";
  }
  return violations > 0 ? 1 : 0;
}

}  // namespace idflow::tools

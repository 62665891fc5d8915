// idflowctl report: the report of an earlier QA run (by its run id) or of
// everything judged since a time, from a collector, in the formats `qa`
// writes; exit 1 when it holds a violation.
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/control_protocol.h"
#include "common/flags.h"
#include "tools/commands.h"
#include "tools/query_client.h"
#include "tools/report.h"
#include "tools/run_report.h"

namespace idflow::tools {
namespace {

constexpr char kUsage[] =
    "usage: idflowctl report --collector HOST:PORT (--run-id ID | --since TIME)\n"
    "                        [--format table|json|junit|sarif|html] [--out FILE]\n"
    "  TIME: unix milliseconds, RFC 3339 (2026-11-30T17:00:00Z) or a duration ago (90m, 2h)\n";

}  // namespace

absl::StatusOr<int64_t> ParseSince(const std::string& text, absl::Time now) {
  int64_t ms = 0;
  if (absl::SimpleAtoi(text, &ms) && ms > 0) return ms;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return absl::ToUnixMillis(t);
  absl::Duration d;
  if (absl::ParseDuration(text, &d) && d > absl::ZeroDuration()) {
    return absl::ToUnixMillis(now - d);
  }
  return absl::InvalidArgumentError(
      "--since takes unix milliseconds, an RFC 3339 time or a positive duration (90m, 2h)");
}

int ReportCommand(int argc, char** argv) {
  FlagSet flags;
  AddQueryFlags(&flags);
  flags.Add("run-id", "", "the run to report (idflowctl qa --run-id, IDFLOW_RUN_ID)");
  flags.Add("since", "", "report everything last seen at or after TIME");
  flags.Add("format", "table", "table | json | junit | sarif | html");
  flags.Add("out", "", "write the report to FILE (atomically) instead of stdout");
  if (auto st = flags.Parse(argc, argv, 2, /*allow_positional=*/false); !st.ok()) {
    std::cerr << "idflowctl report: " << st.message() << "\n" << kUsage;
    return 2;
  }
  const std::string run_id = flags.Get("run-id"), since = flags.Get("since");
  if (run_id.empty() == since.empty()) {
    std::cerr << "idflowctl report: give exactly one of --run-id and --since\n" << kUsage;
    return 2;
  }
  if (!IsReportFormat(flags.Get("format"))) {
    std::cerr << "idflowctl report: unknown --format '" << flags.Get("format") << "' ("
              << kReportFormats << ")\n";
    return 2;
  }
  idflow::v1::VerdictFilter filter;
  if (!run_id.empty()) {
    if (!agent::IsValidRunId(run_id)) {
      std::cerr << "idflowctl report: --run-id takes 1 to 64 characters of [A-Za-z0-9._:-]\n";
      return 2;
    }
    filter.set_run_id(run_id);
  } else {
    absl::StatusOr<int64_t> ms = ParseSince(since, absl::Now());
    if (!ms.ok()) {
      std::cerr << "idflowctl report: " << ms.status().message() << "\n";
      return 2;
    }
    filter.set_since_unix_ms(*ms);
  }
  auto client = QueryClient::FromFlags(flags);
  if (!client.ok()) {
    std::cerr << "idflowctl report: " << client.status().message() << "\n";
    return 2;
  }
  RunSummary run;
  run.run_id = run_id;
  run.later = true;
  RunReportOptions options;
  options.format = flags.Get("format");
  options.out = flags.Get("out");
  options.command = "report";
  options.timeline = !run_id.empty();
  return WriteRunReport(*client, filter, &run, options);
}

}  // namespace idflow::tools

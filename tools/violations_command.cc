#include <iostream>

#include "absl/strings/numbers.h"
#include "common/flags.h"
#include "tools/commands.h"
#include "tools/query_client.h"
#include "tools/report.h"

namespace idflow::tools {

int ViolationsCommand(int argc, char** argv) {
  FlagSet flags;
  AddQueryFlags(&flags);
  flags.Add("device", "", "only this device");
  flags.Add("sdk", "", "only this SDK");
  flags.Add("verdict", "", "only this verdict (clear, omitted, ...)");
  flags.Add("format", "table", "table | json | junit | sarif | html");
  flags.Add("limit", "100000", "at most this many verdict groups (all pages are followed)");
  flags.AddBool("all", "include observations and clear verdicts, not only violations");
  if (auto st = flags.Parse(argc, argv, 2); !st.ok()) {
    std::cerr << "idflowctl violations: " << st.message() << "\nusage: idflowctl violations "
              << "--collector HOST:PORT [--device ID] [--sdk NAME] [--all] "
                 "[--format table|json|junit|sarif|html]\n";
    return 2;
  }
  const std::string format = flags.Get("format");
  if (!IsReportFormat(format)) {
    std::cerr << "idflowctl violations: unknown --format '" << format << "' (" << kReportFormats
              << ")\n";
    return 2;
  }
  size_t limit = 0;
  if (!absl::SimpleAtoi(flags.Get("limit"), &limit) || limit == 0) {
    std::cerr << "idflowctl violations: --limit takes a positive integer\n";
    return 2;
  }
  auto client = QueryClient::FromFlags(flags);
  if (!client.ok()) {
    std::cerr << "idflowctl violations: " << client.status().message() << "\n";
    return 2;
  }
  idflow::v1::VerdictFilter filter;
  filter.set_device(flags.Get("device"));
  filter.set_sdk(flags.Get("sdk"));
  filter.set_verdict(flags.Get("verdict"));
  filter.set_violations_only(!flags.GetBool("all"));
  auto verdicts = client->ListVerdicts(filter, limit);
  if (!verdicts.ok()) {
    std::cerr << "idflowctl violations: " << verdicts.status().message() << "\n";
    return 2;
  }
  auto text = FormatVerdicts(*verdicts, format);
  if (!text.ok()) {
    std::cerr << "idflowctl violations: " << text.status().message() << "\n";
    return 2;
  }
  std::cout << *text;
  // Observations are shown with --all but never fail a run.
  for (const auto& v : *verdicts) {
    if (IsViolation(v)) return 1;
  }
  return 0;
}

}  // namespace idflow::tools

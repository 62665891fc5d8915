// idflowctl summary: per SDK, declared data types against observed ones,
// then the violations with their explanations (tools/sdk_summary.h).
#include <iostream>

#include "collector/policy/policy.h"
#include "common/flags.h"
#include "tools/commands.h"
#include "tools/policy_common.h"
#include "tools/query_client.h"
#include "tools/sdk_summary.h"

namespace idflow::tools {

int SummaryCommand(int argc, char** argv) {
  FlagSet flags;
  AddQueryFlags(&flags);
  flags.Add("device", "", "only this device");
  flags.Add("policies", "", "the collector's policy dir (default: the source tree's)");
  if (auto st = flags.Parse(argc, argv, 2); !st.ok()) {
    std::cerr << "idflowctl summary: " << st.message()
              << "\nusage: idflowctl summary --collector HOST:PORT [--device ID] "
                 "[--policies DIR]\n";
    return 2;
  }
  const std::string dir =
      flags.Get("policies").empty() ? DefaultPoliciesDir() : flags.Get("policies");
  auto policy = policy::LoadPolicyDir(dir);
  if (!policy.ok()) {
    std::cerr << "idflowctl summary: " << policy.status().message() << "\n";
    return 2;
  }
  auto client = QueryClient::FromFlags(flags);
  if (!client.ok()) {
    std::cerr << "idflowctl summary: " << client.status().message() << "\n";
    return 2;
  }
  idflow::v1::VerdictFilter filter;
  filter.set_device(flags.Get("device"));
  auto verdicts = client->ListVerdicts(filter, 100000);
  if (!verdicts.ok()) {
    std::cerr << "idflowctl summary: " << verdicts.status().message() << "\n";
    return 2;
  }
  std::cout << FormatSdkSummary(SummarizeSdks(*policy, *verdicts), *verdicts);
  for (const auto& v : *verdicts) {
    if (v.finding() == idflow::v1::FINDING_VIOLATION) return 1;
  }
  return 0;
}

}  // namespace idflow::tools

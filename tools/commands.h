// idflowctl subcommands. Each returns the process exit code:
// 0 ok, 1 violations found, 2 bad input or usage (reason on stderr).
#ifndef IDFLOW_TOOLS_COMMANDS_H_
#define IDFLOW_TOOLS_COMMANDS_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/control_protocol.h"

namespace idflow::tools {

int RunCommand(int argc, char** argv);         // idflowctl run ... -- CMD ARGS
int ViolationsCommand(int argc, char** argv);  // idflowctl violations ...
int AgentsCommand(int argc, char** argv);      // idflowctl agents ...
int PolicyCommand(int argc, char** argv);      // idflowctl policy import|lint|diff|explain
int QaCommand(int argc, char** argv);          // idflowctl qa ... -- TEST COMMAND
int SummaryCommand(int argc, char** argv);     // idflowctl summary (declared vs observed)
int ReportCommand(int argc, char** argv);      // idflowctl report --run-id ID | --since T
int ContextCommand(int argc, char** argv);     // idflowctl context set KEY=VALUE...
int AgentCommand(int argc, char** argv);       // idflowctl agent status [--json]

// `idflowctl agent status`: the agent's answer on its tap socket (Unavailable
// when none listens), and its table and JSON forms.
absl::StatusOr<agent::AgentStatus> QueryAgentStatus(const std::string& socket,
                                                    std::chrono::milliseconds timeout);
std::string FormatAgentStatusTable(const agent::AgentStatus& status);
std::string FormatAgentStatusJson(const agent::AgentStatus& status);

// `idflowctl report --since`: unix ms, RFC 3339, or a duration before `now`.
absl::StatusOr<int64_t> ParseSince(const std::string& text, absl::Time now);

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_COMMANDS_H_

// The agent's configuration: a YAML file whose keys are the flag names
// (agent/examples/agent.yaml), with the flags given on the command line
// applied over it. One table of settings serves both, so a key and its flag
// never differ in name, type or checks.
#ifndef IDFLOW_AGENT_CONFIG_H_
#define IDFLOW_AGENT_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "agent/agent.h"
#include "common/flags.h"

namespace idflow::agent {

// Read when it exists and no --config is given.
inline constexpr char kDefaultAgentConfigPath[] = "/etc/idflow/agent.yaml";

// Registers every setting as a flag, plus --config, --help and --version.
void AddAgentFlags(FlagSet* flags);

// The options from the config file, then the flags set on `flags` (already
// parsed by the caller) over it: a flag replaces the file's value, lists
// included. The file is --config when given (missing: NotFound; an empty
// --config reads none), otherwise `default_path` when it exists (absent:
// flags and defaults only).
// Errors are InvalidArgument (NotFound for a missing file) and point at the
// culprit: "FILE:LINE:COLUMN: KEY ..." for the file (unknown key, wrong
// type, bad value), "--KEY ..." for a flag.
absl::StatusOr<AgentOptions> LoadAgentConfig(
    const FlagSet& flags, const std::string& default_path = kDefaultAgentConfigPath);

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_CONFIG_H_

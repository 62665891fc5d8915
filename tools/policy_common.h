// Shared by the `idflowctl policy` subcommands (policy_*_command.cc):
// usage, finding output, flag normalisation, policy-dir defaults.
#ifndef IDFLOW_TOOLS_POLICY_COMMON_H_
#define IDFLOW_TOOLS_POLICY_COMMON_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/policy/policy.h"

namespace idflow::tools {

extern const char kPolicyUsage[];

// "FILE:LINE:COLUMN: message", "FILE:LINE: message" or a bare message, split
// so that --format json can carry the position as fields.
struct Located {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
};
Located Locate(const std::string& text);

// One finding as a JSON object (no newline).
std::string JsonFinding(const std::string& severity, const std::string& text);

// Prints one finding: text as "FILE:LINE:COL: severity: msg", json as one object per line.
void Report(std::ostream& os, const std::string& format, const std::string& severity,
            const std::string& text);

// Prints `why` and the usage on stderr; returns 2.
int Usage(const std::string& why);

// Strips the "-o" short form down to what FlagSet knows ("--output").
std::vector<char*> Normalize(int argc, char** argv, std::vector<std::string>* storage);

// <dir of idflowctl>/../../policies (build/bin -> repo), else ./policies.
std::string DefaultPoliciesDir();

// The ontology alone is enough to import or to load a single statement.
struct LoadedOntology {
  policy::PolicyFile file;
  policy::Ontology ontology;
};
absl::StatusOr<LoadedOntology> LoadOntologyOnly(const std::string& dir);

// Subcommands.
int PolicyImport(int argc, char** argv);
int PolicyLint(int argc, char** argv);
int PolicyDiff(int argc, char** argv);
int PolicyExplain(int argc, char** argv);

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_POLICY_COMMON_H_

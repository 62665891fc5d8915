// idflowctl subcommands. Each returns the process exit code:
// 0 ok, 1 violations found, 2 bad input or usage (reason on stderr).
#ifndef IDFLOW_TOOLS_COMMANDS_H_
#define IDFLOW_TOOLS_COMMANDS_H_

namespace idflow::tools {

int RunCommand(int argc, char** argv);         // idflowctl run ... -- CMD ARGS
int ViolationsCommand(int argc, char** argv);  // idflowctl violations ...
int AgentsCommand(int argc, char** argv);      // idflowctl agents ...
int PolicyCommand(int argc, char** argv);      // idflowctl policy import|lint|diff|explain
int QaCommand(int argc, char** argv);          // idflowctl qa ... -- TEST COMMAND

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_COMMANDS_H_

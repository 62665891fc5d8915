// idflowctl: thin dispatch over the tools library.
#include <cstring>
#include <iostream>

#include "tools/commands.h"

namespace {
constexpr char kUsage[] =
    "usage: idflowctl COMMAND [flags]\n"
    "commands:\n"
    "  run --socket PATH [--scenario NAME] [--consent KEY=true|false] [--allow-unobserved]\n"
    "      -- CMD ARGS...   run a program under the tap (exit 2 when no agent listens)\n"
    "  violations --collector HOST:PORT [--device ID] [--sdk NAME] [--all]\n"
    "             [--format table|json|junit|sarif|html]\n"
    "      list verdicts; exit 1 when violations are found\n"
    "  agents --collector HOST:PORT [--device ID] [--format table|json]\n"
    "      agents, where their data stands, and what was lost per cause\n"
    "  qa [--format table|json|junit|sarif|html] [--out FILE] [--run-id ID] [--keep]\n"
    "     [--policies DIR] [--identity FILE] -- TEST COMMAND...\n"
    "      run a test command under an embedded agent and collector; report, exit 1 on\n"
    "      violations\n"
    "  policy import FILE [--kind statement|cookies] [-o OUT.yaml]\n"
    "  policy lint DIR | policy diff OLD NEW | policy explain --sdk NAME --data TYPE\n"
    "      work with declared policies\n";
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const char* cmd = argv[1];
  if (!std::strcmp(cmd, "run")) return idflow::tools::RunCommand(argc, argv);
  if (!std::strcmp(cmd, "violations")) return idflow::tools::ViolationsCommand(argc, argv);
  if (!std::strcmp(cmd, "agents")) return idflow::tools::AgentsCommand(argc, argv);
  if (!std::strcmp(cmd, "policy")) return idflow::tools::PolicyCommand(argc, argv);
  if (!std::strcmp(cmd, "qa")) return idflow::tools::QaCommand(argc, argv);
  if (!std::strcmp(cmd, "help") || !std::strcmp(cmd, "--help")) {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "idflowctl: unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}

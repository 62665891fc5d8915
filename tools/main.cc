// idflowctl: thin dispatch over the tools library.
#include <cstring>
#include <iostream>

#include "common/version.h"
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
    "  summary --collector HOST:PORT [--device ID] [--policies DIR]\n"
    "      per SDK, declared data types against observed ones, then the violations\n"
    "  qa [--format table|json|junit|sarif|html] [--out FILE] [--run-id ID] [--keep]\n"
    "     [--policies DIR] [--identity FILE] [--socket PATH --collector HOST:PORT]\n"
    "     -- TEST COMMAND...\n"
    "      run a test command under an embedded (or the given) agent and collector; report,\n"
    "      exit 1 on violations\n"
    "  report --collector HOST:PORT (--run-id ID | --since TIME) [--format ...] [--out FILE]\n"
    "      the report of an earlier run, or of everything since TIME\n"
    "  context set --socket PATH [--pid PID] scenario=NAME consent.KEY=true|false run_id=ID\n"
    "      change the usage context events are judged under, from now on\n"
    "  policy import FILE [--kind statement|cookies] [-o OUT.yaml]\n"
    "  policy lint DIR | policy diff OLD NEW | policy explain --sdk NAME --data TYPE\n"
    "      work with declared policies\n"
    "  --version\n"
    "      print the version and exit\n";
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
  if (!std::strcmp(cmd, "summary")) return idflow::tools::SummaryCommand(argc, argv);
  if (!std::strcmp(cmd, "report")) return idflow::tools::ReportCommand(argc, argv);
  if (!std::strcmp(cmd, "context")) return idflow::tools::ContextCommand(argc, argv);
  if (!std::strcmp(cmd, "agent")) return idflow::tools::AgentCommand(argc, argv);
  if (!std::strcmp(cmd, "--version")) {
    std::cout << idflow::VersionLine("idflowctl") << "\n";
    return 0;
  }
  if (!std::strcmp(cmd, "help") || !std::strcmp(cmd, "--help")) {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "idflowctl: unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}

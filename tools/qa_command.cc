// idflowctl qa: one command that gates a test run. An agent and a collector
// run inside this process; the test command runs under the tap; once every
// event it produced is judged, the report is written and the exit code says
// whether a violation was found.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "tools/commands.h"
#include "tools/embedded_stack.h"
#include "tools/query_client.h"
#include "tools/report.h"
#include "tools/tap_launch.h"

namespace idflow::tools {
namespace {

constexpr char kUsage[] =
    "usage: idflowctl qa [--format table|json|junit|sarif|html] [--out FILE] [--run-id ID]\n"
    "                    [--keep] [--policies DIR] [--identity FILE] [--timeout SECONDS]\n"
    "                    [--scenario NAME] [--consent KEY=true|false] -- TEST COMMAND...\n";

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// --policies, else ./policies, else the policies of the source tree built.
std::string PoliciesDir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (IsDir("policies")) return "policies";
  return IDFLOW_DEFAULT_POLICIES_DIR;
}

// Forks, runs the launch under the tap in the child and waits for it.
RunSummary RunTestCommand(const TapLaunch& launch) {
  RunSummary run;
  run.command = launch.command;
  run.started_unix_ms = absl::ToUnixMillis(absl::Now());
  // Ctrl-C reaches the test command (same process group); idflowctl stays
  // to judge what it did.
  struct sigaction ignore {
  }, old_int{}, old_term{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, &old_int);
  ::sigaction(SIGTERM, &ignore, &old_term);
  // Built before the fork: the child only restores signals and execs
  // (async-signal-safe calls only; this process runs an agent and a
  // collector on other threads).
  const PreparedExec exec(launch);
  static constexpr char kCannotRun[] = "idflowctl qa: cannot run the test command\n";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    exec.Exec();
    (void)!::write(2, kCannotRun, sizeof(kCannotRun) - 1);
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0) {
    run.exit_code = 127;
    run.exit_text = absl::StrCat("could not start: fork: ", std::strerror(errno));
  } else {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) {
      run.exit_code = 128 + WTERMSIG(status);
      run.exit_text = absl::StrCat("killed by signal ", WTERMSIG(status));
    } else {
      run.exit_code = WEXITSTATUS(status);
      run.exit_text = run.exit_code == 127 ? "could not start (exit 127)"
                                           : absl::StrCat("exited ", run.exit_code);
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  run.finished_unix_ms = absl::ToUnixMillis(absl::Now());
  return run;
}

// A Query API client for the embedded collector.
absl::StatusOr<QueryClient> ClientFor(const std::string& address) {
  FlagSet flags;
  AddQueryFlags(&flags);
  std::string arg0 = "qa", flag = "--collector", value = address;
  char* argv[] = {arg0.data(), flag.data(), value.data()};
  if (absl::Status st = flags.Parse(3, argv); !st.ok()) return st;
  return QueryClient::FromFlags(flags);
}

}  // namespace

int QaCommand(int argc, char** argv) {
  FlagSet flags;
  flags.Add("format", "table", "table | json | junit | sarif | html");
  flags.Add("out", "", "write the report to FILE (atomically) instead of stdout");
  flags.Add("run-id", "", "name of this run in the report (default: qa-<unix ms>-<pid>)");
  flags.Add("policies", "", "declared policies (default: ./policies, else the source tree's)");
  flags.Add("identity", "", "identity file (YAML) of the device (default: sysfs only)");
  flags.Add("timeout", "120", "seconds to wait for the events to be judged after the command");
  flags.AddBool("keep", "keep the scratch directory (SQLite file, spool) and print its path");
  AddTapFlags(&flags);
  if (auto st = flags.Parse(argc, argv, 2, /*allow_positional=*/false); !st.ok()) {
    std::cerr << "idflowctl qa: " << st.message() << "\n" << kUsage;
    return 2;
  }
  const std::string format = flags.Get("format");
  if (!IsReportFormat(format)) {
    std::cerr << "idflowctl qa: unknown --format '" << format << "' (" << kReportFormats << ")\n";
    return 2;
  }
  int timeout_s = 0;
  if (!absl::SimpleAtoi(flags.Get("timeout"), &timeout_s) || timeout_s <= 0) {
    std::cerr << "idflowctl qa: --timeout takes a positive number of seconds\n";
    return 2;
  }
  auto launch = TapLaunchFromFlags(flags, "");
  if (!launch.ok()) {
    std::cerr << "idflowctl qa: " << launch.status().message() << "\n" << kUsage;
    return 2;
  }
  const std::string policies = PoliciesDir(flags.Get("policies"));
  if (!IsDir(policies)) {
    std::cerr << "idflowctl qa: no policies directory at " << policies << " (give --policies)\n";
    return 2;
  }
  EmbeddedStackOptions options;
  options.policies_dir = policies;
  options.identity_file = flags.Get("identity");
  options.keep = flags.GetBool("keep");
  auto stack = EmbeddedStack::Start(options);
  if (!stack.ok()) {
    std::cerr << "idflowctl qa: " << stack.status().message() << "\n";
    return 2;
  }
  if (options.keep) std::cerr << "idflowctl qa: keeping " << (*stack)->dir() << "\n";
  launch->socket = (*stack)->socket();

  RunSummary run = RunTestCommand(*launch);
  run.run_id = flags.Get("run-id").empty()
                   ? absl::StrCat("qa-", run.started_unix_ms, "-", ::getpid())
                   : flags.Get("run-id");
  if (absl::Status st = (*stack)->WaitJudged(std::chrono::seconds(timeout_s)); !st.ok()) {
    std::cerr << "idflowctl qa: " << st.message() << "\n";
    return 2;
  }
  auto client = ClientFor((*stack)->collector_address());
  if (!client.ok()) {
    std::cerr << "idflowctl qa: " << client.status().message() << "\n";
    return 2;
  }
  idflow::v1::VerdictFilter all;
  auto verdicts = client->ListVerdicts(all, 100000);
  auto agents = client->ListAgents("");
  if (!verdicts.ok() || !agents.ok()) {
    std::cerr << "idflowctl qa: " << (verdicts.ok() ? agents.status() : verdicts.status()).message()
              << "\n";
    return 2;
  }
  for (const auto& a : *agents) {
    const auto& d = a.drops();
    run.events_judged += a.events_stored();
    run.events_lost += d.tap_dropped() + d.ingress_rejected() + d.spool_dropped() +
                       d.disk_dropped() + d.dead_lettered() + a.gap_events();
  }
  auto text = FormatReport(*verdicts, format, &run);
  if (!text.ok()) {
    std::cerr << "idflowctl qa: " << text.status().message() << "\n";
    return 2;
  }
  if (const std::string out = flags.Get("out"); out.empty()) {
    std::cout << *text << std::flush;
  } else if (absl::Status st = WriteFileAtomic(out, *text); !st.ok()) {
    std::cerr << "idflowctl qa: " << st.message() << "\n";
    return 2;
  }
  size_t violations = 0;
  for (const auto& v : *verdicts) violations += IsViolation(v);
  // The command's own result is reported apart and never hides a violation.
  if (run.exit_code != 0) {
    std::cerr << "idflowctl qa: the test command " << run.exit_text
              << " (reported; its flows are judged all the same)\n";
  }
  std::cerr << "idflowctl qa: run " << run.run_id << ": " << violations << " violations in "
            << verdicts->size() << " verdict groups; " << run.events_judged << " events judged, "
            << run.events_lost << " lost\n";
  return violations > 0 ? 1 : 0;
}

}  // namespace idflow::tools

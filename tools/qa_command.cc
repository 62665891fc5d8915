// idflowctl qa: one command that gates a test run. An agent and a collector
// run inside this process (or, with --socket and --collector, running ones
// are used); the test command runs under the tap with its run id; once every
// event it produced is judged, the report is written and the exit code says
// whether a violation was found.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/control_protocol.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "tools/commands.h"
#include "tools/control_client.h"
#include "tools/embedded_stack.h"
#include "tools/query_client.h"
#include "tools/report.h"
#include "tools/run_report.h"
#include "tools/tap_launch.h"

namespace idflow::tools {
namespace {

constexpr char kUsage[] =
    "usage: idflowctl qa [--format table|json|junit|sarif|html] [--out FILE] [--run-id ID]\n"
    "                    [--keep] [--policies DIR] [--identity FILE] [--timeout SECONDS]\n"
    "                    [--socket PATH --collector HOST:PORT [--tls-ca ...]]\n"
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
  // The child waits on `gate` until the agent has attached its TLS probes
  // for its pid (they take effect at the exec).
  int gate[2] = {-1, -1};
  if (::pipe2(gate, O_CLOEXEC) != 0) gate[0] = gate[1] = -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    if (gate[0] >= 0) {
      ::close(gate[1]);
      char c;
      while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
      }
    }
    exec.Exec();
    (void)!::write(2, kCannotRun, sizeof(kCannotRun) - 1);
    ::_exit(127);
  }
  if (gate[0] >= 0) ::close(gate[0]);
  if (pid > 0) run.tls_coverage = WatchTls(launch.socket, pid, exec);
  if (gate[1] >= 0) ::close(gate[1]);  // the child execs
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

// A Query API client for `address`, with the TLS and token flags given.
absl::StatusOr<QueryClient> ClientFor(const std::string& address, const FlagSet& given) {
  FlagSet flags;
  AddQueryFlags(&flags);
  std::vector<std::string> args = {"qa", "--collector", address};
  for (const char* name : {"tls-ca", "tls-cert", "tls-key", "auth-token-file"}) {
    if (!given.Get(name).empty()) {
      args.push_back(absl::StrCat("--", name));
      args.push_back(given.Get(name));
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (absl::Status st = flags.Parse(static_cast<int>(argv.size()), argv.data()); !st.ok())
    return st;
  return QueryClient::FromFlags(flags);
}

// Tap events an agent lost, every cause, as the collector knows it.
uint64_t Lost(const idflow::v1::AgentStatus& a) {
  const auto& d = a.drops();
  return d.tap_dropped() + d.ingress_rejected() + d.spool_dropped() + d.disk_dropped() +
         d.dead_lettered() + a.gap_events();
}

// Polls `done` every 20 ms until it holds or `deadline` passes.
bool PollUntil(const std::function<bool()>& done, absl::Time deadline) {
  for (;;) {
    if (done()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

// With a running agent and collector: the run is flushed by the agent once
// its processes are gone, then awaited at the collector by sequence number.
// Returns 0 when judged, 2 (reason printed) otherwise.
int AwaitRemote(const std::string& socket, const QueryClient& client, int timeout_s,
                const std::map<std::string, uint64_t>& lost_before, RunSummary* run) {
  agent::FlushRunRequest req;
  req.run_id = run->run_id;
  req.timeout_ms = static_cast<uint32_t>(timeout_s) * 1000;
  absl::StatusOr<std::string> frame = agent::EncodeFlushRun(req);
  if (!frame.ok()) {
    std::cerr << "idflowctl qa: " << frame.status().message() << "\n";
    return 2;
  }
  auto reply = SendControl(socket, *frame, std::chrono::seconds(timeout_s + 10));
  if (!reply.ok()) {
    std::cerr << "idflowctl qa: " << reply.status().message() << "\n";
    return 2;
  }
  if (reply->code == absl::StatusCode::kDeadlineExceeded) {
    std::cerr << "idflowctl qa: warning: " << reply->text << "\n";
  } else if (absl::Status st = ReplyStatus(*reply); !st.ok()) {
    std::cerr << "idflowctl qa: the agent on " << socket << ": " << st.message() << "\n";
    return 2;
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(timeout_s);
  std::optional<idflow::v1::AgentStatus> mine;
  absl::Status last = absl::OkStatus();
  const bool judged = PollUntil(
      [&] {
        auto agents = client.ListAgents("");
        if (!agents.ok()) {
          last = agents.status();
          return false;
        }
        for (const auto& a : *agents) {
          if (a.agent_id() == reply->agent_id) mine = a;
        }
        return reply->seq == 0 || (mine && mine->stored_up_to() >= reply->seq);
      },
      deadline);
  if (!judged) {
    std::cerr << "idflowctl qa: the collector has agent " << reply->agent_id << " up to seq "
              << (mine ? mine->stored_up_to() : 0) << " of " << reply->seq << " after " << timeout_s
              << " s" << (last.ok() ? "" : absl::StrCat(" (", last.message(), ")"))
              << "; is the agent on " << socket << " sending to this collector?\n";
    return 2;
  }
  if (mine) {
    auto it = lost_before.find(mine->agent_id());
    run->events_lost =
        Lost(*mine) - std::min(Lost(*mine), it == lost_before.end() ? 0 : it->second);
  }
  return 0;
}

}  // namespace

int QaCommand(int argc, char** argv) {
  FlagSet flags;
  flags.Add("format", "table", "table | json | junit | sarif | html");
  flags.Add("out", "", "write the report to FILE (atomically) instead of stdout");
  flags.Add("run-id", "", "the run's id, on every event it produces (default: qa-<unix ms>-<pid>)");
  flags.Add("policies", "", "declared policies (default: ./policies, else the source tree's)");
  flags.Add("identity", "", "identity file (YAML) of the device (default: sysfs only)");
  flags.Add("timeout", "120", "seconds to wait for the events to be judged after the command");
  flags.AddBool("keep", "keep the scratch directory (SQLite file, spool) and print its path");
  flags.Add("socket", "", "a running agent's socket (with --collector): no embedded stack");
  flags.Add("collector", "", "the collector that agent sends to (HOST:PORT)");
  flags.Add("tls-ca", "", "CA certificate (PEM) of --collector");
  flags.Add("tls-cert", "", "client certificate (PEM) for mutual TLS to --collector");
  flags.Add("tls-key", "", "client private key (PEM) for mutual TLS to --collector");
  flags.Add("auth-token-file", "", "file holding the Query API bearer token of --collector");
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
  if (!absl::SimpleAtoi(flags.Get("timeout"), &timeout_s) || timeout_s <= 0 || timeout_s > 86400) {
    std::cerr << "idflowctl qa: --timeout takes 1 to 86400 seconds\n";
    return 2;
  }
  auto launch = TapLaunchFromFlags(flags, "");
  if (!launch.ok()) {
    std::cerr << "idflowctl qa: " << launch.status().message() << "\n" << kUsage;
    return 2;
  }
  const std::string socket = flags.Get("socket"), collector = flags.Get("collector");
  if (socket.empty() != collector.empty()) {
    std::cerr << "idflowctl qa: --socket and --collector go together (a running agent and the "
                 "collector it sends to); give neither for an embedded stack\n";
    return 2;
  }
  const bool remote = !socket.empty();
  RunSummary run;
  run.run_id = flags.Get("run-id").empty()
                   ? absl::StrCat("qa-", absl::ToUnixMillis(absl::Now()), "-", ::getpid())
                   : flags.Get("run-id");
  if (!agent::IsValidRunId(run.run_id)) {
    std::cerr << "idflowctl qa: --run-id takes 1 to 64 characters of [A-Za-z0-9._:-]\n";
    return 2;
  }
  launch->run_id = run.run_id;

  std::unique_ptr<EmbeddedStack> stack;
  std::optional<QueryClient> client;
  std::map<std::string, uint64_t> lost_before;
  // A client of the collector at `address`, and what it knows of its agents.
  auto connect =
      [&](const std::string& address) -> absl::StatusOr<std::vector<idflow::v1::AgentStatus>> {
    auto c = ClientFor(address, flags);
    if (!c.ok()) return c.status();
    client.emplace(*std::move(c));
    return client->ListAgents("");
  };
  if (remote) {
    if (std::string why = WhyUnobserved(socket); !why.empty()) {
      std::cerr << "idflowctl qa: " << why << "\n";
      return 2;
    }
    auto agents = connect(collector);
    if (!agents.ok()) {
      std::cerr << "idflowctl qa: " << agents.status().message() << "\n";
      return 2;
    }
    for (const auto& a : *agents) lost_before[a.agent_id()] = Lost(a);
    launch->socket = socket;
  } else {
    const std::string policies = PoliciesDir(flags.Get("policies"));
    if (!IsDir(policies)) {
      std::cerr << "idflowctl qa: no policies directory at " << policies << " (give --policies)\n";
      return 2;
    }
    EmbeddedStackOptions options;
    options.policies_dir = policies;
    options.identity_file = flags.Get("identity");
    options.keep = flags.GetBool("keep");
    auto s = EmbeddedStack::Start(options);
    if (!s.ok()) {
      std::cerr << "idflowctl qa: " << s.status().message() << "\n";
      return 2;
    }
    stack = *std::move(s);
    if (options.keep) std::cerr << "idflowctl qa: keeping " << stack->dir() << "\n";
    launch->socket = stack->socket();
  }

  const std::string run_id = run.run_id;
  run = RunTestCommand(*launch);
  run.run_id = run_id;

  RunReportOptions report;
  report.format = format;
  report.out = flags.Get("out");
  report.command = "qa";
  idflow::v1::VerdictFilter filter;
  if (remote) {
    if (int rc = AwaitRemote(socket, *client, timeout_s, lost_before, &run); rc != 0) return rc;
    // A shared collector: this run's events only.
    filter.set_run_id(run.run_id);
    report.judged_from_verdicts = true;
  } else {
    if (absl::Status st = stack->WaitJudged(std::chrono::seconds(timeout_s)); !st.ok()) {
      std::cerr << "idflowctl qa: " << st.message() << "\n";
      return 2;
    }
    // A private stack: everything it judged belongs to the run, also what a
    // process that dropped IDFLOW_RUN_ID from its environment did.
    auto agents = connect(stack->collector_address());
    if (!agents.ok()) {
      std::cerr << "idflowctl qa: " << agents.status().message() << "\n";
      return 2;
    }
    for (const auto& a : *agents) {
      run.events_judged += a.events_stored();
      run.events_lost += Lost(a);
    }
  }
  return WriteRunReport(*client, filter, &run, report);
}

}  // namespace idflow::tools

// Running a program under the tap, shared by `idflowctl run` (which execs it)
// and `idflowctl qa` (which forks, execs it and waits).
#ifndef IDFLOW_TOOLS_TAP_LAUNCH_H_
#define IDFLOW_TOOLS_TAP_LAUNCH_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/flags.h"

namespace idflow::tools {

struct TapLaunch {
  std::string socket;                  // the agent's ingress socket
  std::vector<std::string> scenarios;  // active usage scenarios
  std::vector<std::string> consents;   // KEY=true|false
  std::string run_id;                  // IDFLOW_RUN_ID ("" = leave the environment's)
  std::string tap;                     // path of libidflow-tap.so
  std::vector<std::string> command;    // program and arguments
};

// --scenario, --consent (repeatable) and --tap.
void AddTapFlags(FlagSet* flags);
// The launch the flags describe for `socket` and the positional command.
// InvalidArgument (ready to print) for a bad --consent, no command or an
// unreadable tap.
absl::StatusOr<TapLaunch> TapLaunchFromFlags(const FlagSet& flags, const std::string& socket);

// Why nothing would be observed at `socket`; "" when an agent accepts there.
std::string WhyUnobserved(const std::string& socket);

// Asks the agent at `socket` to watch the TLS writes of `pid`, which is
// about to run `exec` (the agent's uprobe source, for TLS the preload tap
// cannot see: static OpenSSL, Node.js, Go), with the context and run id the
// program's environment gives the tap (IDFLOW_SCENARIO, IDFLOW_CONSENT,
// IDFLOW_RUN_ID). Returns the coverage line to print and report, e.g.
//   "tls: preload libssl, libgnutls; uprobe: openssl SSL_write in /usr/bin/node"
// and, when the agent cannot say, a line saying the uprobe coverage is unknown
// and why.
class PreparedExec;
std::string WatchTls(const std::string& socket, pid_t pid, const PreparedExec& exec);

// Everything exec needs, built before a fork: the child of a multithreaded
// process may only call async-signal-safe functions (a malloc there can
// deadlock on a lock another thread held at the fork), so it calls Exec() and
// nothing else.
class PreparedExec {
 public:
  explicit PreparedExec(const TapLaunch& launch);
  // execve of the resolved program; returns only on failure (errno set).
  void Exec() const;
  const std::string& program() const { return path_; }
  // NAME=VALUE entries of the program's environment.
  const std::vector<std::string>& environment() const { return env_storage_; }

 private:
  std::string path_;  // the command resolved against PATH
  std::vector<std::string> arg_storage_, env_storage_;
  std::vector<char*> argv_, envp_;
};

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_TAP_LAUNCH_H_

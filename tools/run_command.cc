#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "common/flags.h"
#include "tools/commands.h"
#include "tools/tap_launch.h"

namespace idflow::tools {

int RunCommand(int argc, char** argv) {
  FlagSet flags;
  flags.Add("socket", "/run/idflow/agent.sock", "the agent's ingress socket");
  AddTapFlags(&flags);
  flags.AddBool("allow-unobserved", "run the program even when no agent listens on --socket");
  if (auto st = flags.Parse(argc, argv, 2, /*allow_positional=*/false); !st.ok()) {
    std::cerr
        << "idflowctl run: " << st.message()
        << "\nusage: idflowctl run --socket PATH [--scenario NAME] [--consent KEY=true|false] "
           "-- CMD ARGS...\n";
    return 2;
  }
  auto launch = TapLaunchFromFlags(flags, flags.Get("socket"));
  if (!launch.ok()) {
    std::cerr << "idflowctl run: " << launch.status().message() << "\n";
    return 2;
  }
  // A run nobody observed must not look like a clean one.
  const std::string why = WhyUnobserved(launch->socket);
  if (!why.empty()) {
    if (!flags.GetBool("allow-unobserved")) {
      std::cerr << "idflowctl run: " << why
                << ": the program would run unobserved; start idflow-agent, give --socket, or "
                   "pass --allow-unobserved\n";
      return 2;
    }
    std::cerr << "idflowctl run: warning: " << why << ": running unobserved\n";
  }
  // exec, not fork: the program takes idflowctl's pid, so signals (a test
  // harness stopping a server, Ctrl-C) reach it and its exit status is ours.
  // The same pid lets the agent attach its TLS probes before the exec.
  const PreparedExec exec(*launch);
  if (why.empty() && ::access(exec.program().c_str(), X_OK) == 0) {
    std::cerr << "idflowctl run: " << WatchTls(launch->socket, ::getpid(), exec) << "\n";
  }
  exec.Exec();
  std::cerr << "idflowctl run: cannot run '" << launch->command[0] << "': " << std::strerror(errno)
            << "\n";
  return 127;
}

}  // namespace idflow::tools

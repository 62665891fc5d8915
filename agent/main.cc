// idflow-agent: thin main over the agent library.
#include <malloc.h>

#include <csignal>
#include <iostream>

#include <boost/asio/signal_set.hpp>

#include "agent/agent.h"
#include "agent/config.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/version.h"

int main(int argc, char** argv) {
  // An embedded daemon's memory budget (issue 8): glibc gives each thread
  // that allocates (gRPC pollers, sender, group commit) its own arena of up
  // to 64 MiB; two arenas are plenty for a handful of threads.
  mallopt(M_ARENA_MAX, 2);
  idflow::SetLogPrefix("idflow-agent");
  idflow::FlagSet flags;
  idflow::agent::AddAgentFlags(&flags);
  if (absl::Status st = flags.Parse(argc, argv); !st.ok()) {
    std::cerr << "idflow-agent: " << st.message() << "\nusage: idflow-agent [flags]\n"
              << flags.Usage();
    return 2;
  }
  if (flags.GetBool("help")) {
    std::cout << "usage: idflow-agent [flags]\n" << flags.Usage();
    return 0;
  }
  if (flags.GetBool("version")) {
    std::cout << idflow::VersionLine("idflow-agent") << "\n";
    return 0;
  }
  auto options = idflow::agent::LoadAgentConfig(flags);
  if (!options.ok()) {
    std::cerr << "idflow-agent: " << options.status().message() << "\n";
    return 2;
  }

  auto agent = idflow::agent::Agent::Create(*options);
  if (!agent.ok()) {
    std::cerr << "idflow-agent: " << agent.status().message() << "\n";
    const auto code = agent.status().code();
    return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kNotFound ? 2
                                                                                             : 1;
  }
  signal(SIGPIPE, SIG_IGN);
  if (absl::Status st = (*agent)->Start(); !st.ok()) {
    std::cerr << "idflow-agent: " << st.message() << "\n";
    return 1;
  }
  boost::asio::signal_set signals((*agent)->io(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    idflow::LogInfo("signal ", sig, ": flushing and stopping");
    (*agent)->Stop();
  });
  (*agent)->Run();
  (*agent)->Stop();
  return 0;
}

// idflow-agent: thin main over the agent library.
#include <iostream>

#include <boost/asio/signal_set.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "agent/agent.h"
#include "common/flags.h"
#include "common/log.h"

int main(int argc, char** argv) {
  idflow::SetLogPrefix("idflow-agent");
  idflow::FlagSet flags;
  flags.Add("collector", "", "collector HOST:PORT[,HOST:PORT...] in failover order");
  flags.Add("socket", "/run/idflow/agent.sock", "Unix socket the taps connect to");
  flags.Add("spool", "/var/lib/idflow/spool", "spool directory (durable event queue)");
  flags.Add("identity", "", "identity file (YAML): device id, class, declared identifiers");
  flags.Add("sysfs-root", "/sys", "where to discover hardware addresses");
  flags.Add("spool-max-mb", "256", "on-disk bound of the spool; oldest events go first");
  flags.Add("flush-interval-ms", "20",
            "how long events wait (and repeats aggregate) before they are spooled");
  flags.Add("tls-ca", "", "CA certificate (PEM) to verify the collector; enables TLS");
  flags.Add("tls-cert", "", "client certificate (PEM) for mutual TLS");
  flags.Add("tls-key", "", "client private key (PEM) for mutual TLS");
  flags.AddBool("help", "show this help");
  if (absl::Status st = flags.Parse(argc, argv); !st.ok()) {
    std::cerr << "idflow-agent: " << st.message() << "\nusage: idflow-agent [flags]\n"
              << flags.Usage();
    return 2;
  }
  if (flags.GetBool("help")) {
    std::cout << "usage: idflow-agent [flags]\n" << flags.Usage();
    return 0;
  }
  idflow::agent::AgentOptions options;
  for (auto c : absl::StrSplit(flags.Get("collector"), ',', absl::SkipEmpty())) {
    options.collectors.emplace_back(c);
  }
  options.socket_path = flags.Get("socket");
  options.spool_dir = flags.Get("spool");
  options.identity_file = flags.Get("identity");
  options.sysfs_root = flags.Get("sysfs-root");
  options.tls_ca = flags.Get("tls-ca");
  options.tls_cert = flags.Get("tls-cert");
  options.tls_key = flags.Get("tls-key");
  if (options.tls_cert.empty() != options.tls_key.empty() ||
      (!options.tls_cert.empty() && options.tls_ca.empty())) {
    std::cerr << "idflow-agent: --tls-cert and --tls-key go together, and need --tls-ca\n";
    return 2;
  }
  uint64_t mb = 0;
  if (!absl::SimpleAtoi(flags.Get("spool-max-mb"), &mb) || mb == 0) {
    std::cerr << "idflow-agent: --spool-max-mb takes a positive integer\n";
    return 2;
  }
  options.spool_max_bytes = mb << 20;
  int flush_ms = 0;
  if (!absl::SimpleAtoi(flags.Get("flush-interval-ms"), &flush_ms) || flush_ms <= 0) {
    std::cerr << "idflow-agent: --flush-interval-ms takes a positive integer\n";
    return 2;
  }
  options.flush_interval = std::chrono::milliseconds(flush_ms);

  auto agent = idflow::agent::Agent::Create(options);
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

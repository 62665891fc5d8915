// idflow-agent: thin main over the agent library.
#include <grp.h>
#include <malloc.h>
#include <pwd.h>

#include <iostream>

#include <boost/asio/signal_set.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "agent/agent.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "common/log.h"

int main(int argc, char** argv) {
  // An embedded daemon's memory budget (issue 8): glibc gives each thread
  // that allocates (gRPC pollers, sender, group commit) its own arena of up
  // to 64 MiB; two arenas are plenty for a handful of threads.
  mallopt(M_ARENA_MAX, 2);
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
  flags.Add("spool-sync-ms", "200",
            "group commit: fdatasync the spool at most this often (0 = every append); a power "
            "cut loses at most this window, declared as a gap");
  flags.Add("ring-wake-delay-ms", "4",
            "after a tap rings, wait this long before draining its ring, so records of a few ms "
            "are read in one wake-up (0 = at once)");
  flags.Add("send-linger-ms", "100",
            "a batch short of 256 events waits this long for more before it is sent");
  flags.Add("token-file", "", "file holding the Ingest bearer token (sent as authorization)");
  flags.Add("socket-group", "", "group owning the tap socket (mode 0660)");
  flags.Add("allow-uid", "",
            "uid (or user name) allowed on the tap socket; repeatable (default: own uid, root)");
  flags.Add("allow-gid", "", "gid (or group name) allowed on the tap socket; repeatable");
  flags.Add("max-connections", "1024", "tap connections in total");
  flags.Add("max-connections-per-uid", "64", "tap connections per peer uid");
  flags.Add("tap-rate", "20000", "events per second per tap connection (beyond: counted drops)");
  flags.Add("tap-burst", "40000", "events a tap connection may send at once above the rate");
  flags.AddBool("allow-app-context",
                "let a process change its own usage context over the tap socket (its claim then "
                "decides its verdicts; default: only root and the agent's user may)");
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
  options.allow_app_context = flags.GetBool("allow-app-context");
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

  auto fail = [](const std::string& msg) {
    std::cerr << "idflow-agent: " << msg << "\n";
    return 2;
  };
  int sync_ms = 0;
  if (!absl::SimpleAtoi(flags.Get("spool-sync-ms"), &sync_ms) || sync_ms < 0) {
    return fail("--spool-sync-ms takes a non-negative integer");
  }
  options.spool_sync_interval = std::chrono::milliseconds(sync_ms);
  int wake_ms = 0, linger_ms = 0;
  if (!absl::SimpleAtoi(flags.Get("ring-wake-delay-ms"), &wake_ms) || wake_ms < 0) {
    return fail("--ring-wake-delay-ms takes a non-negative integer");
  }
  if (!absl::SimpleAtoi(flags.Get("send-linger-ms"), &linger_ms) || linger_ms < 0) {
    return fail("--send-linger-ms takes a non-negative integer");
  }
  options.ring_wake_delay = std::chrono::milliseconds(wake_ms);
  options.send_linger = std::chrono::milliseconds(linger_ms);
  if (!flags.Get("token-file").empty()) {
    auto token = idflow::ReadFile(flags.Get("token-file"));
    if (!token.ok()) return fail(std::string(token.status().message()));
    options.bearer_token = std::string(absl::StripAsciiWhitespace(*token));
    if (options.bearer_token.empty()) return fail("--token-file is empty");
  }
  // A number, or a name looked up in /etc/passwd or /etc/group.
  auto user_id = [](const std::string& v, uint32_t* id) {
    const passwd* pw = absl::SimpleAtoi(v, id) ? nullptr : getpwnam(v.c_str());
    if (pw != nullptr) *id = pw->pw_uid;
    return pw != nullptr || absl::SimpleAtoi(v, id);
  };
  auto group_id = [](const std::string& v, uint32_t* id) {
    const group* gr = absl::SimpleAtoi(v, id) ? nullptr : getgrnam(v.c_str());
    if (gr != nullptr) *id = gr->gr_gid;
    return gr != nullptr || absl::SimpleAtoi(v, id);
  };
  if (const std::string& g = flags.Get("socket-group"); !g.empty()) {
    uint32_t gid = 0;
    if (!group_id(g, &gid)) return fail("--socket-group: no group " + g);
    options.socket_gid = gid;
  }
  for (const std::string& u : flags.GetAll("allow-uid")) {
    uint32_t uid = 0;
    if (!user_id(u, &uid)) return fail("--allow-uid: no user " + u);
    options.allow_uids.push_back(uid);
  }
  for (const std::string& g : flags.GetAll("allow-gid")) {
    uint32_t gid = 0;
    if (!group_id(g, &gid)) return fail("--allow-gid: no group " + g);
    options.allow_gids.push_back(gid);
  }
  size_t max_conn = 0, max_per_uid = 0;
  if (!absl::SimpleAtoi(flags.Get("max-connections"), &max_conn) || max_conn == 0 ||
      !absl::SimpleAtoi(flags.Get("max-connections-per-uid"), &max_per_uid) || max_per_uid == 0) {
    return fail("--max-connections and --max-connections-per-uid take positive integers");
  }
  options.max_connections = max_conn;
  options.max_connections_per_uid = max_per_uid;
  if (!absl::SimpleAtod(flags.Get("tap-rate"), &options.tap_rate_per_second) ||
      options.tap_rate_per_second <= 0 ||
      !absl::SimpleAtod(flags.Get("tap-burst"), &options.tap_rate_burst) ||
      options.tap_rate_burst < 1) {
    return fail("--tap-rate and --tap-burst take positive numbers");
  }

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

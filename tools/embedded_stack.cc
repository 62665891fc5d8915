#include "tools/embedded_stack.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <boost/asio/post.hpp>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/tap_protocol.h"
#include "collector/collector.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace idflow::tools {
namespace {

using Clock = std::chrono::steady_clock;

// Polls `done` until it holds or `deadline` passes. Each check reads the
// accounting; the pause between checks only bounds the CPU spent.
template <typename Cond>
bool PollUntil(Cond done, Clock::time_point deadline) {
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A hello from this process asking for patterns, answered once the agent
// accepted it. Unix socket connections are accepted in order, so once it is
// answered every tap connection made before it has been accepted.
absl::Status ProbeIngress(const std::string& path, Clock::time_point deadline) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return absl::InvalidArgumentError("socket path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  timeval tv{};
  tv.tv_sec = std::max<int64_t>(left.count(), 1000) / 1000000;
  tv.tv_usec = std::max<int64_t>(left.count(), 1000) % 1000000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  agent::TapHello hello;
  hello.pid = static_cast<uint32_t>(::getpid());
  hello.want_patterns = true;
  hello.exe = "idflowctl-qa-probe";
  const std::string msg = agent::EncodeHello(hello, "", "");
  char reply[1];
  absl::Status st;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size()) ||
      ::recv(fd, reply, sizeof(reply), 0) < 0) {
    st = absl::DeadlineExceededError(
        absl::StrCat("the agent did not answer on ", path, ": ", std::strerror(errno)));
  }
  ::close(fd);
  return st;
}

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EmbeddedStack>> EmbeddedStack::Start(
    const EmbeddedStackOptions& options) {
  std::unique_ptr<EmbeddedStack> s(new EmbeddedStack());
  s->options_ = options;
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/idflow-qa.XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", templ, ": ", std::strerror(errno)));
  }
  s->dir_ = templ;
  s->socket_ = s->dir_ + "/agent.sock";
  std::string identity = options.identity_file;
  if (identity.empty()) {
    identity = s->dir_ + "/identity.yaml";
    RETURN_IF_ERROR(WriteFileAtomic(identity, absl::StrCat("device:\n  id: qa-", Hostname(),
                                                           "\n  class: qa\nidentifiers: []\n")));
  }
  collector::CollectorOptions c;
  c.listen = "127.0.0.1:0";
  c.store_url = "sqlite:" + s->dir_ + "/idflow.db";
  c.policies_dir = options.policies_dir;
  c.collector_id = "idflowctl-qa";
  ASSIGN_OR_RETURN(s->collector_, collector::Collector::Start(c));

  agent::AgentOptions a;
  a.collectors = {s->collector_address()};
  a.socket_path = s->socket_;
  a.spool_dir = s->dir_ + "/spool";
  a.identity_file = identity;
  a.sysfs_root = options.sysfs_root;
  a.send_linger = std::chrono::milliseconds(5);  // one run: deliver at once
  // No watchdog: it would measure this whole process (collector, policies,
  // agent) against the device agent's limits and shed the run's events; a QA
  // run must judge every event its programs send.
  a.watchdog_max_rss_bytes = 0;
  a.watchdog_max_cpu_percent = 0;
  ASSIGN_OR_RETURN(s->agent_, agent::Agent::Create(a));
  RETURN_IF_ERROR(s->agent_->Start());
  s->agent_thread_ = std::thread([agent = s->agent_.get()] { agent->Run(); });
  return s;
}

EmbeddedStack::~EmbeddedStack() {
  if (agent_ && agent_thread_.joinable()) {
    boost::asio::post(agent_->io(), [agent = agent_.get()] { agent->Stop(); });
    agent_thread_.join();
  }
  agent_.reset();
  if (collector_) {
    collector_->Shutdown();
    collector_->Wait();
    collector_.reset();
  }
  if (!options_.keep && !dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string EmbeddedStack::collector_address() const {
  return absl::StrCat("127.0.0.1:", collector_->grpc_port());
}

absl::Status EmbeddedStack::WaitJudged(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  if (absl::Status st = ProbeIngress(socket_, deadline); !st.ok()) return st;
  // Every tap connection is accepted; each one drains its ring as it closes.
  if (!PollUntil([&] { return agent_->ingress_counters().active == 0; }, deadline)) {
    return absl::DeadlineExceededError("tap connections still open (a program still running?)");
  }
  const uint64_t spooled = agent_->FlushNow();
  if (!PollUntil([&] { return agent_->spool().acked() >= spooled; }, deadline)) {
    return absl::DeadlineExceededError(absl::StrCat("the collector acknowledged ",
                                                    agent_->spool().acked(), " of ", spooled,
                                                    " spooled events"));
  }
  return absl::OkStatus();
}

}  // namespace idflow::tools

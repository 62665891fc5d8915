#include "tests/e2e/harness.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "idflow/v1/query.grpc.pb.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

namespace idflow::e2e {

std::vector<idflow::v1::StoredEvent> QueryEvents(const std::string& address) {
  auto stub =
      idflow::v1::Query::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  idflow::v1::ListEventsRequest req;
  idflow::v1::ListEventsResponse resp;
  if (!stub->ListEvents(&ctx, req, &resp).ok()) return {};
  return {resp.events().begin(), resp.events().end()};
}

std::vector<idflow::v1::Verdict> QueryVerdicts(const std::string& address) {
  auto stub =
      idflow::v1::Query::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  idflow::v1::ListVerdictsRequest req;
  idflow::v1::ListVerdictsResponse resp;
  if (!stub->ListVerdicts(&ctx, req, &resp).ok()) return {};
  return {resp.verdicts().begin(), resp.verdicts().end()};
}

int64_t StoredTapEvents(const std::string& address) {
  auto stub =
      idflow::v1::Query::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  int64_t total = 0;
  std::string token;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    idflow::v1::ListEventsRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    idflow::v1::ListEventsResponse resp;
    if (!stub->ListEvents(&ctx, req, &resp).ok()) return -1;
    for (const auto& e : resp.events()) total += std::max<int64_t>(1, e.event().count());
    token = resp.next_page_token();
  } while (!token.empty());
  return total;
}

int64_t ReportedDrops(const std::string& address, std::string* detail) {
  auto stub =
      idflow::v1::Query::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  int64_t total = 0;
  std::string token, text;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    idflow::v1::ListAgentsRequest req;
    req.set_page_token(token);
    idflow::v1::ListAgentsResponse resp;
    if (!stub->ListAgents(&ctx, req, &resp).ok()) return -1;
    for (const auto& a : resp.agents()) {
      const auto& d = a.drops();
      total += static_cast<int64_t>(d.tap_dropped() + d.ingress_rejected() + d.spool_dropped() +
                                    d.disk_dropped() + d.dead_lettered());
      text += a.agent_id() + ": tap=" + std::to_string(d.tap_dropped()) +
              " ingress=" + std::to_string(d.ingress_rejected()) +
              " spool=" + std::to_string(d.spool_dropped()) +
              " disk=" + std::to_string(d.disk_dropped()) +
              " dead_letter=" + std::to_string(d.dead_lettered()) +
              " gap_events=" + std::to_string(a.gap_events()) + "\n";
    }
    token = resp.next_page_token();
  } while (!token.empty());
  if (detail != nullptr) *detail = text;
  return total;
}

std::string BinDir() { return IDFLOW_BINARY_DIR "/bin"; }
std::string LibDir() { return IDFLOW_BINARY_DIR "/lib"; }
std::string SourceDir() { return IDFLOW_SOURCE_DIR; }

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return "";
  return buf.data();
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

namespace {

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out, const std::string& err,
            const std::map<std::string, std::string>& env) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int in = ::open("/dev/null", O_RDONLY);
  if (o < 0 || e < 0 || in < 0) _exit(126);
  ::dup2(in, 0);
  ::dup2(o, 1);
  ::dup2(e, 2);
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  _exit(127);
}

int Decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Process::Process(std::vector<std::string> argv, const std::string& log_prefix,
                 const std::map<std::string, std::string>& env)
    : prefix_(log_prefix) {
  pid_ = Spawn(argv, prefix_ + ".out", prefix_ + ".err", env);
}

Process::~Process() {
  if (Running()) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
}

bool Process::Running() {
  if (pid_ <= 0 || status_ != -1) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  return r == 0;
}

int Process::Stop(int sig) {
  if (Running()) ::kill(pid_, sig);
  return Wait();
}

int Process::Wait() {
  if (status_ == -1 && pid_ > 0) {
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = st;
  }
  return Decode(status_);
}

int RunToEnd(std::vector<std::string> argv, std::string* out, std::string* err,
             const std::map<std::string, std::string>& env) {
  std::string dir = MakeTempDir("idflow-run");
  Process p(std::move(argv), dir + "/p", env);
  int code = p.Wait();
  if (out) *out = p.Stdout();
  if (err) *err = p.Stderr();
  return code;
}

struct Sink::State {
  std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  std::thread thread;
  std::atomic<int> connections{0};
  std::atomic<bool> stop{false};
};

Sink::Sink() : Sink(std::string()) {}

Sink::Sink(std::string response) : state_(new State) {
  if (!response.empty()) state_->response = std::move(response);
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(fd_, 64);
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  int fd = fd_;
  State* st = state_;
  state_->thread = std::thread([fd, st] {
    while (!st->stop) {
      int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) return;
      st->connections++;
      // Detached: owns a copy of the response, never the Sink's state.
      std::thread([c, response = st->response] {
        char buf[8192];
        // Answer like a web server so HTTP clients finish promptly.
        ssize_t n = ::read(c, buf, sizeof(buf));
        (void)n;
        (void)!::write(c, response.data(), response.size());
        ::shutdown(c, SHUT_WR);
        while (::read(c, buf, sizeof(buf)) > 0) {
        }
        ::close(c);
      }).detach();
    }
  });
}

Sink::~Sink() {
  state_->stop = true;
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  state_->thread.join();
  delete state_;
}

int Sink::connections() const { return state_->connections; }

TlsServer::TlsServer(const std::string& dir, bool serve_files) {
  std::string out, err;
  ok_ = RunToEnd(
            {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
             dir + "/key.pem", "-out", dir + "/cert.pem", "-days", "1", "-subj", "/CN=localhost"},
            &out, &err) == 0;
  if (!ok_) return;
  const std::string server =
      absl::StrCat("exec /usr/bin/openssl s_server -accept 0 -cert ", dir, "/cert.pem -key ", dir,
                   "/key.pem ", serve_files ? "-HTTP" : "-www");
  server_ = std::make_unique<Process>(
      std::vector<std::string>{"/bin/sh", "-c", absl::StrCat("cd / && ", server)},
      dir + "/s_server");
  ok_ = WaitFor([&] {
          std::string text = server_->Stdout() + server_->Stderr();
          size_t at = text.find("ACCEPT");
          if (at == std::string::npos) return !server_->Running();
          size_t colon = text.find("]:", at);
          if (colon == std::string::npos) colon = text.rfind(':');
          port_ = atoi(text.c_str() + colon + 2);
          return port_ > 0;
        }) &&
        port_ > 0;
}

bool Stack::StartCollector(std::string* why, int port) {
  if (dir.empty()) dir = MakeTempDir("idflow-e2e");
  db_path = dir + "/idflow.db";
  std::string port_file = dir + "/ports";
  ::unlink(port_file.c_str());
  std::vector<std::string> argv = {BinDir() + "/idflow-collector",
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--http",
                                   "127.0.0.1:0",
                                   "--store",
                                   store_url.empty() ? "sqlite:" + db_path : store_url,
                                   "--policies",
                                   SourceDir() + "/policies",
                                   "--port-file",
                                   port_file};
  argv.insert(argv.end(), collector_args.begin(), collector_args.end());
  collector = std::make_unique<Process>(argv, dir + "/collector");
  bool up = WaitFor([&] {
    std::string ports = Slurp(port_file);
    if (ports.find("grpc=") == std::string::npos) return !collector->Running();
    std::sscanf(ports.c_str(), "grpc=%d\nhttp=%d", &grpc_port, &http_port);
    return true;
  });
  if (!up || !collector->Running() || grpc_port == 0) {
    *why = "collector did not start: " + collector->Stderr();
    return false;
  }
  return true;
}

bool Stack::StartAgent(std::string* why, const std::string& collector_address) {
  if (dir.empty()) dir = MakeTempDir("idflow-e2e");
  spool_dir = dir + "/spool";
  socket = dir + "/agent.sock";
  identity = dir + "/identity.yaml";
  WriteText(identity, std::string("device:\n  id: ") + kDeviceId +
                          "\n  class: qa-phone\n  firmware: e2e\nidentifiers:\n"
                          "  - kind: oaid\n    value: \"" +
                          kOaid +
                          "\"\n"
                          "  - kind: device_id\n    value: \"" +
                          kHwDeviceId + "\"\n");
  std::vector<std::string> argv = {BinDir() + "/idflow-agent", "--collector", collector_address,
                                   "--socket", socket, "--spool", spool_dir, "--identity", identity,
                                   "--config",
                                   "",  // never a host's /etc/idflow/agent.yaml
                                   // Tests of delivery share two cores with the whole suite:
                                   // the CPU limit would shed their events. The watchdog's own
                                   // tests set their limits in agent_args (later flags win).
                                   "--watchdog-max-cpu-percent", "0"};
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // A sanitized agent is several times the size of a shipped one.
  argv.insert(argv.end(), {"--watchdog-max-rss-mb", "0"});
#endif
  argv.insert(argv.end(), agent_args.begin(), agent_args.end());
  argv.insert(argv.begin(), agent_wrapper.begin(), agent_wrapper.end());
  agent = std::make_unique<Process>(argv, dir + "/agent");
  bool up = WaitFor([&] {
    if (!agent->Running()) return true;
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof(addr.sun_path) - 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    return ok;
  });
  if (!up || !agent->Running()) {
    *why = "agent did not start: " + agent->Stderr();
    return false;
  }
  return true;
}

bool Stack::Start(std::string* why, int collector_port) {
  return StartCollector(why, collector_port) && StartAgent(why, collector_address());
}

std::string FirstMac() {
  std::string iface = FirstMacInterface();
  if (iface.empty()) return "";
  std::string mac = Slurp("/sys/class/net/" + iface + "/address");
  while (!mac.empty() && (mac.back() == '\n' || mac.back() == ' ')) mac.pop_back();
  return mac;
}

std::string FirstMacInterface() {
  std::vector<std::string> names;
  if (DIR* d = ::opendir("/sys/class/net")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string mac = Slurp("/sys/class/net/" + n + "/address");
    while (!mac.empty() && (mac.back() == '\n' || mac.back() == ' ')) mac.pop_back();
    if (mac.size() == 17 && mac != "00:00:00:00:00:00" && mac != "02:00:00:00:00:00" &&
        mac != "ff:ff:ff:ff:ff:ff") {
      return n;
    }
  }
  return "";
}

int RunViolations(const std::string& address, const std::vector<std::string>& extra,
                  std::string* out, std::string* err) {
  std::vector<std::string> argv = {
      BinDir() + "/idflowctl", "violations", "--collector", address, "--format", "json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return RunToEnd(argv, out, err);
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsRuntimeModule(const std::string& module) {
  std::string base = Basename(module);
  for (const char* prefix : {"libc.so", "libc-", "libstdc++", "libgcc_s", "libz.so", "libm.so",
                             "ld-linux", "libpthread", "libdl.", "libssl", "libcrypto", "libgnutls",
                             "libcurl", "libpython", "libidflow-tap", "libboost_"}) {
    if (base.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace idflow::e2e

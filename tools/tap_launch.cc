#include "tools/tap_launch.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/control_protocol.h"
#include "tools/control_client.h"

namespace idflow::tools {
namespace {

// build/bin/idflowctl -> build/lib/libidflow-tap.so (DESIGN §6 layout).
std::string DefaultTapPath() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "libidflow-tap.so";
  std::string exe(buf, static_cast<size_t>(n));
  std::string dir = exe.substr(0, exe.rfind('/'));
  return dir + "/../lib/libidflow-tap.so";
}

}  // namespace

void AddTapFlags(FlagSet* flags) {
  flags->Add("scenario", "", "active usage scenario (repeatable), e.g. device_discovery");
  flags->Add("consent", "", "consent state KEY=true|false (repeatable)");
  flags->Add("tap", DefaultTapPath(), "path of libidflow-tap.so");
}

absl::StatusOr<TapLaunch> TapLaunchFromFlags(const FlagSet& flags, const std::string& socket) {
  TapLaunch launch;
  launch.socket = socket;
  launch.scenarios = flags.GetAll("scenario");
  launch.consents = flags.GetAll("consent");
  launch.tap = flags.Get("tap");
  launch.command = flags.Positional();
  if (launch.command.empty()) return absl::InvalidArgumentError("no command given after --");
  for (const auto& c : launch.consents) {
    std::vector<std::string> kv = absl::StrSplit(c, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty() || (kv[1] != "true" && kv[1] != "false")) {
      return absl::InvalidArgumentError(
          absl::StrCat("--consent takes KEY=true|false, got '", c, "'"));
    }
  }
  if (::access(launch.tap.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tap library not readable: ", launch.tap));
  }
  return launch;
}

// The probe connects and closes without a hello, which the agent ignores.
std::string WhyUnobserved(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "no agent socket at " + path;
  if (!S_ISSOCK(st.st_mode)) return path + " is not a socket";
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return "socket path too long: " + path;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  for (int type : {SOCK_SEQPACKET, SOCK_STREAM}) {
    int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    int err = errno;
    ::close(fd);
    if (rc == 0) return "";
    if (err != EPROTOTYPE) {
      return "no agent listens on " + path + " (" + std::strerror(err) + ")";
    }
  }
  return "no agent listens on " + path;
}

namespace {

// The tap's environment on top of this process's.
std::vector<std::string> TapEnvironment(const TapLaunch& launch) {
  std::string preload = launch.tap;
  if (const char* existing = std::getenv("LD_PRELOAD"); existing && *existing) {
    preload += std::string(":") + existing;
  }
  std::vector<std::pair<std::string, std::string>> set = {
      {"LD_PRELOAD", preload},
      {"IDFLOW_SOCKET", launch.socket},
      {"IDFLOW_SCENARIO", absl::StrJoin(launch.scenarios, ",")},
      {"IDFLOW_CONSENT", absl::StrJoin(launch.consents, ",")}};
  if (!launch.run_id.empty()) set.emplace_back("IDFLOW_RUN_ID", launch.run_id);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view kv = *e;
    bool replaced = false;
    for (const auto& [k, v] : set) replaced = replaced || absl::StartsWith(kv, k + "=");
    if (!replaced) env.emplace_back(kv);
  }
  for (const auto& [k, v] : set) env.push_back(k + "=" + v);
  return env;
}

// execvp's PATH search, done before the fork.
std::string Resolve(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return program;
}

}  // namespace

PreparedExec::PreparedExec(const TapLaunch& launch)
    : path_(launch.command.empty() ? std::string() : Resolve(launch.command[0])),
      arg_storage_(launch.command),
      env_storage_(TapEnvironment(launch)) {
  for (std::string& a : arg_storage_) argv_.push_back(a.data());
  argv_.push_back(nullptr);
  for (std::string& e : env_storage_) envp_.push_back(e.data());
  envp_.push_back(nullptr);
}

void PreparedExec::Exec() const {
  if (path_.empty()) return;
  ::execve(path_.c_str(), argv_.data(), envp_.data());
}

std::string WatchTls(const std::string& socket, pid_t pid, const PreparedExec& exec) {
  const std::string unknown = "tls: preload libssl, libgnutls; uprobe: unknown (";
  char real[PATH_MAX];
  if (::realpath(exec.program().c_str(), real) == nullptr) {
    return absl::StrCat(unknown, exec.program(), ": ", std::strerror(errno), ")");
  }
  agent::WatchTlsRequest req;
  req.pid = static_cast<uint32_t>(pid);
  req.exe = real;
  req.under_tap = true;
  // The context the tap reads from the same environment (agent/tap_protocol.h).
  for (const std::string& e : exec.environment()) {
    absl::string_view v(e);
    if (absl::ConsumePrefix(&v, "IDFLOW_SCENARIO=")) {
      req.context.scenarios = agent::ParseScenarios(std::string_view(v.data(), v.size()));
    } else if (absl::ConsumePrefix(&v, "IDFLOW_CONSENT=")) {
      req.context.consents = agent::ParseConsents(std::string_view(v.data(), v.size()));
    } else if (absl::ConsumePrefix(&v, "IDFLOW_RUN_ID=")) {
      if (agent::IsValidRunId(std::string_view(v.data(), v.size()))) {
        req.context.run_id = std::string(v);
      }
    }
  }
  absl::StatusOr<std::string> frame = agent::EncodeWatchTls(req);
  if (!frame.ok()) return absl::StrCat(unknown, frame.status().message(), ")");
  absl::StatusOr<agent::ControlReply> reply = SendControl(socket, *frame, std::chrono::seconds(10));
  if (!reply.ok()) return absl::StrCat(unknown, reply.status().message(), ")");
  if (reply->code == absl::StatusCode::kUnimplemented ||
      reply->code == absl::StatusCode::kInvalidArgument) {
    return absl::StrCat(unknown, "the agent does not support it: an older idflow-agent)");
  }
  if (reply->code != absl::StatusCode::kOk) {
    return absl::StrCat(unknown, "the agent refused: ", reply->text, ")");
  }
  return reply->text;
}

}  // namespace idflow::tools

#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace idflow::testing {

absl::StatusOr<int> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", strerror(err)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string FindProgram(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) {
      return candidate;
    }
  }
  return "";
}

absl::StatusOr<std::string> MakeTempDir(const std::string& prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", tmpl, ": ", strerror(errno)));
  }
  return tmpl;
}

std::string FileTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args, const SpawnOptions& options) {
  if (args.empty()) return absl::InvalidArgumentError("Spawn: no program");
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string& log = options.log;
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError(absl::StrCat("open ", log, ": ", strerror(errno)));
  const bool drop = options.drop_privileges;
  const uid_t uid = options.uid;
  const gid_t gid = options.gid;
  if (drop && fchown(log_fd, uid, gid) != 0) {
    int err = errno;
    close(log_fd);
    return absl::InternalError(absl::StrCat("chown ", log, ": ", strerror(err)));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(err)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    if (drop && (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) _exit(126);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the parent died before prctl
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  return pid;
}

int WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return 0;
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

absl::StatusOr<int> RunAndWait(const std::vector<std::string>& args, const SpawnOptions& options,
                               std::chrono::milliseconds timeout) {
  auto pid = Spawn(args, options);
  if (!pid.ok()) return pid.status();
  int status = WaitExit(*pid, timeout);
  if (status == -1) StopProcess(*pid, SIGKILL, std::chrono::seconds(10));
  return status;
}

void StopProcess(pid_t pid, int signal, std::chrono::milliseconds grace) {
  if (pid <= 0) return;
  kill(pid, signal);
  if (WaitExit(pid, grace) == -1) {
    kill(pid, SIGKILL);
    WaitExit(pid, std::chrono::seconds(10));
  }
}

absl::StatusOr<ServerProcess> StartServerOnFreePort(const ServerSpec& spec) {
  absl::Status last = absl::InvalidArgumentError("StartServerOnFreePort: no attempts");
  for (int attempt = 0; attempt < spec.attempts; ++attempt) {
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    auto pid = spec.spawn(*port);
    if (!pid.ok()) return pid.status();
    last = absl::DeadlineExceededError(absl::StrCat(spec.name, " not ready on port ", *port,
                                                    " after ", spec.deadline.count(), " s"));
    const auto deadline = std::chrono::steady_clock::now() + spec.deadline;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (spec.ready(*port)) return ServerProcess{.pid = *pid, .port = *port};
      int status = 0;
      if (waitpid(*pid, &status, WNOHANG) == *pid) {
        last = absl::UnavailableError(absl::StrCat(spec.name, " exited (status ", status,
                                                   ") before accepting connections on ", *port));
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!exited) StopProcess(*pid, SIGKILL, std::chrono::seconds(10));
    last = absl::Status(last.code(), absl::StrCat(last.message(), ": ", spec.log_tail()));
  }
  return last;
}

}  // namespace idflow::testing

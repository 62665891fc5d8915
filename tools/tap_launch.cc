#include "tools/tap_launch.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

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

absl::Status ExecUnderTap(const TapLaunch& launch) {
  std::string preload = launch.tap;
  if (const char* existing = std::getenv("LD_PRELOAD"); existing && *existing) {
    preload += std::string(":") + existing;
  }
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  ::setenv("IDFLOW_SOCKET", launch.socket.c_str(), 1);
  ::setenv("IDFLOW_SCENARIO", absl::StrJoin(launch.scenarios, ",").c_str(), 1);
  ::setenv("IDFLOW_CONSENT", absl::StrJoin(launch.consents, ",").c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : launch.command) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  return absl::NotFoundError(
      absl::StrCat("cannot run '", launch.command[0], "': ", std::strerror(errno)));
}

}  // namespace idflow::tools

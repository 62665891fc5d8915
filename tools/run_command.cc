#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "tools/commands.h"

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

// Why nothing would be observed at `path`; "" when an agent accepts there.
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

}  // namespace

int RunCommand(int argc, char** argv) {
  FlagSet flags;
  flags.Add("socket", "/run/idflow/agent.sock", "the agent's ingress socket");
  flags.Add("scenario", "", "active usage scenario (repeatable), e.g. device_discovery");
  flags.Add("consent", "", "consent state KEY=true|false (repeatable)");
  flags.Add("tap", DefaultTapPath(), "path of libidflow-tap.so");
  flags.AddBool("allow-unobserved", "run the program even when no agent listens on --socket");
  if (auto st = flags.Parse(argc, argv, 2, /*allow_positional=*/false); !st.ok()) {
    std::cerr
        << "idflowctl run: " << st.message()
        << "\nusage: idflowctl run --socket PATH [--scenario NAME] [--consent KEY=true|false] "
           "-- CMD ARGS...\n";
    return 2;
  }
  const auto& cmd = flags.Positional();
  if (cmd.empty()) {
    std::cerr << "idflowctl run: no command given after --\n";
    return 2;
  }
  for (const auto& c : flags.GetAll("consent")) {
    std::vector<std::string> kv = absl::StrSplit(c, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty() || (kv[1] != "true" && kv[1] != "false")) {
      std::cerr << "idflowctl run: --consent takes KEY=true|false, got '" << c << "'\n";
      return 2;
    }
  }
  const std::string tap = flags.Get("tap");
  if (::access(tap.c_str(), R_OK) != 0) {
    std::cerr << "idflowctl run: tap library not readable: " << tap << "\n";
    return 2;
  }
  // A run nobody observed must not look like a clean one.
  if (std::string why = WhyUnobserved(flags.Get("socket")); !why.empty()) {
    if (!flags.GetBool("allow-unobserved")) {
      std::cerr << "idflowctl run: " << why
                << ": the program would run unobserved; start idflow-agent, give --socket, or "
                   "pass --allow-unobserved\n";
      return 2;
    }
    std::cerr << "idflowctl run: warning: " << why << ": running unobserved\n";
  }
  std::string preload = tap;
  if (const char* existing = std::getenv("LD_PRELOAD"); existing && *existing) {
    preload += std::string(":") + existing;
  }
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  ::setenv("IDFLOW_SOCKET", flags.Get("socket").c_str(), 1);
  ::setenv("IDFLOW_SCENARIO", absl::StrJoin(flags.GetAll("scenario"), ",").c_str(), 1);
  ::setenv("IDFLOW_CONSENT", absl::StrJoin(flags.GetAll("consent"), ",").c_str(), 1);

  // exec, not fork: the program takes idflowctl's pid, so signals (a test
  // harness stopping a server, Ctrl-C) reach it and its exit status is ours.
  std::vector<char*> args;
  for (const auto& a : cmd) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  std::cerr << "idflowctl run: cannot run '" << cmd[0] << "': " << std::strerror(errno) << "\n";
  return 127;
}

}  // namespace idflow::tools

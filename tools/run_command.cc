#include <sys/wait.h>
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

}  // namespace

int RunCommand(int argc, char** argv) {
  FlagSet flags;
  flags.Add("socket", "/run/idflow/agent.sock", "the agent's ingress socket");
  flags.Add("scenario", "", "active usage scenario (repeatable), e.g. device_discovery");
  flags.Add("consent", "", "consent state KEY=true|false (repeatable)");
  flags.Add("tap", DefaultTapPath(), "path of libidflow-tap.so");
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
  std::string preload = tap;
  if (const char* existing = std::getenv("LD_PRELOAD"); existing && *existing) {
    preload += std::string(":") + existing;
  }
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  ::setenv("IDFLOW_SOCKET", flags.Get("socket").c_str(), 1);
  ::setenv("IDFLOW_SCENARIO", absl::StrJoin(flags.GetAll("scenario"), ",").c_str(), 1);
  ::setenv("IDFLOW_CONSENT", absl::StrJoin(flags.GetAll("consent"), ",").c_str(), 1);

  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("idflowctl run: fork");
    return 2;
  }
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : cmd) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::cerr << "idflowctl run: cannot run '" << cmd[0] << "': " << std::strerror(errno) << "\n";
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 2;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 2;
}

}  // namespace idflow::tools

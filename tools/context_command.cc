// idflowctl context set: changes the usage context (scenarios, consents, QA
// run id) events are judged under, from now on, for one process or the
// device. The agent answers once the change is in force.
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace idflow::tools {
namespace {

constexpr char kUsage[] =
    "usage: idflowctl context set --socket PATH [--pid PID] KEY=VALUE...\n"
    "  KEY=VALUE: scenario=NAME[,NAME...] (scenario= for none), consent.KEY=true|false,\n"
    "             run_id=ID (run_id= to clear)\n";

}  // namespace

int ContextCommand(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]) != "set") {
    std::cerr << "idflowctl context: expected 'set'\n" << kUsage;
    return 2;
  }
  FlagSet flags;
  flags.Add("socket", "/run/idflow/agent.sock", "the agent's ingress socket");
  flags.Add("pid", "0", "the process whose context changes (0: the device)");
  flags.Add("timeout", "10", "seconds to wait for the agent's answer");
  if (auto st = flags.Parse(argc, argv, 3, /*allow_positional=*/true); !st.ok()) {
    std::cerr << "idflowctl context set: " << st.message() << "\n" << kUsage;
    return 2;
  }
  agent::ContextSetRequest req;
  int timeout_s = 0;
  if (!absl::SimpleAtoi(flags.Get("pid"), &req.pid) ||
      !absl::SimpleAtoi(flags.Get("timeout"), &timeout_s) || timeout_s <= 0) {
    std::cerr << "idflowctl context set: --pid takes a process id, --timeout a positive number\n";
    return 2;
  }
  absl::StatusOr<agent::ContextPatch> patch = agent::ParseContextAssignments(flags.Positional());
  if (!patch.ok()) {
    std::cerr << "idflowctl context set: " << patch.status().message() << "\n" << kUsage;
    return 2;
  }
  req.patch = *std::move(patch);
  absl::StatusOr<std::string> frame = agent::EncodeContextSet(req);
  if (!frame.ok()) {
    std::cerr << "idflowctl context set: " << frame.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<agent::ControlReply> reply =
      SendControl(flags.Get("socket"), *frame, std::chrono::seconds(timeout_s));
  absl::Status st = reply.ok() ? ReplyStatus(*reply) : reply.status();
  if (!st.ok()) {
    std::cerr << "idflowctl context set: " << st.message() << "\n";
    return st.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::cerr << "idflowctl context set: " << (req.pid == 0 ? "device" : "pid " + flags.Get("pid"))
            << ": " << absl::StrJoin(flags.Positional(), " ") << " (from "
            << absl::FormatTime(absl::FromUnixMillis(static_cast<int64_t>(reply->applied_unix_ms)),
                                absl::UTCTimeZone())
            << ")\n";
  return 0;
}

}  // namespace idflow::tools

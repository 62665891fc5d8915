// idflowctl agent status: what the local agent holds and how it is doing,
// from its status request on the tap socket (agent/control_protocol.h):
// spool depth, oldest unsent event, drops per cause, last ack, collector
// link, RSS, CPU and the watchdog's state. Counts and times only.
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "agent/watchdog.h"
#include "common/flags.h"
#include "common/json.h"
#include "tools/commands.h"
#include "tools/control_client.h"
#include "tools/table.h"

namespace idflow::tools {
namespace {

constexpr char kUsage[] =
    "usage: idflowctl agent status [--socket PATH] [--json] [--timeout SECONDS]\n"
    "  the local agent's spool depth, oldest unsent event, drops, last ack, collector,\n"
    "  RSS, CPU and watchdog state; exit 2 when no agent answers\n";

std::string Time(uint64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                          absl::FromUnixMillis(static_cast<int64_t>(unix_ms)), absl::UTCTimeZone());
}

// Age in seconds at the agent's own clock (no clock skew with the caller).
double AgeSeconds(const agent::AgentStatus& s, uint64_t unix_ms) {
  if (unix_ms == 0 || unix_ms > s.now_unix_ms) return 0;
  return static_cast<double>(s.now_unix_ms - unix_ms) / 1000.0;
}

std::string Mib(uint64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

std::string WatchdogText(const agent::AgentStatus& s) {
  return absl::StrCat("memory ",
                      agent::MemoryLevelName(static_cast<agent::MemoryLevel>(s.memory_level)),
                      ", cpu ", agent::CpuLevelName(static_cast<agent::CpuLevel>(s.cpu_level)),
                      "; ", s.watchdog_steps, " step(s), ", s.watchdog_shed, " event(s) shed");
}

}  // namespace

absl::StatusOr<agent::AgentStatus> QueryAgentStatus(const std::string& socket,
                                                    std::chrono::milliseconds timeout) {
  absl::StatusOr<agent::ControlReply> reply =
      SendControl(socket, agent::EncodeStatusRequest(), timeout);
  if (!reply.ok()) return reply.status();
  if (absl::Status st = ReplyStatus(*reply); !st.ok()) return st;
  if (!reply->status) {
    return absl::InternalError(absl::StrCat("the agent on ", socket, " answered without a status"));
  }
  return *reply->status;
}

std::string FormatAgentStatusTable(const agent::AgentStatus& s) {
  std::vector<std::vector<std::string>> rows = {{"field", "value"}};
  auto row = [&rows](std::string k, std::string v) {
    rows.push_back({std::move(k), std::move(v)});
  };
  row("agent", s.agent_id);
  row("version", s.version.empty() ? "unknown" : s.version);
  row("collector", absl::StrCat(s.collector, s.connected ? " (connected)" : " (not connected)"));
  row("spool", absl::StrCat(s.spool_events, " event(s) unacknowledged, ", Mib(s.spool_bytes),
                            " on disk; ", s.pending_events, " waiting in memory"));
  row("oldest unsent", s.oldest_unsent_unix_ms == 0
                           ? "-"
                           : absl::StrFormat("%s (%.1f s ago)", Time(s.oldest_unsent_unix_ms),
                                             AgeSeconds(s, s.oldest_unsent_unix_ms)));
  row("last ack",
      s.last_ack_unix_ms == 0
          ? absl::StrCat("seq ", s.last_ack_seq, " (none since the agent started)")
          : absl::StrFormat("seq %d at %s (%.1f s ago)", s.last_ack_seq, Time(s.last_ack_unix_ms),
                            AgeSeconds(s, s.last_ack_unix_ms)));
  row("last seq", absl::StrCat(s.last_seq));
  for (size_t i = 1; i < std::size(agent::kStatusDropNames); ++i) {
    row(absl::StrCat("drops ", agent::kStatusDropNames[i]), absl::StrCat(s.drops[i]));
  }
  row("rss",
      absl::StrCat(Mib(s.rss_bytes),
                   s.max_rss_bytes ? absl::StrCat(" (limit ", Mib(s.max_rss_bytes), ")") : ""));
  row("cpu", absl::StrFormat("%.1f %% of a core%s", s.cpu_permille / 10.0,
                             s.max_cpu_permille
                                 ? absl::StrFormat(" (limit %.1f %%)", s.max_cpu_permille / 10.0)
                                 : std::string()));
  row("watchdog", WatchdogText(s));
  return FormatTable(rows);
}

std::string FormatAgentStatusJson(const agent::AgentStatus& s) {
  std::string drops;
  for (size_t i = 1; i < std::size(agent::kStatusDropNames); ++i) {
    absl::StrAppend(&drops, i > 1 ? "," : "", "\"", agent::kStatusDropNames[i], "\":", s.drops[i]);
  }
  return absl::StrCat(
      "{\"agent_id\":\"", JsonEscape(s.agent_id), "\",\"version\":\"", JsonEscape(s.version),
      "\",\"collector\":{\"address\":\"", JsonEscape(s.collector),
      "\",\"connected\":", s.connected ? "true" : "false",
      "},\"spool\":{\"events\":", s.spool_events, ",\"bytes\":", s.spool_bytes,
      ",\"pending_events\":", s.pending_events, ",\"last_seq\":", s.last_seq,
      "},\"oldest_unsent_unix_ms\":", s.oldest_unsent_unix_ms,
      ",\"oldest_unsent_age_s\":", absl::StrFormat("%.3f", AgeSeconds(s, s.oldest_unsent_unix_ms)),
      ",\"last_ack\":{\"seq\":", s.last_ack_seq, ",\"unix_ms\":", s.last_ack_unix_ms,
      "},\"drops\":{", drops, "},\"rss_bytes\":", s.rss_bytes,
      ",\"cpu_percent\":", absl::StrFormat("%.1f", s.cpu_permille / 10.0),
      ",\"watchdog\":{\"memory\":\"",
      agent::MemoryLevelName(static_cast<agent::MemoryLevel>(s.memory_level)), "\",\"cpu\":\"",
      agent::CpuLevelName(static_cast<agent::CpuLevel>(s.cpu_level)),
      "\",\"max_rss_bytes\":", s.max_rss_bytes,
      ",\"max_cpu_percent\":", absl::StrFormat("%.1f", s.max_cpu_permille / 10.0),
      ",\"steps\":", s.watchdog_steps, ",\"shed_events\":", s.watchdog_shed,
      "},\"now_unix_ms\":", s.now_unix_ms, "}\n");
}

int AgentCommand(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]) != "status") {
    std::cerr << "idflowctl agent: expected 'status'\n" << kUsage;
    return 2;
  }
  FlagSet flags;
  flags.Add("socket", "/run/idflow/agent.sock", "the agent's ingress socket");
  flags.AddBool("json", "print JSON instead of a table");
  flags.Add("timeout", "5", "seconds to wait for the agent's answer");
  int timeout_s = 0;
  if (auto st = flags.Parse(argc, argv, 3); !st.ok()) {
    std::cerr << "idflowctl agent status: " << st.message() << "\n" << kUsage;
    return 2;
  }
  if (!absl::SimpleAtoi(flags.Get("timeout"), &timeout_s) || timeout_s <= 0) {
    std::cerr << "idflowctl agent status: --timeout takes a positive number of seconds\n";
    return 2;
  }
  absl::StatusOr<agent::AgentStatus> status =
      QueryAgentStatus(flags.Get("socket"), std::chrono::seconds(timeout_s));
  if (!status.ok()) {
    std::cerr << "idflowctl agent status: agent unreachable: " << status.status().message() << "\n";
    return 2;
  }
  std::cout << (flags.GetBool("json") ? FormatAgentStatusJson(*status)
                                      : FormatAgentStatusTable(*status));
  return 0;
}

}  // namespace idflow::tools

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/json.h"
#include "tools/commands.h"
#include "tools/query_client.h"
#include "tools/table.h"

namespace idflow::tools {
namespace {

std::string Time(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

uint64_t TotalDrops(const idflow::v1::DropCounters& d) {
  return d.tap_dropped() + d.ingress_rejected() + d.spool_dropped() + d.disk_dropped() +
         d.dead_lettered();
}

}  // namespace

int AgentsCommand(int argc, char** argv) {
  FlagSet flags;
  AddQueryFlags(&flags);
  flags.Add("device", "", "only this device");
  flags.Add("format", "table", "table | json");
  if (auto st = flags.Parse(argc, argv, 2); !st.ok()) {
    std::cerr << "idflowctl agents: " << st.message()
              << "\nusage: idflowctl agents --collector HOST:PORT [--format table|json]\n";
    return 2;
  }
  const std::string format = flags.Get("format");
  if (format != "table" && format != "json") {
    std::cerr << "idflowctl agents: unknown --format '" << format << "' (table, json)\n";
    return 2;
  }
  auto client = QueryClient::FromFlags(flags);
  if (!client.ok()) {
    std::cerr << "idflowctl agents: " << client.status().message() << "\n";
    return 2;
  }
  auto agents = client->ListAgents(flags.Get("device"));
  if (!agents.ok()) {
    std::cerr << "idflowctl agents: " << agents.status().message() << "\n";
    return 2;
  }
  if (format == "json") {
    auto q = [](const std::string& s) { return absl::StrCat("\"", JsonEscape(s), "\""); };
    for (const auto& a : *agents) {
      const auto& d = a.drops();
      std::cout << "{\"agent_id\":" << q(a.agent_id()) << ",\"device\":" << q(a.device().id())
                << ",\"device_class\":" << q(a.device().class_())
                << ",\"agent_version\":" << q(a.agent_version())
                << ",\"last_seen_unix_ms\":" << a.last_seen_unix_ms()
                << ",\"last_seen\":" << q(Time(a.last_seen_unix_ms()))
                << ",\"stored_up_to\":" << a.stored_up_to()
                << ",\"events_stored\":" << a.events_stored()
                << ",\"gap_events\":" << a.gap_events() << ",\"drops\":{\"tap\":" << d.tap_dropped()
                << ",\"ingress\":" << d.ingress_rejected() << ",\"spool\":" << d.spool_dropped()
                << ",\"disk\":" << d.disk_dropped() << ",\"dead_letter\":" << d.dead_lettered()
                << "},\"dropped_total\":" << TotalDrops(d) << "}\n";
    }
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"AGENT", "DEVICE", "VERSION", "LAST SEEN",
                                                 "STORED UP TO", "EVENTS",
                                                 "DROPS tap/ingress/spool/disk/dead"}};
  for (const auto& a : *agents) {
    const auto& d = a.drops();
    rows.push_back({a.agent_id(), a.device().id(),
                    a.agent_version().empty() ? "-" : a.agent_version(),
                    Time(a.last_seen_unix_ms()), absl::StrCat(a.stored_up_to()),
                    absl::StrCat(a.events_stored()),
                    absl::StrCat(d.tap_dropped(), "/", d.ingress_rejected(), "/", d.spool_dropped(),
                                 "/", d.disk_dropped(), "/", d.dead_lettered())});
  }
  std::cout << FormatTable(rows);
  uint64_t lost = 0;
  for (const auto& a : *agents) lost += TotalDrops(a.drops());
  std::cout << "\n" << agents->size() << " agents, " << lost << " events reported lost\n";
  return 0;
}

}  // namespace idflow::tools

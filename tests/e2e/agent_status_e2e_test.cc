// `idflowctl agent status` against a real agent: with the collector down,
// the spool depth it reports is exactly the events a program under the tap
// sent; once the collector is back, the acks drain it. An absent agent is
// a clear error and exit 2.
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace idflow::e2e {
namespace {

constexpr int kBasePort = 39500;  // UDP: sendto needs no receiver

class AgentStatusE2e : public ::testing::Test {
 protected:
  // Runs `idflowctl agent status --json`; null when it fails.
  nlohmann::json Status() {
    std::string out, err;
    last_rc_ =
        RunToEnd({BinDir() + "/idflowctl", "agent", "status", "--socket", stack_.socket, "--json"},
                 &out, &err);
    last_err_ = err;
    if (last_rc_ != 0) return nullptr;
    return nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  }

  Stack stack_;
  int last_rc_ = 0;
  std::string last_err_;
};

TEST_F(AgentStatusE2e, SpoolDepthMatchesEventsSentWhileTheCollectorIsDown) {
  std::string why;
  ASSERT_TRUE(stack_.StartCollector(&why)) << why;
  const int port = stack_.grpc_port;
  stack_.collector->Stop(9);
  ASSERT_TRUE(stack_.StartAgent(&why, stack_.collector_address())) << why;

  // One tap event per datagram; every datagram its own flow, so none is
  // aggregated into another and spooled events == events sent.
  constexpr int kEvents = 300;
  const std::string payload = std::string("id=") + Stack::kOaid + "&v=1";
  std::string out, err;
  ASSERT_EQ(
      RunToEnd({BinDir() + "/tap_test_sender", "flows", std::to_string(kBasePort), payload,
                std::to_string(kEvents), std::to_string(kEvents), "0"},
               &out, &err,
               {{"LD_PRELOAD", LibDir() + "/libidflow-tap.so"}, {"IDFLOW_SOCKET", stack_.socket}}),
      0)
      << err;

  nlohmann::json s;
  EXPECT_TRUE(WaitFor([&] {
    s = Status();
    return !s.is_null() && s["spool"]["events"] == kEvents && s["spool"]["pending_events"] == 0;
  })) << s.dump()
      << last_err_;
  ASSERT_FALSE(s.is_null()) << last_err_;
  EXPECT_EQ(s["spool"]["last_seq"], kEvents);
  EXPECT_GT(s["spool"]["bytes"].get<uint64_t>(), 0u);
  EXPECT_FALSE(s["collector"]["connected"].get<bool>());
  EXPECT_EQ(s["collector"]["address"], stack_.collector_address());
  EXPECT_EQ(s["last_ack"]["seq"], 0);
  EXPECT_EQ(s["last_ack"]["unix_ms"], 0);
  EXPECT_GT(s["oldest_unsent_unix_ms"].get<uint64_t>(), 0u);
  EXPECT_LE(s["oldest_unsent_unix_ms"].get<uint64_t>(), s["now_unix_ms"].get<uint64_t>());
  for (const char* cause : {"tap", "ingress", "spool", "disk", "dead_letter"}) {
    EXPECT_EQ(s["drops"][cause], 0) << cause;
  }
  EXPECT_GT(s["rss_bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(s["watchdog"]["memory"], "ok");
  EXPECT_FALSE(s["agent_id"].get<std::string>().empty());
  EXPECT_FALSE(s["version"].get<std::string>().empty());
  // Counts and times only: no identifier value in the answer.
  EXPECT_FALSE(absl::StrContains(s.dump(), Stack::kOaid));

  // The collector back: everything acknowledged, the spool drained.
  ASSERT_TRUE(stack_.StartCollector(&why, port)) << why;
  EXPECT_TRUE(WaitFor([&] {
    s = Status();
    return !s.is_null() && s["spool"]["events"] == 0 && s["last_ack"]["seq"] == kEvents &&
           s["collector"]["connected"] == true;
  })) << s.dump()
      << last_err_;
  EXPECT_GT(s["last_ack"]["unix_ms"].get<uint64_t>(), 0u);
  EXPECT_EQ(s["oldest_unsent_unix_ms"], 0);
  EXPECT_EQ(StoredTapEvents(stack_.collector_address()), kEvents);

  // The table form carries the same facts.
  ASSERT_EQ(
      RunToEnd({BinDir() + "/idflowctl", "agent", "status", "--socket", stack_.socket}, &out, &err),
      0)
      << err;
  EXPECT_TRUE(absl::StrContains(out, "(connected)")) << out;
  EXPECT_TRUE(absl::StrContains(out, "drops dead_letter")) << out;
}

// A real agent over its RSS limit (1 MiB: always over) steps down to
// shedding one counted step a second; the tap events it then refuses are
// ingress drops the collector is told about, and the status shows it all.
TEST_F(AgentStatusE2e, WatchdogShedsOverItsMemoryLimitWithCountedDrops) {
  stack_.agent_args = {"--watchdog-max-rss-mb", "1"};
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  nlohmann::json s;
  EXPECT_TRUE(WaitFor([&] {
    s = Status();
    return !s.is_null() && s["watchdog"]["memory"] == "shed";
  })) << s.dump()
      << last_err_;
  EXPECT_EQ(s["watchdog"]["steps"], 3);  // trim, shrink, shed
  EXPECT_EQ(s["watchdog"]["max_rss_bytes"], 1 << 20);

  constexpr int kEvents = 50;
  std::string out, err;
  ASSERT_EQ(
      RunToEnd({BinDir() + "/tap_test_sender", "flows", std::to_string(kBasePort),
                std::string("id=") + Stack::kOaid, std::to_string(kEvents), "1", "0"},
               &out, &err,
               {{"LD_PRELOAD", LibDir() + "/libidflow-tap.so"}, {"IDFLOW_SOCKET", stack_.socket}}),
      0)
      << err;
  EXPECT_TRUE(WaitFor([&] {
    s = Status();
    return !s.is_null() && s["watchdog"]["shed_events"] == kEvents;
  })) << s.dump();
  EXPECT_EQ(s["drops"]["ingress"], kEvents);
  EXPECT_EQ(s["spool"]["last_seq"], 0);
  // Declared to the collector: stored + drops == emitted.
  EXPECT_TRUE(WaitFor([&] { return ReportedDrops(stack_.collector_address()) == kEvents; }));
  EXPECT_EQ(StoredTapEvents(stack_.collector_address()), 0);
  EXPECT_TRUE(absl::StrContains(stack_.agent->Stderr(), "memory step 'shed'"));
}

TEST_F(AgentStatusE2e, AnAbsentAgentIsAClearErrorAndExit2) {
  const std::string dir = MakeTempDir("idflow-status");
  std::string out, err;
  EXPECT_EQ(RunToEnd({BinDir() + "/idflowctl", "agent", "status", "--socket", dir + "/none.sock"},
                     &out, &err),
            2);
  EXPECT_TRUE(absl::StrContains(err, "agent unreachable")) << err;
  EXPECT_TRUE(out.empty()) << out;
  EXPECT_EQ(RunToEnd({BinDir() + "/idflowctl", "agent", "bogus"}, &out, &err), 2);
}

}  // namespace
}  // namespace idflow::e2e

// Retention (--retention-days): the collector deletes events last seen
// before the cutoff, keeps newer ones, the verdict groups and the agent's
// accounting, and counts what it deleted. Real SQLite file; RedactStoreUrl.
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "collector/collector.h"
#include "collector/store/sqlite_store.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow {
namespace {

using ::idflow::testing::IsOk;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

store::EventRecord Event(uint64_t seq, int64_t seen_ms) {
  store::EventRecord e;
  e.agent_id = "agent-r";
  e.seq = seq;
  e.device_id = "dev-r";
  e.action = "transmit";
  e.channel = "tcp";
  e.dest_host = "example.test";
  e.data_type = "mac_address";
  e.encoding = "raw";
  e.digest = std::string(64, 'a');
  e.verdict = "clear";
  e.finding = "clear";
  e.first_seen_unix_ms = e.last_seen_unix_ms = seen_ms;
  return e;
}

bool WaitFor(const std::function<bool()>& cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

TEST(RetentionTest, OldEventsGoAggregatesAndAccountingStay) {
  std::string dir = ::testing::TempDir() + "/retention-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  auto s = store::SqliteStore::Open(dir + "/idflow.db");
  ASSERT_THAT(s, IsOk());
  const int64_t day = 24 * 3600 * 1000LL;
  store::WriteOp op;
  op.agent_id = "agent-r";
  for (uint64_t i = 1; i <= 3; ++i) op.events.push_back(Event(i, NowMs() - 10 * day));
  for (uint64_t i = 4; i <= 5; ++i) op.events.push_back(Event(i, NowMs() - day / 2));
  auto written = (*s)->Write({op});
  ASSERT_THAT(written, IsOk());
  ASSERT_THAT((*written)[0], IsOk());

  collector::CollectorOptions o;
  o.listen = "127.0.0.1:0";
  o.policies_dir = std::string(IDFLOW_SOURCE_DIR) + "/policies";
  o.retention = std::chrono::hours(24 * 7);
  o.claim_check_interval = std::chrono::milliseconds(20);
  auto c = collector::Collector::Start(o, std::move(*s));
  ASSERT_THAT(c, IsOk());
  ASSERT_TRUE(WaitFor([&] { return (*c)->counters().pruned_events.load() == 3; }))
      << (*c)->counters().pruned_events.load();
  store::VerdictFilter all;
  EXPECT_EQ(*(*c)->store().CountEvents(all), 2u);
  EXPECT_EQ(*(*c)->store().LastSeq("agent-r"), 5u);
  auto groups = (*c)->store().QueryVerdicts(all);
  ASSERT_THAT(groups, IsOk());
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].count, 5u) << "the group keeps the pruned events' count";
  EXPECT_NE((*c)->MetricsText().find("idflow_collector_pruned_events_total 3"), std::string::npos);
  (*c)->Shutdown();
}

TEST(RedactStoreUrlTest, PasswordsNeverShow) {
  EXPECT_EQ(store::RedactStoreUrl("postgresql://idflow:s3cret@db.example:5432/idflow?pool=8"),
            "postgresql://idflow:***@db.example:5432/idflow?pool=8");
  EXPECT_EQ(store::RedactStoreUrl("postgres://db/idflow?user=x&password=s3cret"),
            "postgres://db/idflow?***");
  EXPECT_EQ(store::RedactStoreUrl("postgresql://idflow@db/idflow"),
            "postgresql://idflow@db/idflow");
  EXPECT_EQ(store::RedactStoreUrl("sqlite:/var/lib/idflow/idflow.db"),
            "sqlite:/var/lib/idflow/idflow.db");
}

}  // namespace
}  // namespace idflow

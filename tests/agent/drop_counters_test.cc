// Drop counters: per cause, thread-safe, persisted across restarts, never
// silently reset by a damaged file.
#include "agent/drop_counters.h"

#include <fstream>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/agent/test_util.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;

std::string TempPath() { return MakeTempDir("drops") + "/drops"; }

TEST(DropCountersTest, CountsPerCauseFromManyThreadsAndSurviveRestart) {
  const std::string path = TempPath();
  {
    auto d = DropCounterStore::Open(path, std::chrono::hours(1));
    ASSERT_THAT(d, IsOk());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 1000; ++i) {
          (*d)->Add(idflow::v1::DROP_CAUSE_DISK, 1);
          (*d)->Add(idflow::v1::DROP_CAUSE_SPOOL, 2);
        }
      });
    }
    for (auto& t : threads) t.join();
    (*d)->Add(idflow::v1::DROP_CAUSE_TAP, 7);
    (*d)->Add(idflow::v1::DROP_CAUSE_INGRESS, 3);
    (*d)->Add(idflow::v1::DROP_CAUSE_DEAD_LETTER, 5);
    (*d)->Add(idflow::v1::DROP_CAUSE_UNSPECIFIED, 100);  // ignored
    idflow::v1::DropCounters s = (*d)->Snapshot();
    EXPECT_EQ(s.disk_dropped(), 4000u);
    EXPECT_EQ(s.spool_dropped(), 8000u);
    // Destruction persists what the interval held back.
  }
  auto d = DropCounterStore::Open(path);
  ASSERT_THAT(d, IsOk());
  idflow::v1::DropCounters s = (*d)->Snapshot();
  EXPECT_EQ(s.disk_dropped(), 4000u);
  EXPECT_EQ(s.spool_dropped(), 8000u);
  EXPECT_EQ(s.tap_dropped(), 7u);
  EXPECT_EQ(s.ingress_rejected(), 3u);
  EXPECT_EQ(s.dead_lettered(), 5u);
  uint64_t v = (*d)->version();
  (*d)->Add(idflow::v1::DROP_CAUSE_TAP, 1);
  EXPECT_NE((*d)->version(), v);
}

TEST(DropCountersTest, PersistsWithoutAnOrderlyShutdown) {
  const std::string path = TempPath();
  auto d = DropCounterStore::Open(path, std::chrono::milliseconds(0));
  ASSERT_THAT(d, IsOk());
  (*d)->Add(idflow::v1::DROP_CAUSE_DISK, 9);
  // Read by a second instance while the first lives on (a kill -9 later).
  auto other = DropCounterStore::Open(path);
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ((*other)->Get(idflow::v1::DROP_CAUSE_DISK), 9u);
}

TEST(DropCountersTest, DamagedFileIsAnErrorNotAReset) {
  const std::string path = TempPath();
  std::ofstream(path) << "tap 5\nspool 1\ncrc 1\n";
  EXPECT_FALSE(DropCounterStore::Open(path).ok());
  idflow::v1::DropCounters c;
  c.set_disk_dropped(42);
  auto decoded = DropCounterStore::Decode(DropCounterStore::Encode(c));
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->disk_dropped(), 42u);
}

}  // namespace
}  // namespace idflow::agent

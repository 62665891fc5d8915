// Drop counters: per cause, thread-safe, persisted across restarts, never
// silently reset by a damaged file.
#include "agent/drop_counters.h"

#include <zlib.h>

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

// Ring marks travel in the same write as the counters, survive a reopen,
// are forgotten once the ring holds them, and an older decoder's view of
// the file (unknown names ignored) still reads the counters.
TEST(DropCountersTest, RingMarksAreWrittenWithTheCount) {
  const std::string path = TempPath();
  auto d = DropCounterStore::Open(path, std::chrono::hours(1));
  ASSERT_THAT(d, IsOk());
  ASSERT_THAT((*d)->AddRingDrops(0xabcdef0123456789u, 7, 40), IsOk());
  ASSERT_THAT((*d)->AddRingDrops(2, 3, 3), IsOk());
  {
    auto other = DropCounterStore::Open(path);  // written at once, interval or not
    ASSERT_THAT(other, IsOk());
    EXPECT_EQ((*other)->Get(idflow::v1::DROP_CAUSE_TAP), 10u);
    EXPECT_EQ((*other)->RingDropsCounted(0xabcdef0123456789u), 40u);
    EXPECT_EQ((*other)->RingDropsCounted(2), 3u);
    EXPECT_EQ((*other)->RingDropsCounted(5), 0u);
  }
  (*d)->ForgetRing(2);
  EXPECT_EQ((*d)->RingDropsCounted(2), 0u);
  ASSERT_THAT((*d)->AddRingDrops(9, 1, 1), IsOk());
  auto other = DropCounterStore::Open(path);
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ((*other)->RingDropsCounted(2), 0u);
  EXPECT_EQ((*other)->RingDropsCounted(9), 1u);
  EXPECT_EQ((*other)->Get(idflow::v1::DROP_CAUSE_TAP), 11u);
  // Bounded (rings of processes that never come back): the newest is kept.
  const uint64_t last = 100 + 2 * DropCounterStore::kMaxRingMarks;
  for (uint64_t id = 100; id <= last; ++id) ASSERT_THAT((*d)->AddRingDrops(id, 1, 1), IsOk());
  size_t kept = 0;
  for (uint64_t id = 100; id <= last; ++id) kept += (*d)->RingDropsCounted(id) > 0;
  EXPECT_LE(kept, DropCounterStore::kMaxRingMarks);
  EXPECT_EQ((*d)->RingDropsCounted(last), 1u);
  auto text = DropCounterStore::Encode(idflow::v1::DropCounters{}, {{1, 2}});
  EXPECT_NE(text.find("ring:1 2\n"), std::string::npos) << text;
  DropCounterStore::RingMarks marks;
  ASSERT_THAT(DropCounterStore::Decode(text, &marks), IsOk());
  EXPECT_EQ(marks.size(), 1u);
  EXPECT_FALSE(DropCounterStore::Decode(
                   "ring:zz 1\ncrc " +
                   std::to_string(crc32(0, reinterpret_cast<const Bytef*>("ring:zz 1\n"), 10)) +
                   "\n")
                   .ok());
}

}  // namespace
}  // namespace idflow::agent

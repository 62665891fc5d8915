// The per-stream slot pool (agent/tap/fd/stream_slots.h): claims, the
// try-lock, exhaustion and release, also from many threads (TSan stage).
#include "agent/tap/fd/stream_slots.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace idflow::tap {
namespace {

struct Counter {
  int value = 0;
  int resets = 0;
  void Reset() {
    value = 0;
    ++resets;
  }
};
using Pool = StreamSlots<Counter, 4, 64>;

TEST(StreamSlotsTest, ClaimLockUnlockRelease) {
  static Pool pool;  // big: not on the stack
  EXPECT_FALSE(pool.Has(3, 0));
  EXPECT_EQ(pool.Lock(3, 0, /*claim=*/false), nullptr);
  Pool::Slot* s = pool.Lock(3, 0, /*claim=*/true);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->payload.resets, 1);
  s->payload.value = 42;
  // Held: a second caller does without.
  EXPECT_EQ(pool.Lock(3, 0, true), nullptr);
  Pool::Unlock(s);
  EXPECT_TRUE(pool.Has(3, 0));
  EXPECT_FALSE(pool.Has(3, 1));  // the TLS stream of the fd is another one
  s = pool.Lock(3, 0, false);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->payload.value, 42);
  Pool::Unlock(s);
  pool.ReleaseFd(3);
  EXPECT_FALSE(pool.Has(3, 0));
  s = pool.Lock(3, 0, true);  // a new stream: reset
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->payload.value, 0);
  Pool::Unlock(s);
  pool.ReleaseFd(3);
}

TEST(StreamSlotsTest, ExhaustedPoolAndOutOfRangeFdsGetNone) {
  static Pool pool;
  for (int fd = 0; fd < 4; ++fd) {
    Pool::Slot* s = pool.Lock(fd, 0, true);
    ASSERT_NE(s, nullptr) << fd;
    Pool::Unlock(s);
  }
  EXPECT_EQ(pool.Lock(10, 0, true), nullptr);
  EXPECT_EQ(pool.Lock(-1, 0, true), nullptr);
  EXPECT_EQ(pool.Lock(64, 0, true), nullptr);
  pool.Release(2, 0);
  Pool::Slot* s = pool.Lock(10, 0, true);
  ASSERT_NE(s, nullptr);
  Pool::Unlock(s);
  for (int fd : {0, 1, 3, 10}) pool.ReleaseFd(fd);
}

TEST(StreamSlotsTest, ThreadsOnTheSameAndOnOtherStreams) {
  static StreamSlots<Counter, 8, 64> pool;
  constexpr int kThreads = 8, kRounds = 2000;
  std::atomic<int> locked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        int fd = (t + i) % 6;  // shared streams, and more than one per slot over time
        auto* s = pool.Lock(fd, i & 1, true);
        if (s == nullptr) continue;
        ++s->payload.value;  // exclusive while locked
        locked.fetch_add(1, std::memory_order_relaxed);
        decltype(pool)::Unlock(s);
        if (i % 7 == 0) pool.Release(fd, i & 1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(locked.load(), 0);
}

}  // namespace
}  // namespace idflow::tap

// The event ring end to end: the tap's producer (RingPushParts, records
// spanning several slots) against the agent's reader (TapRingReader), in
// one process. Runs under the sanitizer stages, TSan included.
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "agent/drop_counters.h"
#include "agent/tap/channel/agent_channel.h"
#include "agent/tap_protocol.h"
#include "agent/tap_ring.h"
#include "gtest/gtest.h"

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace idflow::tap {
namespace {

// The tap and the reader map the ring's memfd at two addresses, so TSan
// cannot pair a producer's commit with the reader's acquire, nor the
// reader's release of a slot with the next producer's acquire (different
// addresses): the test tells it, on the producers' addresses, after the
// reader read a record and before it frees the record's slots.
void SyncForTsan(uint64_t from, uint64_t to) {
#if defined(__SANITIZE_THREAD__)
  agent::TapRingHeader* h = OwnRing();
  char* slots = reinterpret_cast<char*>(h) + agent::kTapRingHeaderBytes;
  auto lap = [&](uint64_t p) {
    return slots + (p & (h->slot_count - 1)) * agent::kTapRingSlotBytes;  // &slot->lap
  };
  __tsan_acquire(lap(from));
  for (uint64_t p = from; p < to; ++p) __tsan_release(lap(p));
#else
  (void)from;
  (void)to;
#endif
}

// A record: a header naming (producer, seq) and `size` bytes derived from
// them, so the reader can check every byte it got.
std::string Record(uint32_t producer, uint32_t seq, size_t size) {
  std::string r(sizeof(agent::TapWireHeader) + 8 + size, '\0');
  agent::TapWireHeader h;
  agent::FillTapHeader(&h, agent::kTapMsgPayload, static_cast<uint32_t>(r.size()));
  memcpy(r.data(), &h, sizeof(h));
  memcpy(r.data() + sizeof(h), &producer, 4);
  memcpy(r.data() + sizeof(h) + 4, &seq, 4);
  for (size_t i = 0; i < size; ++i) {
    r[sizeof(h) + 8 + i] = static_cast<char>((producer * 31 + seq * 7 + i) & 0xff);
  }
  return r;
}

bool Check(const std::string& r, uint32_t* producer, uint32_t* seq) {
  if (r.size() < sizeof(agent::TapWireHeader) + 8) return false;
  memcpy(producer, r.data() + sizeof(agent::TapWireHeader), 4);
  memcpy(seq, r.data() + sizeof(agent::TapWireHeader) + 4, 4);
  return r == Record(*producer, *seq, r.size() - sizeof(agent::TapWireHeader) - 8);
}

class RingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_ring_slots = 64;
    ASSERT_TRUE(CreateRing());
    auto reader = agent::TapRingReader::Attach(dup(RingFd()), dup(DoorbellFd()));
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = std::move(*reader);
  }
  void TearDown() override {
    reader_.reset();
    DestroyRing();
  }
  bool Push(const std::string& r) {
    RingPart part{r.data(), r.size()};
    return RingPushParts(OwnRing(), &part, 1);
  }
  std::unique_ptr<agent::TapRingReader> reader_;
};

// Sizes around the slot boundary and up to the largest record, many laps
// around a 64-slot ring: each comes back byte for byte, and a record that
// does not fit is refused without touching the ring.
TEST_F(RingTest, RecordsSpanningSlotsRoundTripAcrossTheWrap) {
  const size_t kSizes[] = {0,     100,  agent::kTapRingPayloadMax - 24, agent::kTapRingPayloadMax,
                           10000, 50000};
  std::string out;
  uint32_t seq = 0;
  for (int lap = 0; lap < 40; ++lap) {
    for (size_t size : kSizes) {
      const std::string r = Record(1, seq, size);
      ASSERT_TRUE(Push(r)) << size;
      ASSERT_EQ(reader_->Next(&out), agent::TapRingReader::Read::kRecord);
      EXPECT_EQ(reader_->next_position() - reader_->position(), agent::TapRingSpan(r.size()));
      EXPECT_EQ(out, r);
      reader_->Release();
      ++seq;
    }
  }
  EXPECT_EQ(reader_->Next(&out), agent::TapRingReader::Read::kEmpty);
  std::string too_big(agent::kTapRingRecordMax + 1, 'x');
  EXPECT_FALSE(Push(too_big));
  EXPECT_EQ(reader_->Uncommitted(), 0u);
}

// Four producers of mixed sizes against one consumer: every record read is
// intact and in its producer's order, and read + refused = pushed.
TEST_F(RingTest, ConcurrentProducersLoseNothingUncounted) {
  constexpr uint32_t kProducers = 4, kEach = 400;
  std::atomic<uint64_t> refused{0};
  std::atomic<int> done{0};
  std::vector<std::thread> producers;
  for (uint32_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (uint32_t i = 0; i < kEach; ++i) {
        const size_t size = (i % 5 == 0) ? 9000 + p * 100 : 40 + (i * 13) % 2000;
        if (!Push(Record(p, i, size))) refused.fetch_add(1);
      }
      done.fetch_add(1);
    });
  }
  uint64_t read = 0;
  std::vector<int64_t> last(kProducers, -1);
  std::string out;
  for (;;) {
    const bool finished = done.load() == static_cast<int>(kProducers);
    agent::TapRingReader::Read r = reader_->Next(&out);
    if (r == agent::TapRingReader::Read::kEmpty) {
      if (finished) break;
      std::this_thread::yield();
      continue;
    }
    ASSERT_EQ(r, agent::TapRingReader::Read::kRecord);
    uint32_t producer = 0, seq = 0;
    ASSERT_TRUE(Check(out, &producer, &seq));
    ASSERT_LT(producer, kProducers);
    EXPECT_GT(static_cast<int64_t>(seq), last[producer]);
    last[producer] = seq;
    SyncForTsan(reader_->position(), reader_->next_position());
    reader_->Release();
    ++read;
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(read + refused.load(), uint64_t{kProducers} * kEach);
  EXPECT_GT(read, 0u);
}

// Drops are counted from the ring's shared counter, durably, then marked in
// the ring. An agent killed between the two must not make the next one count
// them again: the drop file's mark for the ring is applied at attach.
TEST_F(RingTest, DropsCountedByAKilledAgentAreNotCountedAgain) {
  const std::string path = ::testing::TempDir() + "/ring_drops_" + std::to_string(::getpid());
  ::unlink(path.c_str());
  OwnRing()->dropped = 781;
  {
    auto store = agent::DropCounterStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    uint64_t upto = 0;
    const uint64_t n = reader_->PendingDrops(&upto);
    ASSERT_EQ(n, 781u);
    ASSERT_TRUE((*store)->AddRingDrops(reader_->ring_id(), n, upto).ok());
    // Killed here: the ring is never told.
  }
  reader_.reset();
  OwnRing()->dropped += 5;  // dropped while no agent ran
  auto store = agent::DropCounterStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Get(idflow::v1::DROP_CAUSE_TAP), 781u);
  auto reader = agent::TapRingReader::Attach(dup(RingFd()), dup(DoorbellFd()));
  ASSERT_TRUE(reader.ok()) << reader.status();
  reader_ = std::move(*reader);
  reader_->ResumeDrops((*store)->RingDropsCounted(reader_->ring_id()));
  uint64_t upto = 0;
  EXPECT_EQ(reader_->PendingDrops(&upto), 5u);  // 786 without the mark
  EXPECT_EQ(upto, 786u);
  reader_->MarkDropsReported(upto);
  // A mark past what the tap counted (a damaged file) hides no later drop.
  reader_->ResumeDrops(10000);
  OwnRing()->dropped += 3;
  EXPECT_EQ(reader_->PendingDrops(&upto), 3u);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace idflow::tap

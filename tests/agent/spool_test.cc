#include "agent/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <sys/mount.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "tests/agent/test_util.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;

std::string TempDir() { return MakeTempDir("spool"); }

#define EXPECT_SEQ_CONTIGUOUS(v)                                    \
  for (size_t i_ = 1; i_ < (v).size(); ++i_) {                      \
    ASSERT_EQ((v)[i_].seq(), (v)[i_ - 1].seq() + 1) << "at " << i_; \
  }

std::vector<idflow::v1::Event> Events(int n, const std::string& kind = "mac_address") {
  std::vector<idflow::v1::Event> out(n);
  for (auto& e : out) {
    e.mutable_identifier()->set_kind(kind);
    e.mutable_identifier()->set_digest(std::string(32, 'a'));
  }
  return out;
}

TEST(SpoolTest, AssignsGapFreeSequenceAndReadsBack) {
  SpoolOptions o;
  o.dir = TempDir();
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  auto batch = Events(3);
  ASSERT_THAT((*spool)->Append(&batch), IsOk());
  auto more = Events(2);
  ASSERT_THAT((*spool)->Append(&more), IsOk());
  EXPECT_EQ(batch[0].seq(), 1u);
  EXPECT_EQ(more[1].seq(), 5u);
  EXPECT_EQ(batch[0].agent_id(), (*spool)->agent_id());
  auto read = (*spool)->ReadAfter(2, 100, 1 << 20);
  ASSERT_THAT(read, IsOk());
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[0].seq(), 3u);
  EXPECT_EQ((*read)[2].seq(), 5u);
  auto limited = (*spool)->ReadAfter(0, 2, 1 << 20);
  ASSERT_THAT(limited, IsOk());
  EXPECT_EQ(limited->size(), 2u);
}

TEST(SpoolTest, SurvivesReopenWithAgentIdSequenceAndAck) {
  SpoolOptions o;
  o.dir = TempDir();
  std::string id;
  {
    auto spool = Spool::Open(o);
    ASSERT_THAT(spool, IsOk());
    id = (*spool)->agent_id();
    auto batch = Events(4);
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
    ASSERT_THAT((*spool)->Ack(2), IsOk());
  }
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  EXPECT_EQ((*spool)->agent_id(), id);
  EXPECT_EQ((*spool)->acked(), 2u);
  EXPECT_EQ((*spool)->last_seq(), 4u);
  auto read = (*spool)->ReadAfter(0, 100, 1 << 20);
  ASSERT_THAT(read, IsOk());
  ASSERT_EQ(read->size(), 2u);  // acked events are not re-read
  EXPECT_EQ((*read)[0].seq(), 3u);
  auto next = Events(1);
  ASSERT_THAT((*spool)->Append(&next), IsOk());
  EXPECT_EQ(next[0].seq(), 5u);
}

TEST(SpoolTest, DiscardTailDropsACutShortAppendAcrossAReopen) {
  SpoolOptions o;
  o.dir = TempDir();
  {
    auto spool = Spool::Open(o);
    ASSERT_THAT(spool, IsOk());
    auto whole = Events(5);
    ASSERT_THAT((*spool)->Append(&whole), IsOk());  // 1..5
    auto part = Events(3);
    ASSERT_THAT((*spool)->Append(&part), IsOk());  // 6..8: the prefix of a torn flush
    ASSERT_THAT((*spool)->Ack(2), IsOk());
  }
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  ASSERT_EQ((*spool)->last_seq(), 8u);
  ASSERT_THAT((*spool)->DiscardTail(6), IsOk());
  EXPECT_EQ((*spool)->last_seq(), 5u);
  auto again = Events(4);
  ASSERT_THAT((*spool)->Append(&again), IsOk());
  EXPECT_EQ(again.front().seq(), 6u);
  auto read = (*spool)->ReadAfter(2, 100, 1 << 20);
  ASSERT_THAT(read, IsOk());
  ASSERT_EQ(read->size(), 7u);  // 3..5 and the 4 appended again, nothing twice
  EXPECT_SEQ_CONTIGUOUS(*read);
  EXPECT_EQ(read->back().seq(), 9u);
  // Acknowledged seqs are never dropped.
  EXPECT_EQ((*spool)->DiscardTail(2).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SpoolTest, TruncatesTornTailOnOpen) {
  SpoolOptions o;
  o.dir = TempDir();
  {
    auto spool = Spool::Open(o);
    ASSERT_THAT(spool, IsOk());
    auto batch = Events(3);
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
  }
  // Simulate power loss mid-record: garbage half-record at the end.
  std::string seg;
  for (const auto& e : std::filesystem::directory_iterator(o.dir)) {
    if (e.path().filename().string().rfind("seg-", 0) == 0) seg = e.path();
  }
  ASSERT_FALSE(seg.empty());
  int fd = ::open(seg.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "\x40\x00\x00\x00garbage", 11), 11);
  ::close(fd);
  auto before = std::filesystem::file_size(seg);
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  EXPECT_EQ(std::filesystem::file_size(seg), before - 11);
  EXPECT_EQ((*spool)->last_seq(), 3u);
  auto next = Events(1);
  ASSERT_THAT((*spool)->Append(&next), IsOk());
  EXPECT_EQ(next[0].seq(), 4u);
  auto read = (*spool)->ReadAfter(0, 100, 1 << 20);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->size(), 4u);
}

TEST(SpoolTest, BoundDropsOldestAndCountsThem) {
  SpoolOptions o;
  o.dir = TempDir();
  o.segment_bytes = 1024;
  o.max_bytes = 4096;
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  for (int i = 0; i < 100; ++i) {
    auto batch = Events(5);
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
  }
  SpoolStats st = (*spool)->stats();
  EXPECT_LE(st.bytes, o.max_bytes + o.segment_bytes);
  EXPECT_GT(st.dropped, 0u);
  EXPECT_EQ(st.next_seq, 501u);
  auto read = (*spool)->ReadAfter(0, 1000, 1 << 20);
  ASSERT_THAT(read, IsOk());
  // What is left plus what was dropped is everything: nothing vanishes silently.
  EXPECT_EQ(read->size() + st.dropped, 500u);
  EXPECT_EQ(read->back().seq(), 500u);
}

TEST(SpoolTest, AckDeletesFullyAckedSegments) {
  SpoolOptions o;
  o.dir = TempDir();
  o.segment_bytes = 256;
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  for (int i = 0; i < 20; ++i) {
    auto batch = Events(3);
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
  }
  uint64_t segments_before = (*spool)->stats().segments;
  ASSERT_THAT((*spool)->Ack(30), IsOk());
  EXPECT_LT((*spool)->stats().segments, segments_before);
  EXPECT_GE((*spool)->stats().segments, 1u);
  // Fully acked, the segment being written goes too (it used to stay forever).
  ASSERT_THAT((*spool)->Ack(60), IsOk());
  EXPECT_EQ((*spool)->stats().segments, 0u);
}

// Bytes of regular files under `dir`: what the spool really holds on disk.
uint64_t DiskBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

// A clock the test moves by hand, so backoff is tested without sleeping.
struct FakeClock {
  std::chrono::steady_clock::time_point t{std::chrono::hours(1)};
  std::function<std::chrono::steady_clock::time_point()> Fn() {
    return [this] { return t; };
  }
};

std::string AckedFile(const std::string& dir) {
  auto v = ReadFile(dir + "/acked");
  return v.ok() ? std::string(absl::StripAsciiWhitespace(*v)) : "";
}

// The acked file is saved at most once per ack_persist_interval, and always
// before a segment is freed: a crash between saves (simulated by copying the
// directory while the spool is open) resumes from an older mark, holding
// every event after it, with the same next seq: nothing lost, and the
// collector's stored_up_to (authoritative) skips what it already has.
TEST(SpoolTest, AckMarkIsSavedLazilyButBeforeAnySegmentIsFreed) {
  FakeClock clock;
  SpoolOptions o;
  o.dir = TempDir();
  o.segment_bytes = 256;
  o.sync = false;
  o.now = clock.Fn();
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  for (int i = 0; i < 20; ++i) {
    auto batch = Events(3);
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
  }
  const uint64_t segments = (*spool)->stats().segments;
  ASSERT_GT(segments, 3u);
  // The first ack that frees nothing: saved (nothing saved for a second).
  ASSERT_THAT((*spool)->Ack(1), IsOk());
  EXPECT_EQ(AckedFile(o.dir), "1");
  // Acks within the same segment and the same second: memory only.
  ASSERT_THAT((*spool)->Ack(2), IsOk());
  EXPECT_EQ((*spool)->acked(), 2u);
  EXPECT_EQ(AckedFile(o.dir), "1");
  EXPECT_EQ((*spool)->stats().segments, segments);
  // "kill -9" now: the copy resumes at the saved mark with everything after.
  const std::string crash = TempDir() + "/copy";
  std::filesystem::copy(o.dir, crash);
  {
    SpoolOptions c = o;
    c.dir = crash;
    auto reopened = Spool::Open(c);
    ASSERT_THAT(reopened, IsOk());
    EXPECT_EQ((*reopened)->acked(), 1u);
    EXPECT_EQ((*reopened)->last_seq(), 60u);
    auto all = (*reopened)->ReadAfter(0, 100, 1 << 20);
    ASSERT_THAT(all, IsOk());
    ASSERT_EQ(all->size(), 59u);
    EXPECT_EQ(all->front().seq(), 2u);
    EXPECT_SEQ_CONTIGUOUS(*all);
  }
  // A second later: saved with the next ack.
  clock.t += std::chrono::milliseconds(1000);
  ASSERT_THAT((*spool)->Ack(3), IsOk());
  EXPECT_EQ(AckedFile(o.dir), "3");
  // An ack that frees a segment saves first, whatever the time.
  ASSERT_THAT((*spool)->Ack(30), IsOk());
  EXPECT_EQ(AckedFile(o.dir), "30");
  EXPECT_LT((*spool)->stats().segments, segments);
  // Freeing every segment (the last one too) saves: next seq survives.
  ASSERT_THAT((*spool)->Ack(60), IsOk());
  EXPECT_EQ(AckedFile(o.dir), "60");
  EXPECT_EQ((*spool)->stats().segments, 0u);
  // Sync (shutdown) saves a pending mark.
  auto more = Events(2);
  ASSERT_THAT((*spool)->Append(&more), IsOk());
  ASSERT_THAT((*spool)->Ack(61), IsOk());
  EXPECT_EQ(AckedFile(o.dir), "60");
  ASSERT_THAT((*spool)->Sync(), IsOk());
  EXPECT_EQ(AckedFile(o.dir), "61");
  spool->reset();
  auto again = Spool::Open(o);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ((*again)->acked(), 61u);
  EXPECT_EQ((*again)->last_seq(), 62u);
}

TEST(SpoolTest, SegmentsAreSizedToTheBoundAndTheBoundHolds) {
  SpoolOptions o;
  o.dir = TempDir();
  o.max_bytes = 1 << 20;  // 1 MB: under the 4 MiB default segment
  o.sync = false;
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  EXPECT_EQ((*spool)->segment_bytes(), o.max_bytes / 4);
  uint64_t appended = 0;
  for (int i = 0; i < 400; ++i) {
    auto batch = Events(64);
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
    appended += 64;
    ASSERT_LE((*spool)->stats().bytes, o.max_bytes);
    ASSERT_LE(DiskBytes(o.dir), o.max_bytes + 4096);  // + agent_id, lost
  }
  SpoolStats st = (*spool)->stats();
  EXPECT_GT(st.dropped, 0u);
  // The purged range comes back as one SPOOL gap, then the held events.
  auto first = (*spool)->Read(0, 100000, 64 << 20);
  ASSERT_THAT(first, IsOk());
  ASSERT_TRUE(first->is_gap);
  EXPECT_EQ(first->gap.from, 1u);
  EXPECT_EQ(first->gap.to, st.dropped);
  EXPECT_EQ(first->gap.cause, idflow::v1::DROP_CAUSE_SPOOL);
  auto held = (*spool)->ReadAfter(0, 100000, 64 << 20);
  ASSERT_THAT(held, IsOk());
  EXPECT_EQ(held->size() + st.dropped, appended);
  EXPECT_EQ(held->front().seq(), st.dropped + 1);
  EXPECT_SEQ_CONTIGUOUS(*held);
}

TEST(SpoolTest, DropCountersWeighAggregatedEventsByTheirCount) {
  auto drops = DropCounterStore::Open(TempDir() + "/drops");
  ASSERT_THAT(drops, IsOk());
  SpoolOptions o;
  o.dir = TempDir();
  o.max_bytes = 16 << 10;
  o.sync = false;
  o.drops = drops->get();
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  for (int i = 0; i < 50; ++i) {
    auto batch = Events(20);
    for (auto& e : batch) e.set_count(3);  // each stands for 3 tap events
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
  }
  const uint64_t purged = (*spool)->stats().dropped;
  ASSERT_GT(purged, 0u);
  EXPECT_EQ((*drops)->Get(idflow::v1::DROP_CAUSE_SPOOL), 3 * purged);
}

// A purge of events the sender had already read (in flight to the
// collector) counts them only if they turn out lost: acked, they were
// stored and are not drops; declared as a gap after a reconnect, they are,
// also across a restart. Before, each purged in-flight event was counted at
// once, and stored + drops exceeded what was emitted.
TEST(SpoolTest, PurgedEventsInFlightAreCountedOnlyWhenLost) {
  for (const bool acked : {true, false}) {
    SCOPED_TRACE(acked ? "acked" : "declared lost after a restart");
    const std::string dir = TempDir();
    auto drops = DropCounterStore::Open(dir + "-drops", std::chrono::milliseconds(0));
    ASSERT_THAT(drops, IsOk());
    SpoolOptions o;
    o.dir = dir;
    o.segment_bytes = 1024;
    o.max_bytes = 4096;
    o.sync = false;
    o.drops = drops->get();
    auto spool = Spool::Open(o);
    ASSERT_THAT(spool, IsOk());
    for (int i = 0; i < 10; ++i) {
      auto batch = Events(2);
      for (auto& e : batch) e.set_count(3);
      ASSERT_THAT((*spool)->Append(&batch), IsOk());
    }
    // The sender reads seqs 1..8 (in flight); nothing is acked yet.
    auto read = (*spool)->Read(0, 8, 1 << 20);
    ASSERT_THAT(read, IsOk());
    ASSERT_EQ(read->events.size(), 8u);
    for (int i = 0; i < 100; ++i) {  // the spool fills: seqs 1.. are purged
      auto batch = Events(2);
      ASSERT_THAT((*spool)->Append(&batch), IsOk());
    }
    const uint64_t first_held = (*spool)->ReadAfter(0, 1, 1 << 20)->front().seq();
    ASSERT_GT(first_held, 21u);
    // Counted now: the purged events never read (9..first_held-1; up to 20
    // they weigh 3 each, later ones 1).
    const uint64_t not_read = 12 * 3 + (first_held - 21);
    EXPECT_EQ((*drops)->Get(idflow::v1::DROP_CAUSE_SPOOL), not_read);
    if (acked) {
      ASSERT_THAT((*spool)->Ack(8), IsOk());  // the collector stored them
      auto gap = (*spool)->Read(8, 100, 1 << 20);
      ASSERT_THAT(gap, IsOk());
      ASSERT_TRUE(gap->is_gap);
      (*spool)->GapDeclared(gap->gap.from, gap->gap.to);
      EXPECT_EQ((*drops)->Get(idflow::v1::DROP_CAUSE_SPOOL), not_read);
      continue;
    }
    spool->reset();  // a restart; the collector had none of them
    spool = Spool::Open(o);
    ASSERT_THAT(spool, IsOk());
    auto gap = (*spool)->Read(0, 100, 1 << 20);
    ASSERT_THAT(gap, IsOk());
    ASSERT_TRUE(gap->is_gap);
    EXPECT_EQ(gap->gap.from, 1u);
    EXPECT_EQ(gap->gap.to, first_held - 1);
    (*spool)->GapDeclared(gap->gap.from, gap->gap.to);
    EXPECT_EQ((*drops)->Get(idflow::v1::DROP_CAUSE_SPOOL), not_read + 8 * 3);
    (*spool)->GapDeclared(gap->gap.from, gap->gap.to);  // counted once
    EXPECT_EQ((*drops)->Get(idflow::v1::DROP_CAUSE_SPOOL), not_read + 8 * 3);
  }
}

TEST(SpoolTest, AckDeletesTheLastSegmentAndSeqsContinueAfterReopen) {
  SpoolOptions o;
  o.dir = TempDir();
  o.sync = false;
  {
    auto spool = Spool::Open(o);
    ASSERT_THAT(spool, IsOk());
    auto batch = Events(10);
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
    ASSERT_THAT((*spool)->Ack(10), IsOk());
    EXPECT_EQ((*spool)->stats().segments, 0u);
    EXPECT_EQ((*spool)->stats().bytes, 0u);
    for (const auto& e : std::filesystem::directory_iterator(o.dir)) {
      EXPECT_NE(e.path().filename().string().rfind("seg-", 0), 0u) << e.path();
    }
    auto more = Events(2);
    ASSERT_THAT((*spool)->Append(&more), IsOk());
    EXPECT_EQ(more[0].seq(), 11u);
    ASSERT_THAT((*spool)->Ack(12), IsOk());
  }
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  auto next = Events(1);
  ASSERT_THAT((*spool)->Append(&next), IsOk());
  EXPECT_EQ(next[0].seq(), 13u);
}

TEST(SpoolTest, LostRangesReadAsGapsAndSurviveReopen) {
  SpoolOptions o;
  o.dir = TempDir();
  o.sync = false;
  {
    auto spool = Spool::Open(o);
    ASSERT_THAT(spool, IsOk());
    auto batch = Events(10);
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
    ASSERT_THAT((*spool)->MarkLost(3, 5, idflow::v1::DROP_CAUSE_DEAD_LETTER), IsOk());
    auto head = (*spool)->Read(0, 100, 1 << 20);
    ASSERT_THAT(head, IsOk());
    ASSERT_FALSE(head->is_gap);
    ASSERT_EQ(head->events.size(), 2u);  // stops before the lost range
  }
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  auto gap = (*spool)->Read(2, 100, 1 << 20);
  ASSERT_THAT(gap, IsOk());
  ASSERT_TRUE(gap->is_gap);
  EXPECT_EQ(gap->gap.from, 3u);
  EXPECT_EQ(gap->gap.to, 5u);
  EXPECT_EQ(gap->gap.cause, idflow::v1::DROP_CAUSE_DEAD_LETTER);
  auto tail = (*spool)->Read(5, 100, 1 << 20);
  ASSERT_THAT(tail, IsOk());
  ASSERT_EQ(tail->events.size(), 5u);
  EXPECT_EQ(tail->events[0].seq(), 6u);
  // Acked past: forgotten.
  ASSERT_THAT((*spool)->Ack(6), IsOk());
  EXPECT_TRUE((*spool)->lost().empty());
}

TEST(SpoolTest, ReadSeeksIntoLargeSegments) {
  SpoolOptions o;
  o.dir = TempDir();
  o.sync = false;
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  for (int i = 0; i < 50; ++i) {
    auto batch = Events(7);
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
  }
  for (uint64_t after : {0u, 1u, 6u, 7u, 100u, 349u}) {
    auto r = (*spool)->Read(after, 10, 1 << 20);
    ASSERT_THAT(r, IsOk());
    ASSERT_FALSE(r->events.empty());
    EXPECT_EQ(r->events.front().seq(), after + 1);
    EXPECT_EQ(r->events.size(), std::min<uint64_t>(10, 350 - after));
  }
}

TEST(SpoolTest, GroupCommitSyncsOnceForManyAppendsOrEveryAppendWhenZero) {
  std::atomic<int> syncs{0};
  SpoolOptions o;
  o.dir = TempDir();
  o.io = SpoolIo::Posix();
  o.io.sync = [&](int) {
    ++syncs;
    return 0;
  };
  o.sync_interval = std::chrono::milliseconds(0);
  {
    auto spool = Spool::Open(o);
    ASSERT_THAT(spool, IsOk());
    for (int i = 0; i < 5; ++i) {
      auto b = Events(1);
      ASSERT_THAT((*spool)->Append(&b), IsOk());
    }
    EXPECT_EQ(syncs.load(), 5);
  }
  syncs = 0;
  o.sync_interval = std::chrono::hours(1);  // the background commit never fires here
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  for (int i = 0; i < 5; ++i) {
    auto b = Events(1);
    ASSERT_THAT((*spool)->Append(&b), IsOk());
  }
  EXPECT_EQ(syncs.load(), 0);
  ASSERT_THAT((*spool)->Sync(), IsOk());
  EXPECT_EQ(syncs.load(), 1);
  ASSERT_THAT((*spool)->Sync(), IsOk());  // nothing new: no second fdatasync
  EXPECT_EQ(syncs.load(), 1);
}

// The scenario of a tiny filesystem: fill it, back off without I/O, free by
// ack, recover. `fs_limit` > 0 simulates a filesystem of that size through
// the write layer (where no tmpfs can be mounted).
void FillFreeRecover(const std::string& dir, uint64_t fs_limit) {
  FakeClock clock;
  DropCounterStore* drops_ptr = nullptr;
  auto drops = DropCounterStore::Open(TempDir() + "/drops");  // off the tiny fs
  ASSERT_THAT(drops, IsOk());
  drops_ptr = drops->get();
  std::atomic<int> writes{0};
  SpoolOptions o;
  o.dir = dir;
  o.max_bytes = 64 << 20;  // larger than the filesystem: the disk fills first
  o.segment_bytes = 64 << 10;
  o.sync_interval = std::chrono::milliseconds(0);
  o.now = clock.Fn();
  o.drops = drops_ptr;
  o.io = SpoolIo::Posix();
  o.io.write = [&, dir, fs_limit](int fd, const void* buf, size_t n) -> ssize_t {
    ++writes;
    if (fs_limit > 0 && DiskBytes(dir) + n > fs_limit) {
      errno = ENOSPC;
      return -1;
    }
    return ::write(fd, buf, n);
  };
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  uint64_t appended = 0, failed = 0;
  int full_streak = 0;
  // Fill until the disk refuses twice in a row.
  for (int i = 0; i < 10000 && full_streak < 2; ++i) {
    clock.t += std::chrono::minutes(1);  // past any backoff
    auto batch = Events(64);
    appended += 64;
    absl::Status st = (*spool)->Append(&batch);
    if (st.ok()) {
      full_streak = 0;
      continue;
    }
    failed += 64;
    ++full_streak;
    EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
    EXPECT_EQ(batch[0].seq(), 0u);
    // Within the backoff: fails fast, without touching the disk.
    int before = writes.load();
    auto fast = Events(64);
    appended += 64;
    failed += 64;
    EXPECT_EQ((*spool)->Append(&fast).code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(writes.load(), before);
  }
  ASSERT_EQ(full_streak, 2) << "the filesystem never filled";
  EXPECT_TRUE((*spool)->stats().backing_off);
  // Backoff grows: after two failures it is 200 ms, so 150 ms is not enough
  // and 250 ms is (one more real attempt, which fails again).
  {
    clock.t += std::chrono::milliseconds(150);
    auto c = Events(64);
    appended += 64;
    failed += 64;
    int before = writes.load();
    EXPECT_EQ((*spool)->Append(&c).code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(writes.load(), before);
    clock.t += std::chrono::milliseconds(100);
    auto d = Events(64);
    appended += 64;
    failed += 64;
    EXPECT_EQ((*spool)->Append(&d).code(), absl::StatusCode::kResourceExhausted);
    EXPECT_GT(writes.load(), before);
  }
  // The collector acks what was stored: the spool frees its segments.
  uint64_t stored = (*spool)->last_seq();
  ASSERT_THAT((*spool)->Ack(stored), IsOk());
  EXPECT_LE((*spool)->stats().bytes, o.segment_bytes);
  // Space is back: after the backoff, appends succeed by themselves.
  clock.t += std::chrono::minutes(1);
  uint64_t recovered = 0;
  for (int i = 0; i < 5; ++i) {
    auto batch = Events(64);
    appended += 64;
    ASSERT_THAT((*spool)->Append(&batch), IsOk());
    recovered += 64;
  }
  EXPECT_FALSE((*spool)->stats().backing_off);
  auto held = (*spool)->ReadAfter(stored, 100000, 64 << 20);
  ASSERT_THAT(held, IsOk());
  EXPECT_EQ(held->size(), recovered);
  // Every event: stored (acked) or held, or counted.
  const uint64_t counted =
      (*drops)->Get(idflow::v1::DROP_CAUSE_DISK) + (*drops)->Get(idflow::v1::DROP_CAUSE_SPOOL);
  EXPECT_EQ((*spool)->stats().disk_dropped, failed);
  EXPECT_EQ(stored + held->size() + counted, appended);
}

TEST(SpoolTest, TinyFilesystemFillFreeRecover) {
  std::string mnt = TempDir();
  bool mounted = ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m") == 0;
  if (!mounted) {
    std::cerr << "tmpfs mount failed (" << std::strerror(errno)
              << "): simulating a 2 MiB filesystem in the write layer\n";
  }
  FillFreeRecover(mnt + "/spool", mounted ? 0 : (2 << 20));
  if (mounted) ::umount2(mnt.c_str(), MNT_DETACH);
}

TEST(SpoolTest, SimulatedTinyFilesystemFillFreeRecover) {
  // The fault-injecting write layer, always exercised (CI may not mount).
  FillFreeRecover(TempDir() + "/spool", 2 << 20);
}

TEST(SpoolTest, IoErrorsAreReportedCountedAndRecovered) {
  FakeClock clock;
  bool fail = false;
  SpoolOptions o;
  o.dir = TempDir();
  o.now = clock.Fn();
  o.sync_interval = std::chrono::milliseconds(0);
  o.io = SpoolIo::Posix();
  o.io.write = [&](int fd, const void* buf, size_t n) -> ssize_t {
    if (fail) {
      // Half a write, then EIO: the partial record must not survive.
      if (n > 4) (void)!::write(fd, buf, n / 2);
      errno = EIO;
      return fail && n > 4 ? static_cast<ssize_t>(n / 2) : -1;
    }
    return ::write(fd, buf, n);
  };
  auto spool = Spool::Open(o);
  ASSERT_THAT(spool, IsOk());
  auto a = Events(3);
  ASSERT_THAT((*spool)->Append(&a), IsOk());
  fail = true;
  auto b = Events(3);
  absl::Status st = (*spool)->Append(&b);
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << st;
  fail = false;
  clock.t += std::chrono::minutes(1);
  auto c = Events(2);
  ASSERT_THAT((*spool)->Append(&c), IsOk());
  EXPECT_EQ(c[0].seq(), 4u);  // the failed batch got no seqs
  auto all = (*spool)->ReadAfter(0, 100, 1 << 20);
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(all->size(), 5u);
  EXPECT_SEQ_CONTIGUOUS(*all);
  EXPECT_EQ((*spool)->stats().disk_dropped, 3u);
}

TEST(SpoolTest, UnwritableDirectoryIsAnError) {
  SpoolOptions o;
  o.dir = "/proc/idflow-no-such-dir/spool";
  EXPECT_FALSE(Spool::Open(o).ok());
}

}  // namespace
}  // namespace idflow::agent

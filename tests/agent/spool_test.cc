#include "agent/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/spool-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
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
  ASSERT_THAT((*spool)->Ack(60), IsOk());
  EXPECT_LT((*spool)->stats().segments, segments_before);
  EXPECT_EQ((*spool)->stats().segments, 1u);
}

TEST(SpoolTest, UnwritableDirectoryIsAnError) {
  SpoolOptions o;
  o.dir = "/proc/idflow-no-such-dir/spool";
  EXPECT_FALSE(Spool::Open(o).ok());
}

}  // namespace
}  // namespace idflow::agent

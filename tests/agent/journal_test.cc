// The ingress journal: replay after a kill -9 (simulated by reading the file
// while the writer is still open, never closed), flush markers, torn tails.
#include "agent/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/agent/test_util.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;

std::string TempPath() { return MakeTempDir("journal") + "/ingress.journal"; }

idflow::v1::Event Ev(int i) {
  idflow::v1::Event e;
  e.mutable_destination()->set_port(static_cast<uint32_t>(i));
  return e;
}

std::vector<int> Ports(const std::vector<idflow::v1::Event>& v) {
  std::vector<int> out;
  for (const auto& e : v) out.push_back(static_cast<int>(e.destination().port()));
  return out;
}

TEST(JournalTest, ReplaysWhatWasNeverFlushedAfterACrash) {
  const std::string path = TempPath();
  auto writer = Journal::Open(path);
  ASSERT_THAT(writer, IsOk());
  for (int i = 1; i <= 3; ++i) ASSERT_THAT((*writer)->Append(Ev(i)), IsOk());
  // "kill -9": the writer is never closed; a new process opens the file.
  auto reader = Journal::Open(path);
  ASSERT_THAT(reader, IsOk());
  auto events = (*reader)->Replay(/*spool_last_seq=*/0);
  ASSERT_THAT(events, IsOk());
  EXPECT_EQ(Ports(*events), (std::vector<int>{1, 2, 3}));
}

TEST(JournalTest, FlushMarkerDecidesWhetherTheSpoolAlreadyHasTheEvents) {
  const std::string path = TempPath();
  auto j = Journal::Open(path);
  ASSERT_THAT(j, IsOk());
  ASSERT_THAT((*j)->Append(Ev(1)), IsOk());
  ASSERT_THAT((*j)->Append(Ev(2)), IsOk());
  ASSERT_THAT((*j)->MarkFlush(11, 12), IsOk());  // would be seqs 11..12
  ASSERT_THAT((*j)->Append(Ev(3)), IsOk());
  auto reader = Journal::Open(path);
  ASSERT_THAT(reader, IsOk());
  // Crash after the spool append, before Reset: only the later event is new.
  auto after_append = (*reader)->Replay(12);
  ASSERT_THAT(after_append, IsOk());
  EXPECT_EQ(Ports(*after_append), (std::vector<int>{3}));
  // Crash before the spool append: all of them.
  auto before_append = (*reader)->Replay(10);
  ASSERT_THAT(before_append, IsOk());
  EXPECT_EQ(Ports(*before_append), (std::vector<int>{1, 2, 3}));
}

TEST(JournalTest, AnAppendCutShortIsReportedSoTheSpoolDropsItsPrefix) {
  const std::string path = TempPath();
  auto j = Journal::Open(path);
  ASSERT_THAT(j, IsOk());
  ASSERT_THAT((*j)->Append(Ev(1)), IsOk());
  ASSERT_THAT((*j)->Append(Ev(2)), IsOk());
  ASSERT_THAT((*j)->Append(Ev(3)), IsOk());
  ASSERT_THAT((*j)->MarkFlush(11, 13), IsOk());
  // The spool got 11 only: the flush is torn at 11, all three replay.
  auto torn = (*j)->ReplayAll(11);
  ASSERT_THAT(torn, IsOk());
  EXPECT_EQ(torn->torn_from, 11u);
  EXPECT_EQ(Ports(torn->events), (std::vector<int>{1, 2, 3}));
  // Nothing of it, or all of it: nothing torn.
  EXPECT_EQ((*j)->ReplayAll(10)->torn_from, 0u);
  EXPECT_EQ((*j)->ReplayAll(13)->torn_from, 0u);
  EXPECT_TRUE((*j)->ReplayAll(13)->events.empty());
}

TEST(JournalTest, ResetEmptiesAndTornTailIsIgnored) {
  const std::string path = TempPath();
  auto j = Journal::Open(path);
  ASSERT_THAT(j, IsOk());
  ASSERT_THAT((*j)->Append(Ev(1)), IsOk());
  ASSERT_THAT((*j)->Reset(), IsOk());
  EXPECT_EQ((*j)->bytes(), 0u);
  ASSERT_THAT((*j)->Append(Ev(2)), IsOk());
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "\x20\x00\x00\x00torn", 8), 8);  // half a record
  ::close(fd);
  auto reader = Journal::Open(path);
  ASSERT_THAT(reader, IsOk());
  auto events = (*reader)->Replay(0);
  ASSERT_THAT(events, IsOk());
  EXPECT_EQ(Ports(*events), (std::vector<int>{2}));
}

}  // namespace
}  // namespace idflow::agent

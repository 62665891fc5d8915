// The Ingest wire contract against an independent client: a plain gRPC
// stream that sends whatever a test wants (gaps, repeats, out-of-range seqs,
// two streams for one agent, spoofed ids, oversized fields), against an
// in-process collector on a real SQLite file.
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "collector/collector.h"
#include "common/digest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idflow/v1/ingest.grpc.pb.h"
#include "idflow/v1/query.grpc.pb.h"
#include "tests/collector/ingest_messages.h"
#include "tests/testing/status_matchers.h"

namespace idflow {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::v1::AgentMessage;
using ::idflow::v1::CollectorMessage;

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/ingest-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
}

idflow::v1::Event Event(const std::string& agent, uint64_t seq) {
  return ::idflow::testing::IngestEvent(agent, seq);
}
AgentMessage Batch(const std::string& agent, uint64_t first, uint64_t n) {
  return ::idflow::testing::IngestBatch(agent, first, n);
}
AgentMessage Hello(const std::string& agent) { return ::idflow::testing::IngestHello(agent); }

// A synchronous client stream. Reads happen on demand, so tests can assert
// exactly which acks arrived before the stream ended.
class Client {
 public:
  Client(const std::string& address, const std::string& token = "") {
    stub_ = idflow::v1::Ingest::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    if (!token.empty()) ctx_.AddMetadata("authorization", "Bearer " + token);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stream_ = stub_->Stream(&ctx_);
  }
  bool Send(const AgentMessage& m) { return stream_->Write(m); }
  // Next message; false when the stream ended.
  bool Read(CollectorMessage* m) { return stream_->Read(m); }
  uint64_t HelloAck(const std::string& agent) {
    Send(Hello(agent));
    CollectorMessage m;
    if (!Read(&m) || !m.has_hello_ack()) return UINT64_MAX;
    return m.hello_ack().stored_up_to();
  }
  // Reads until the stream ends; returns the status and the highest ack.
  grpc::Status Drain(uint64_t* max_ack, std::vector<CollectorMessage>* seen = nullptr) {
    CollectorMessage m;
    while (Read(&m)) {
      if (m.has_ack()) *max_ack = std::max(*max_ack, m.ack().up_to());
      if (seen) seen->push_back(m);
    }
    return stream_->Finish();
  }
  grpc::Status Close(uint64_t* max_ack) {
    stream_->WritesDone();
    return Drain(max_ack);
  }

 private:
  std::unique_ptr<idflow::v1::Ingest::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<AgentMessage, CollectorMessage>> stream_;
};

class IngestProtocolTest : public ::testing::Test {
 protected:
  void StartCollector(collector::CollectorOptions o = {}) {
    if (dir_.empty()) dir_ = TempDir();
    o.listen = "127.0.0.1:0";
    o.store_url = "sqlite:" + dir_ + "/idflow.db";
    o.policies_dir = std::string(IDFLOW_SOURCE_DIR) + "/policies";
    auto c = collector::Collector::Start(o);
    ASSERT_THAT(c, IsOk());
    collector_ = std::move(*c);
  }
  void SetUp() override { StartCollector(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(collector_->grpc_port()); }
  uint64_t Stored(const std::string& agent) {
    store::VerdictFilter f;
    f.agent_id = agent;
    auto n = collector_->store().CountEvents(f);
    return n.ok() ? *n : UINT64_MAX;
  }
  uint64_t LastSeq(const std::string& agent) {
    auto n = collector_->store().LastSeq(agent);
    return n.ok() ? *n : UINT64_MAX;
  }

  std::string dir_;
  std::unique_ptr<collector::Collector> collector_;
};

TEST_F(IngestProtocolTest, ContiguousBatchesAreAckedAfterTheirCommit) {
  Client c(address());
  ASSERT_EQ(c.HelloAck("a1"), 0u);
  ASSERT_TRUE(c.Send(Batch("a1", 1, 10)));
  CollectorMessage m;
  ASSERT_TRUE(c.Read(&m));
  ASSERT_TRUE(m.has_ack());
  EXPECT_EQ(m.ack().up_to(), 10u);
  // The ack came after the commit: the rows are there when it arrives.
  EXPECT_EQ(Stored("a1"), 10u);
  uint64_t ack = 0;
  EXPECT_TRUE(c.Close(&ack).ok());
  EXPECT_EQ(collector_->counters().events.load(), 10u);
}

TEST_F(IngestProtocolTest, AGapIsRefusedAndNeverAcked) {
  Client c(address());
  ASSERT_EQ(c.HelloAck("a1"), 0u);
  ASSERT_TRUE(c.Send(Batch("a1", 1, 10)));
  c.Send(Batch("a1", 20, 11));
  uint64_t ack = 0;
  grpc::Status st = c.Drain(&ack);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_EQ(ack, 10u);
  EXPECT_EQ(Stored("a1"), 10u);
  EXPECT_EQ(LastSeq("a1"), 10u);
}

TEST_F(IngestProtocolTest, BackwardsAndRepeatedSeqsAreRefused) {
  {
    Client c(address());
    ASSERT_EQ(c.HelloAck("a1"), 0u);
    c.Send(Batch("a1", 1, 10));
    c.Send(Batch("a1", 5, 2));
    uint64_t ack = 0;
    EXPECT_EQ(c.Drain(&ack).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(ack, 10u);
  }
  // A new stream must start after stored_up_to, not from 1 again.
  Client c(address());
  ASSERT_EQ(c.HelloAck("a1"), 10u);
  c.Send(Batch("a1", 1, 10));
  uint64_t ack = 0;
  EXPECT_EQ(c.Drain(&ack).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ack, 0u);
  EXPECT_EQ(Stored("a1"), 10u);
  EXPECT_EQ(collector_->counters().events.load(), 10u) << "metrics count stored events once";
}

TEST_F(IngestProtocolTest, SeqZeroAndSeqsFrom2To63AreOutOfRange) {
  for (uint64_t bad : {uint64_t{0}, uint64_t{1} << 63, UINT64_MAX}) {
    Client c(address());
    uint64_t stored = c.HelloAck("a1");
    AgentMessage m;
    *m.mutable_batch()->add_events() = Event("a1", bad);
    c.Send(m);
    uint64_t ack = 0;
    EXPECT_EQ(c.Drain(&ack).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(ack, 0u) << bad;
    EXPECT_EQ(LastSeq("a1"), stored) << bad;
  }
  EXPECT_EQ(Stored("a1"), 0u);
}

TEST_F(IngestProtocolTest, AMalformedEventIsRejectedWithItsRangeAndNotRetryable) {
  Client c(address());
  ASSERT_EQ(c.HelloAck("a1"), 0u);
  c.Send(Batch("a1", 1, 3));
  AgentMessage bad = Batch("a1", 4, 3);
  bad.mutable_batch()->mutable_events(1)->clear_identifier();  // neither identifier nor cookie
  c.Send(bad);
  uint64_t ack = 0;
  std::vector<CollectorMessage> seen;
  grpc::Status st = c.Drain(&ack, &seen);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ack, 3u);
  bool rejected = false;
  for (const auto& m : seen) {
    if (m.has_reject()) {
      rejected = true;
      EXPECT_EQ(m.reject().from_seq(), 4u);
      EXPECT_EQ(m.reject().to_seq(), 6u);
    }
  }
  EXPECT_TRUE(rejected);
  EXPECT_EQ(Stored("a1"), 3u);
}

TEST_F(IngestProtocolTest, DeclaredGapsMoveStoredUpToAndAreCounted) {
  Client c(address());
  ASSERT_EQ(c.HelloAck("a1"), 0u);
  c.Send(Batch("a1", 1, 5));
  AgentMessage gap;
  gap.mutable_gap()->set_from_seq(6);
  gap.mutable_gap()->set_to_seq(105);
  gap.mutable_gap()->set_cause(idflow::v1::DROP_CAUSE_SPOOL);
  c.Send(gap);
  c.Send(Batch("a1", 106, 5));
  uint64_t ack = 0;
  EXPECT_TRUE(c.Close(&ack).ok());
  EXPECT_EQ(ack, 110u);
  EXPECT_EQ(Stored("a1"), 10u);
  EXPECT_EQ(LastSeq("a1"), 110u);
  auto agents = collector_->store().ListAgents("", 0, 0);
  ASSERT_THAT(agents, IsOk());
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].gap_events, 100u);
  EXPECT_EQ((*agents)[0].stored_up_to, 110u);
  // stored + declared lost == produced.
  EXPECT_EQ((*agents)[0].events_stored + (*agents)[0].gap_events, 110u);
}

TEST_F(IngestProtocolTest, TwoStreamsForOneAgentNeverAckWhatWasNotStored) {
  constexpr uint64_t kTotal = 1000;
  std::atomic<uint64_t> acks[2] = {0, 0};
  std::atomic<int> aborted{0};
  auto run = [&](int i) {
    Client c(address());
    uint64_t from = c.HelloAck("twin") + 1;
    for (uint64_t s = from; s <= kTotal; s += 50) {
      if (!c.Send(Batch("twin", s, std::min<uint64_t>(50, kTotal - s + 1)))) break;
    }
    uint64_t ack = 0;
    grpc::Status st = c.Close(&ack);
    acks[i] = ack;
    if (st.error_code() == grpc::StatusCode::ABORTED ||
        st.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      aborted++;
    }
  };
  std::thread t0(run, 0), t1(run, 1);
  t0.join();
  t1.join();
  uint64_t last = LastSeq("twin");
  // Every ack names only what is stored, contiguously from 1.
  EXPECT_LE(acks[0].load(), last);
  EXPECT_LE(acks[1].load(), last);
  EXPECT_EQ(Stored("twin"), last);
  auto events = collector_->store().QueryEvents([] {
    store::VerdictFilter f;
    f.agent_id = "twin";
    f.limit = 0;
    return f;
  }());
  ASSERT_THAT(events, IsOk());
  std::set<uint64_t> seqs;
  for (const auto& e : *events) EXPECT_TRUE(seqs.insert(e.seq).second) << e.seq;
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), last);
  EXPECT_EQ(seqs.size(), last);
  // A newer stream continues where the store stands.
  Client c(address());
  uint64_t from = c.HelloAck("twin");
  EXPECT_EQ(from, last);
  if (from < kTotal) c.Send(Batch("twin", from + 1, kTotal - from));
  uint64_t ack = 0;
  EXPECT_TRUE(c.Close(&ack).ok());
  EXPECT_EQ(Stored("twin"), kTotal);
}

TEST_F(IngestProtocolTest, ANewerStreamSupersedesTheOlder) {
  Client old_stream(address());
  ASSERT_EQ(old_stream.HelloAck("a1"), 0u);
  Client newer(address());
  ASSERT_EQ(newer.HelloAck("a1"), 0u);
  old_stream.Send(Batch("a1", 1, 5));
  uint64_t ack = 0;
  EXPECT_EQ(old_stream.Drain(&ack).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ack, 0u);
  newer.Send(Batch("a1", 1, 5));
  EXPECT_TRUE(newer.Close(&ack).ok());
  EXPECT_EQ(ack, 5u);
}

// 1 MiB fields, as an attacker sent them; 64 KiB (still 16x every limit)
// under ThreadSanitizer, where copying megabytes through gRPC takes minutes.
#if defined(__SANITIZE_THREAD__)
constexpr size_t kBig = 64 << 10;
#else
constexpr size_t kBig = 1 << 20;
#endif

TEST_F(IngestProtocolTest, OversizedFieldsAreCutAndQueriesStillWork) {
  Client c(address());
  ASSERT_EQ(c.HelloAck("a1"), 0u);
  for (uint64_t s = 1; s <= 3; ++s) {
    AgentMessage m = Batch("a1", s, 1);
    auto* e = m.mutable_batch()->mutable_events(0);
    e->mutable_origin()->mutable_call_chain(0)->set_path("/x/" + std::string(kBig, 'm'));
    e->mutable_destination()->set_hostname(std::string(kBig, 'h') + std::to_string(s));
    e->mutable_identifier()->set_snippet(std::string(kBig, 's'));
    ASSERT_TRUE(c.Send(m));
  }
  uint64_t ack = 0;
  EXPECT_TRUE(c.Close(&ack).ok());
  EXPECT_EQ(ack, 3u);
  auto stub = idflow::v1::Query::NewStub(
      grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  idflow::v1::ListVerdictsRequest req;
  idflow::v1::ListVerdictsResponse resp;
  grpc::Status st = stub->ListVerdicts(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_GE(resp.verdicts_size(), 1);
  for (const auto& v : resp.verdicts()) {
    EXPECT_LE(v.module().size(), 4096u);
    EXPECT_LE(v.destination().size(), 253u);
  }
  EXPECT_GE(collector_->counters().fields_truncated.load(), 9u);
}

TEST_F(IngestProtocolTest, ListingsArePaginatedUnderTheMessageLimit) {
  Client c(address());
  ASSERT_EQ(c.HelloAck("a1"), 0u);
  // 1,200 verdict groups, each with a 3 KiB call chain entry: pages of 1,000
  // would be 3.6 MB, so the byte cap cuts them. Under ThreadSanitizer (100x
  // slower) 300 groups in pages of 100 keep the test within its time.
#if defined(__SANITIZE_THREAD__)
  constexpr int kGroups = 300;
  constexpr uint32_t kPage = 100;
#else
  constexpr int kGroups = 1200;
  constexpr uint32_t kPage = 1000;
#endif
  for (int s = 1; s <= kGroups; s += 100) {
    AgentMessage m = Batch("a1", s, 100);
    for (int i = 0; i < 100; ++i) {
      auto* e = m.mutable_batch()->mutable_events(i);
      e->mutable_destination()->set_hostname(absl::StrCat("h", s + i, ".example"));
      e->mutable_origin()->add_call_chain()->set_path(std::string(3000, 'p'));
    }
    ASSERT_TRUE(c.Send(m));
  }
  uint64_t ack = 0;
  ASSERT_TRUE(c.Close(&ack).ok());
  ASSERT_EQ(ack, static_cast<uint64_t>(kGroups));
  auto stub = idflow::v1::Query::NewStub(
      grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
  std::set<std::string> seen;
  idflow::v1::ListVerdictsRequest req;
  req.set_page_size(kPage);
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    idflow::v1::ListVerdictsResponse resp;
    grpc::Status st = stub->ListVerdicts(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_LT(resp.ByteSizeLong(), 4u << 20);
    for (const auto& v : resp.verdicts()) EXPECT_TRUE(seen.insert(v.destination()).second);
    req.set_page_token(resp.next_page_token());
    ++pages;
  } while (!req.page_token().empty() && pages < 100);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kGroups));
  EXPECT_GE(pages, 2);
  grpc::ClientContext ctx;
  idflow::v1::ListVerdictsResponse resp;
  req.set_page_token("garbage");
  EXPECT_EQ(stub->ListVerdicts(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(IngestProtocolTest, DropCountersReachTheAgentsListAndNeverGoBack) {
  Client c(address());
  AgentMessage hello = Hello("a1");
  hello.mutable_hello()->mutable_drops()->set_tap_dropped(7);
  c.Send(hello);
  CollectorMessage m;
  ASSERT_TRUE(c.Read(&m));
  AgentMessage drops;
  drops.mutable_drops()->set_tap_dropped(5);  // late, older report
  drops.mutable_drops()->set_disk_dropped(3);
  c.Send(drops);
  uint64_t ack = 0;
  EXPECT_TRUE(c.Close(&ack).ok());
  auto agents = collector_->store().ListAgents("dev-1", 0, 0);
  ASSERT_THAT(agents, IsOk());
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].drops.tap, 7u);
  EXPECT_EQ((*agents)[0].drops.disk, 3u);
  EXPECT_THAT(collector_->MetricsText(),
              ::testing::HasSubstr("idflow_agent_dropped_events{agent=\"a1\",device=\"dev-1\","
                                   "cause=\"tap\"} 7"));
}

// A hello's version is kept with the agent and shown, escaped, on /metrics.
TEST_F(IngestProtocolTest, HelloVersionReachesTheAgentsListAndMetrics) {
  Client c(address());
  AgentMessage hello = Hello("a1");
  hello.mutable_hello()->set_agent_version("0.9.1 (commit \"x\", Debug)");
  c.Send(hello);
  CollectorMessage m;
  ASSERT_TRUE(c.Read(&m));
  uint64_t ack = 0;
  EXPECT_TRUE(c.Close(&ack).ok());
  auto agents = collector_->store().ListAgents("", 0, 0);
  ASSERT_THAT(agents, IsOk());
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].agent_version, "0.9.1 (commit \"x\", Debug)");
  EXPECT_THAT(collector_->MetricsText(),
              ::testing::HasSubstr("idflow_agent_info{agent=\"a1\",device=\"dev-1\","
                                   "version=\"0.9.1 (commit \\\"x\\\", Debug)\"} 1\n"));
}

TEST_F(IngestProtocolTest, NoAckWhileTheStoreCannotCommit) {
  // Another connection holds the write lock: the commit times out (busy),
  // the stream ends UNAVAILABLE (retryable), and no ack was ever sent.
  Client c(address());
  ASSERT_EQ(c.HelloAck("a1"), 0u);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/idflow.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  c.Send(Batch("a1", 1, 5));
  uint64_t ack = 0;
  grpc::Status st = c.Drain(&ack);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_EQ(ack, 0u);
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  store::VerdictFilter f;
  f.agent_id = "a1";
  auto stored = collector_->store().CountEvents(f);
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(*stored, 0u);
  EXPECT_EQ(collector_->counters().events.load(), 0u);
}

class IngestAuthTest : public IngestProtocolTest {
 protected:
  void SetUp() override {}
};

TEST_F(IngestAuthTest, PerAgentTokensDecideWhoMaySpeakForAnAgent) {
  dir_ = TempDir();
  {
    FILE* f = std::fopen((dir_ + "/agents").c_str(), "w");
    std::fprintf(f, "# agent tokens\nreal-agent sha256:%s\nother sha256:%s\n",
                 Sha256Hex("real-secret").c_str(), Sha256Hex("other-secret").c_str());
    std::fclose(f);
  }
  collector::CollectorOptions o;
  o.agent_tokens_file = dir_ + "/agents";
  StartCollector(o);
  auto attempt = [&](const std::string& token, const std::string& agent) {
    Client c(address(), token);
    c.Send(Hello(agent));
    c.Send(Batch(agent, 1'000'000, 1));
    uint64_t ack = 0;
    return c.Drain(&ack).error_code();
  };
  EXPECT_EQ(attempt("", "real-agent"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(attempt("other-secret", "real-agent"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(attempt("real-secret", "unknown-agent"), grpc::StatusCode::UNAUTHENTICATED);
  // Even the right token cannot move stored_up_to past a hole.
  EXPECT_EQ(attempt("real-secret", "real-agent"), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(LastSeq("real-agent"), 0u);
  Client c(address(), "real-secret");
  ASSERT_EQ(c.HelloAck("real-agent"), 0u);
  c.Send(Batch("real-agent", 1, 2));
  uint64_t ack = 0;
  EXPECT_TRUE(c.Close(&ack).ok());
  EXPECT_EQ(ack, 2u);
  EXPECT_GE(collector_->counters().unauthenticated.load(), 3u);
}

TEST_F(IngestAuthTest, TheSharedTokenCoversIngestToo) {
  collector::CollectorOptions o;
  o.auth_token = "shared-secret";
  StartCollector(o);
  {
    Client c(address());
    c.Send(Hello("a1"));
    uint64_t ack = 0;
    EXPECT_EQ(c.Drain(&ack).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  Client c(address(), "shared-secret");
  EXPECT_EQ(c.HelloAck("a1"), 0u);
}

TEST_F(IngestAuthTest, NonLoopbackListenWithoutCredentialsIsRefused) {
  dir_ = TempDir();
  collector::CollectorOptions o;
  o.listen = "0.0.0.0:0";
  o.store_url = "sqlite:" + dir_ + "/idflow.db";
  o.policies_dir = std::string(IDFLOW_SOURCE_DIR) + "/policies";
  auto c = collector::Collector::Start(o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), ::testing::HasSubstr("without credentials"));
  o.allow_unauthenticated_ingest = true;
  EXPECT_THAT(collector::Collector::Start(o), IsOk());
}

TEST(AgentIdTest, BadAgentIdsAreRefused) {
  std::string dir = TempDir();
  collector::CollectorOptions o;
  o.listen = "127.0.0.1:0";
  o.store_url = "sqlite:" + dir + "/idflow.db";
  o.policies_dir = std::string(IDFLOW_SOURCE_DIR) + "/policies";
  auto col = collector::Collector::Start(o);
  ASSERT_THAT(col, IsOk());
  for (const std::string& id :
       {std::string(), std::string(200, 'a'), std::string("a b"), std::string("a\nb")}) {
    Client c("127.0.0.1:" + std::to_string((*col)->grpc_port()));
    c.Send(Hello(id));
    uint64_t ack = 0;
    EXPECT_EQ(c.Drain(&ack).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << id;
  }
}

}  // namespace
}  // namespace idflow

// The collector's ingest pipeline against a recording store: batches in
// flight per stream, acks only after their commit and in order, group commit
// across streams, back-pressure at the in-flight bound, commit failures and
// fenced (superseded) writes. The recording store wraps a real SQLite file;
// it can hold every Write (so that a test decides when commits happen), fail
// them, and play another collector claiming an agent.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "collector/collector.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idflow/v1/ingest.grpc.pb.h"
#include "tests/collector/ingest_messages.h"
#include "tests/testing/status_matchers.h"

namespace idflow {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::v1::AgentMessage;
using ::idflow::v1::CollectorMessage;
using std::chrono::steady_clock;

constexpr auto kDeadline = std::chrono::seconds(30);

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/pipeline-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
}

// Polls `done` until it holds or the deadline passes.
bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline = kDeadline) {
  const auto end = steady_clock::now() + deadline;
  while (steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

using ::idflow::testing::IngestBatch;
using ::idflow::testing::IngestHello;

// Delegates to a real store; records each Write (which agent, which first
// seq, per call), can hold Writes until released, fail them whole, and fence
// writes with claims of its own (so a test can claim as another collector).
class RecordingStore : public store::Store {
 public:
  struct Op {
    std::string agent_id;
    uint64_t first = 0;
  };

  explicit RecordingStore(std::unique_ptr<store::Store> inner) : inner_(std::move(inner)) {}

  void Hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void Release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  // Every later Write with an op of `agent` from `seq` on fails whole.
  void FailWritesFrom(const std::string& agent, uint64_t seq) {
    std::lock_guard lock(mu_);
    fail_agent_ = agent;
    fail_from_ = seq;
  }
  void EnableFencing() {
    std::lock_guard lock(mu_);
    fencing_ = true;
  }
  int writes_entered() {
    std::lock_guard lock(mu_);
    return entered_;
  }
  std::vector<std::vector<Op>> writes() {
    std::lock_guard lock(mu_);
    return writes_;
  }
  // Highest seq committed for `agent` (what an ack may name at most).
  uint64_t committed(const std::string& agent) {
    std::lock_guard lock(mu_);
    return committed_[agent];
  }

  absl::StatusOr<std::vector<absl::Status>> Write(const std::vector<store::WriteOp>& ops) override {
    std::unique_lock lock(mu_);
    std::vector<Op> call;
    bool fail = false;
    for (const auto& op : ops) {
      uint64_t first = op.events.empty() ? op.gap_from : op.events.front().seq;
      call.push_back({op.agent_id, first});
      uint64_t last = op.events.empty() ? op.gap_to : op.events.back().seq;
      if (op.agent_id == fail_agent_ && last >= fail_from_) fail = true;
    }
    writes_.push_back(call);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !held_; });
    if (fail) return absl::UnavailableError("injected: disk unplugged");
    std::vector<absl::Status> out(ops.size());
    std::vector<store::WriteOp> pass;
    std::vector<size_t> at;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (fencing_ && ops[i].generation != generation_[ops[i].agent_id]) {
        out[i] = absl::AbortedError("fenced out by a newer claim");
        continue;
      }
      pass.push_back(ops[i]);
      pass.back().generation = 0;  // the claims are this wrapper's
      at.push_back(i);
    }
    lock.unlock();
    ASSIGN_OR_RETURN(std::vector<absl::Status> inner, inner_->Write(pass));
    lock.lock();
    for (size_t k = 0; k < at.size(); ++k) {
      out[at[k]] = inner[k];
      const store::WriteOp& op = ops[at[k]];
      uint64_t last = op.events.empty() ? op.gap_to : op.events.back().seq;
      if (inner[k].ok()) committed_[op.agent_id] = std::max(committed_[op.agent_id], last);
    }
    return out;
  }

  absl::StatusOr<uint64_t> ClaimStream(const std::string& agent_id, const std::string&) override {
    std::lock_guard lock(mu_);
    return fencing_ ? ++generation_[agent_id] : 0;
  }
  absl::StatusOr<uint64_t> StreamGeneration(const std::string& agent_id) override {
    std::lock_guard lock(mu_);
    return generation_[agent_id];
  }

  absl::StatusOr<uint64_t> Append(const std::vector<store::EventRecord>& e) override {
    return inner_->Append(e);
  }
  absl::Status AppendContiguous(const std::string& agent_id,
                                const std::vector<store::EventRecord>& e) override {
    return inner_->AppendContiguous(agent_id, e);
  }
  absl::Status RecordGap(const std::string& agent_id, uint64_t from, uint64_t to,
                         const std::string& cause) override {
    return inner_->RecordGap(agent_id, from, to, cause);
  }
  absl::StatusOr<uint64_t> LastSeq(const std::string& agent_id) override {
    return inner_->LastSeq(agent_id);
  }
  absl::Status UpsertAgent(const store::AgentRecord& a) override { return inner_->UpsertAgent(a); }
  absl::Status UpdateDrops(const std::string& agent_id, const store::DropCounts& d,
                           int64_t seen) override {
    return inner_->UpdateDrops(agent_id, d, seen);
  }
  absl::StatusOr<std::vector<store::AgentRecord>> ListAgents(const std::string& device,
                                                             size_t limit, size_t offset) override {
    return inner_->ListAgents(device, limit, offset);
  }
  absl::StatusOr<std::vector<store::VerdictGroup>> QueryVerdicts(
      const store::VerdictFilter& f) override {
    return inner_->QueryVerdicts(f);
  }
  absl::StatusOr<std::vector<store::EventRecord>> QueryEvents(
      const store::VerdictFilter& f) override {
    return inner_->QueryEvents(f);
  }
  absl::StatusOr<uint64_t> CountEvents(const store::VerdictFilter& f) override {
    return inner_->CountEvents(f);
  }

 private:
  std::unique_ptr<store::Store> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  bool fencing_ = false;
  std::string fail_agent_;
  uint64_t fail_from_ = UINT64_MAX;
  int entered_ = 0;
  std::vector<std::vector<Op>> writes_;
  std::map<std::string, uint64_t> committed_;
  std::map<std::string, uint64_t> generation_;
};

// A client stream whose replies are read on a thread of their own, so a test
// can write while the collector holds acks back. Each ack is checked against
// what the store had committed when it arrived.
class Client {
 public:
  Client(const std::string& address, RecordingStore* store, const std::string& agent)
      : store_(store), agent_(agent) {
    stub_ = idflow::v1::Ingest::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    ctx_.set_deadline(std::chrono::system_clock::now() + kDeadline);
    stream_ = stub_->Stream(&ctx_);
    reader_ = std::thread([this] { ReadAll(); });
  }
  ~Client() {
    ctx_.TryCancel();
    reader_.join();
  }

  bool Send(const AgentMessage& m) { return stream_->Write(m); }
  void CloseWrites() { stream_->WritesDone(); }

  // Waits for the stream's end; its status.
  grpc::Status Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return ended_; });
    return status_;
  }
  bool HelloAcked() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [this] { return hello_acked_ || ended_; }) && hello_acked_;
  }
  bool WaitAck(uint64_t up_to) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] { return max_ack() >= up_to || ended_; }) &&
           max_ack() >= up_to;
  }
  std::vector<uint64_t> acks() {
    std::lock_guard lock(mu_);
    return acks_;
  }
  // Acks that named more than the store had committed when they arrived.
  int early_acks() {
    std::lock_guard lock(mu_);
    return early_acks_;
  }

 private:
  uint64_t max_ack() const { return acks_.empty() ? 0 : acks_.back(); }

  void ReadAll() {
    CollectorMessage m;
    while (stream_->Read(&m)) {
      std::lock_guard lock(mu_);
      if (m.has_hello_ack()) hello_acked_ = true;
      if (m.has_ack()) {
        if (m.ack().up_to() > store_->committed(agent_)) ++early_acks_;
        acks_.push_back(m.ack().up_to());
      }
      cv_.notify_all();
    }
    grpc::Status st = stream_->Finish();
    std::lock_guard lock(mu_);
    status_ = st;
    ended_ = true;
    cv_.notify_all();
  }

  RecordingStore* const store_;
  const std::string agent_;
  std::unique_ptr<idflow::v1::Ingest::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<AgentMessage, CollectorMessage>> stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool hello_acked_ = false;
  std::vector<uint64_t> acks_;
  int early_acks_ = 0;
  bool ended_ = false;
  grpc::Status status_;
  std::thread reader_;
};

class IngestPipelineTest : public ::testing::Test {
 protected:
  void Start(collector::CollectorOptions o = {}) {
    dir_ = TempDir();
    auto inner = store::OpenStore("sqlite:" + dir_ + "/idflow.db");
    ASSERT_THAT(inner, IsOk());
    auto recording = std::make_unique<RecordingStore>(std::move(*inner));
    store_ = recording.get();
    o.listen = "127.0.0.1:0";
    o.policies_dir = std::string(IDFLOW_SOURCE_DIR) + "/policies";
    auto c = collector::Collector::Start(o, std::move(recording));
    ASSERT_THAT(c, IsOk());
    collector_ = std::move(*c);
  }
  void TearDown() override {
    if (store_ != nullptr) store_->Release();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(collector_->grpc_port()); }
  std::unique_ptr<Client> Connect(const std::string& agent) {
    auto c = std::make_unique<Client>(address(), store_, agent);
    c->Send(IngestHello(agent));
    EXPECT_TRUE(c->HelloAcked());
    return c;
  }
  uint64_t LastSeq(const std::string& agent) {
    auto n = collector_->store().LastSeq(agent);
    return n.ok() ? *n : UINT64_MAX;
  }

  std::string dir_;
  RecordingStore* store_ = nullptr;  // owned by the collector
  std::unique_ptr<collector::Collector> collector_;
};

TEST_F(IngestPipelineTest, BatchesInFlightAreAckedOnlyAfterTheirCommitAndInOrder) {
  Start();
  auto c = Connect("a1");
  store_->Hold();
  ASSERT_TRUE(c->Send(IngestBatch("a1", 1, 10)));
  ASSERT_TRUE(PollUntil([&] { return store_->writes_entered() == 1; }));
  // Three more batches are read and handed on while the first commit waits.
  for (uint64_t first : {11, 21, 31}) ASSERT_TRUE(c->Send(IngestBatch("a1", first, 10)));
  ASSERT_TRUE(PollUntil([&] { return collector_->counters().queued_ops.load() == 3; }));
  EXPECT_TRUE(c->acks().empty()) << "nothing is committed yet";
  store_->Release();
  ASSERT_TRUE(c->WaitAck(40));
  c->CloseWrites();
  EXPECT_TRUE(c->Wait().ok());
  std::vector<uint64_t> acks = c->acks();
  ASSERT_FALSE(acks.empty());
  for (size_t i = 1; i < acks.size(); ++i) EXPECT_LT(acks[i - 1], acks[i]);
  for (uint64_t a : acks) EXPECT_EQ(a % 10, 0u) << "acks name whole batches: " << a;
  EXPECT_EQ(acks.back(), 40u);
  EXPECT_EQ(c->early_acks(), 0);
  EXPECT_EQ(LastSeq("a1"), 40u);
  EXPECT_EQ(collector_->counters().events.load(), 40u);
  EXPECT_EQ(collector_->counters().batches.load(), 4u);
  // The three batches queued behind the held commit went in one Write.
  auto writes = store_->writes();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1].size(), 3u);
  EXPECT_EQ(collector_->counters().commits.load(), 2u);
  EXPECT_EQ(collector_->counters().commit_ops.load(), 4u);
}

TEST_F(IngestPipelineTest, ACommitFailureMidPipelineAcksNothingBeyondTheLastCommit) {
  Start();
  auto c = Connect("a1");
  store_->Hold();
  ASSERT_TRUE(c->Send(IngestBatch("a1", 1, 10)));
  ASSERT_TRUE(PollUntil([&] { return store_->writes_entered() == 1; }));
  store_->FailWritesFrom("a1", 11);
  for (uint64_t first : {11, 21}) ASSERT_TRUE(c->Send(IngestBatch("a1", first, 10)));
  ASSERT_TRUE(PollUntil([&] { return collector_->counters().queued_ops.load() == 2; }));
  store_->Release();
  grpc::Status st = c->Wait();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("disk unplugged"));
  EXPECT_THAT(c->acks(), ::testing::ElementsAre(10u));
  EXPECT_EQ(c->early_acks(), 0);
  EXPECT_EQ(LastSeq("a1"), 10u);
  EXPECT_EQ(collector_->counters().events.load(), 10u);
  EXPECT_EQ(collector_->counters().store_errors.load(), 1u);
}

TEST_F(IngestPipelineTest, TwoStreamsBatchesShareOneWrite) {
  Start();
  auto a = Connect("a1");
  auto b = Connect("b1");
  store_->Hold();
  ASSERT_TRUE(a->Send(IngestBatch("a1", 1, 5)));
  ASSERT_TRUE(PollUntil([&] { return store_->writes_entered() == 1; }));
  ASSERT_TRUE(a->Send(IngestBatch("a1", 6, 5)));
  ASSERT_TRUE(b->Send(IngestBatch("b1", 1, 7)));
  ASSERT_TRUE(PollUntil([&] { return collector_->counters().queued_ops.load() == 2; }));
  store_->Release();
  ASSERT_TRUE(a->WaitAck(10));
  ASSERT_TRUE(b->WaitAck(7));
  a->CloseWrites();
  b->CloseWrites();
  EXPECT_TRUE(a->Wait().ok());
  EXPECT_TRUE(b->Wait().ok());
  auto writes = store_->writes();
  ASSERT_EQ(writes.size(), 2u);
  ASSERT_EQ(writes[1].size(), 2u);
  std::set<std::string> agents = {writes[1][0].agent_id, writes[1][1].agent_id};
  EXPECT_EQ(agents, (std::set<std::string>{"a1", "b1"}));
  EXPECT_EQ(a->early_acks() + b->early_acks(), 0);
  EXPECT_EQ(LastSeq("a1"), 10u);
  EXPECT_EQ(LastSeq("b1"), 7u);
}

TEST_F(IngestPipelineTest, AtTheBoundTheStreamStopsReadingAndResumesAfterACommit) {
  collector::CollectorOptions o;
  o.max_batches_in_flight = 2;
  Start(o);
  auto c = Connect("a1");
  store_->Hold();
  constexpr uint64_t kBatches = 30, kPer = 5;
  std::atomic<uint64_t> written{0};
  std::thread writer([&] {
    for (uint64_t i = 0; i < kBatches; ++i) {
      if (!c->Send(IngestBatch("a1", 1 + i * kPer, kPer))) return;
      written++;
    }
  });
  // The transport takes batches the collector does not read: two are handed
  // on (in the held Write or queued behind it), the rest wait in gRPC's window.
  auto handed_on = [&] {
    auto writes = store_->writes();
    return (writes.empty() ? 0 : writes[0].size()) + collector_->counters().queued_ops.load();
  };
  ASSERT_TRUE(PollUntil([&] { return store_->writes_entered() == 1 && handed_on() == 2; }));
  ASSERT_TRUE(PollUntil([&] { return written.load() >= 6; }));
  EXPECT_EQ(handed_on(), 2u) << "read past the in-flight bound";
  EXPECT_EQ(store_->writes_entered(), 1);
  store_->Release();
  writer.join();
  ASSERT_EQ(written.load(), kBatches);
  ASSERT_TRUE(c->WaitAck(kBatches * kPer));
  c->CloseWrites();
  EXPECT_TRUE(c->Wait().ok());
  EXPECT_EQ(c->early_acks(), 0);
  EXPECT_EQ(LastSeq("a1"), kBatches * kPer);
  EXPECT_GT(collector_->counters().backpressure_us.load(), 0u);
  for (const auto& w : store_->writes()) EXPECT_LE(w.size(), 2u) << "more than the bound in flight";
}

TEST_F(IngestPipelineTest, AFencedWriteEndsTheStreamAsSuperseded) {
  Start();
  store_->EnableFencing();
  auto c = Connect("a1");
  ASSERT_TRUE(c->Send(IngestBatch("a1", 1, 5)));
  ASSERT_TRUE(c->WaitAck(5));
  // Another collector sharing the store takes the agent over.
  ASSERT_THAT(store_->ClaimStream("a1", "other-collector"), IsOk());
  ASSERT_TRUE(c->Send(IngestBatch("a1", 6, 5)));
  grpc::Status st = c->Wait();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  EXPECT_THAT(c->acks(), ::testing::ElementsAre(5u));
  EXPECT_EQ(LastSeq("a1"), 5u);
  EXPECT_EQ(collector_->counters().superseded_streams.load(), 1u);
  EXPECT_EQ(collector_->counters().rejected_streams.load(), 0u);
}

TEST_F(IngestPipelineTest, AnIdleStreamSupersededElsewhereEnds) {
  collector::CollectorOptions o;
  o.claim_check_interval = std::chrono::milliseconds(20);
  Start(o);
  store_->EnableFencing();
  auto c = Connect("a1");
  ASSERT_THAT(store_->ClaimStream("a1", "other-collector"), IsOk());
  // Nothing is written: only the claim check can end it (before the deadline).
  grpc::Status st = c->Wait();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  EXPECT_EQ(collector_->counters().superseded_streams.load(), 1u);
  EXPECT_EQ(store_->writes_entered(), 0);
}

TEST_F(IngestPipelineTest, ShutdownCommitsWhatIsInFlightAndAcksNothingElse) {
  Start();
  auto c = Connect("a1");
  store_->Hold();
  ASSERT_TRUE(c->Send(IngestBatch("a1", 1, 10)));
  ASSERT_TRUE(PollUntil([&] { return store_->writes_entered() == 1; }));
  ASSERT_TRUE(c->Send(IngestBatch("a1", 11, 10)));
  ASSERT_TRUE(PollUntil([&] { return collector_->counters().queued_ops.load() == 1; }));
  std::thread stopper([&] { collector_->Shutdown(); });
  store_->Release();
  stopper.join();
  c->Wait();
  // Whatever was acked is stored; what was stored need not have been acked.
  std::vector<uint64_t> acks = c->acks();
  EXPECT_EQ(c->early_acks(), 0);
  if (!acks.empty()) {
    EXPECT_LE(acks.back(), LastSeq("a1"));
  }
  EXPECT_EQ(LastSeq("a1"), 20u) << "queued writes are committed, not dropped";
}

}  // namespace
}  // namespace idflow

namespace idflow {
namespace {

collector::CollectorOptions SqliteOptions(const std::string& db) {
  collector::CollectorOptions o;
  o.listen = "127.0.0.1:0";
  o.store_url = "sqlite:" + db;
  o.policies_dir = std::string(IDFLOW_SOURCE_DIR) + "/policies";
  return o;
}

std::string HelloCollectorId(int port) {
  auto stub = idflow::v1::Ingest::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  auto stream = stub->Stream(&ctx);
  stream->Write(IngestHello("a1"));
  CollectorMessage m;
  std::string id = stream->Read(&m) ? m.hello_ack().collector_id() : "(no hello ack)";
  ctx.TryCancel();
  stream->Finish();
  return id;
}

TEST(CollectorStoreTest, OneCollectorPerSqliteFileAndEachNamedApart) {
  const std::string dir = TempDir();
  auto first = collector::Collector::Start(SqliteOptions(dir + "/a.db"));
  ASSERT_THAT(first, IsOk());
  auto second = collector::Collector::Start(SqliteOptions(dir + "/a.db"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition)
      << second.status().ToString();
  auto other = collector::Collector::Start(SqliteOptions(dir + "/b.db"));
  ASSERT_THAT(other, IsOk());
  // Default ids (stream claims name them) differ between collectors.
  std::string a = HelloCollectorId((*first)->grpc_port());
  std::string b = HelloCollectorId((*other)->grpc_port());
  EXPECT_FALSE(a.empty());
  EXPECT_NE(a, b);
  // The file is free again once its collector is gone.
  first->reset();
  EXPECT_THAT(collector::Collector::Start(SqliteOptions(dir + "/a.db")), IsOk());
}

}  // namespace
}  // namespace idflow

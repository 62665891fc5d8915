// The sender against a scripted in-process collector (the wire contract of
// ingest.proto, nothing more): resume at stored_up_to + 1, gaps for what the
// spool no longer holds, Reject -> dead letter -> DEAD_LETTER gap, drop
// counters on the stream, and no tight loop on a non-retryable status.
#include "agent/sender.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"
#include "tests/agent/test_util.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;
using idflow::v1::AgentMessage;
using idflow::v1::CollectorMessage;

std::string TempDir() { return MakeTempDir("sender"); }

std::vector<idflow::v1::Event> Events(int n) {
  std::vector<idflow::v1::Event> out(n);
  for (auto& e : out) e.mutable_identifier()->set_kind("mac_address");
  return out;
}

// Collector side of the contract, scripted by the test.
class FakeCollector : public idflow::v1::Ingest::CallbackService {
 public:
  std::mutex mu;
  std::condition_variable cv;
  uint64_t stored_up_to = 0;  // stored or declared
  uint64_t events_stored = 0;
  std::vector<idflow::v1::SeqGap> gaps;
  std::vector<idflow::v1::DropCounters> drops;  // hello and stream, in order
  int streams = 0;
  std::string violation;                           // a broken sequence rule, if any
  grpc::StatusCode refuse = grpc::StatusCode::OK;  // non-OK: end every stream so
  uint64_t reject_seq = 0;                         // a batch holding it is refused (once)

  template <typename Pred>
  bool WaitFor(Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), pred);
  }

  grpc::ServerBidiReactor<AgentMessage, CollectorMessage>* Stream(
      grpc::CallbackServerContext*) override {
    return new Reactor(this);
  }

 private:
  class Reactor : public grpc::ServerBidiReactor<AgentMessage, CollectorMessage> {
   public:
    explicit Reactor(FakeCollector* c) : c_(c) { StartRead(&in_); }
    void OnReadDone(bool ok) override {
      if (!ok) return End(grpc::Status::OK);
      grpc::Status end = Handle(in_);
      if (!end.ok()) return End(end);
      StartRead(&in_);
    }
    void OnWriteDone(bool) override {
      std::lock_guard lock(mu_);
      out_.pop_front();
      if (!out_.empty()) {
        StartWrite(&out_.front());
      } else if (finish_) {
        Finish(*finish_);
      }
    }
    void OnDone() override { delete this; }

   private:
    void Send(CollectorMessage m) {
      std::lock_guard lock(mu_);
      out_.push_back(std::move(m));
      if (out_.size() == 1) StartWrite(&out_.front());
    }
    void End(grpc::Status st) {
      std::lock_guard lock(mu_);
      if (finish_) return;
      finish_ = st;
      if (out_.empty()) Finish(st);
    }
    grpc::Status Handle(const AgentMessage& m) {
      CollectorMessage reply;
      {
        std::lock_guard lock(c_->mu);
        c_->cv.notify_all();
        if (m.has_hello()) {
          ++c_->streams;
          c_->drops.push_back(m.hello().drops());
          if (c_->refuse != grpc::StatusCode::OK) return grpc::Status(c_->refuse, "refused");
          next_ = c_->stored_up_to + 1;
          reply.mutable_hello_ack()->set_stored_up_to(c_->stored_up_to);
        } else if (m.has_drops()) {
          c_->drops.push_back(m.drops());
          return grpc::Status::OK;
        } else if (m.has_gap()) {
          if (m.gap().from_seq() != next_ || m.gap().to_seq() < m.gap().from_seq()) {
            c_->violation = "gap out of order";
            return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, c_->violation);
          }
          c_->gaps.push_back(m.gap());
          c_->stored_up_to = m.gap().to_seq();
          next_ = m.gap().to_seq() + 1;
          reply.mutable_ack()->set_up_to(m.gap().to_seq());
        } else if (m.has_batch()) {
          const auto& b = m.batch();
          uint64_t first = b.events(0).seq(), last = b.events(b.events_size() - 1).seq();
          for (int i = 0; i < b.events_size(); ++i) {
            if (b.events(i).seq() != next_ + static_cast<uint64_t>(i)) {
              c_->violation = "batch out of order";
              return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, c_->violation);
            }
          }
          if (c_->reject_seq >= first && c_->reject_seq <= last) {
            c_->reject_seq = 0;
            CollectorMessage rej;
            rej.mutable_reject()->set_from_seq(first);
            rej.mutable_reject()->set_to_seq(last);
            rej.mutable_reject()->set_reason("malformed event");
            Send(std::move(rej));
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed event");
          }
          c_->events_stored += static_cast<uint64_t>(b.events_size());
          c_->stored_up_to = last;
          next_ = last + 1;
          reply.mutable_ack()->set_up_to(last);
        }
      }
      Send(std::move(reply));
      return grpc::Status::OK;
    }

    FakeCollector* const c_;
    AgentMessage in_;
    uint64_t next_ = 1;
    std::mutex mu_;
    std::deque<CollectorMessage> out_;
    std::optional<grpc::Status> finish_;
  };
};

class SenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(&fake_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto d = DropCounterStore::Open(dir_ + "/drops");
    ASSERT_THAT(d, IsOk());
    drops_ = std::move(*d);
  }
  void TearDown() override {
    if (sender_) sender_->Stop();
    server_->Shutdown();
  }

  void OpenSpool(uint64_t max_bytes = 256ull << 20) {
    SpoolOptions o;
    o.dir = dir_ + "/spool";
    o.max_bytes = max_bytes;
    o.sync = false;
    o.drops = drops_.get();
    auto s = Spool::Open(o);
    ASSERT_THAT(s, IsOk());
    spool_ = std::move(*s);
  }

  void StartSender(std::chrono::milliseconds fatal_backoff = std::chrono::hours(1)) {
    SenderOptions o;
    o.collectors = {"127.0.0.1:" + std::to_string(port_)};
    o.batch_events = 50;
    o.min_backoff = std::chrono::milliseconds(1);
    o.max_backoff = std::chrono::milliseconds(5);
    o.fatal_backoff = fatal_backoff;
    o.drops_min_interval = std::chrono::milliseconds(0);
    o.drops = drops_.get();
    sender_ = std::make_unique<Sender>(o, spool_.get());
    sender_->Start();
  }

  uint64_t Append(int n) {
    auto b = Events(n);
    EXPECT_THAT(spool_->Append(&b), IsOk());
    if (sender_) sender_->Notify(spool_->last_seq());
    return spool_->last_seq();
  }

  std::string dir_;
  int port_ = 0;
  FakeCollector fake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<DropCounterStore> drops_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Sender> sender_;
};

TEST_F(SenderTest, DeclaresPurgedRangeAsGapThenSendsTheRest) {
  OpenSpool(/*max_bytes=*/16 << 10);  // 4 KiB segments: purges early
  uint64_t last = 0;
  for (int i = 0; i < 40; ++i) last = Append(20);
  const uint64_t purged = spool_->stats().dropped;
  ASSERT_GT(purged, 0u);
  StartSender();
  ASSERT_TRUE(sender_->WaitAcked(last, std::chrono::seconds(20)));
  std::lock_guard lock(fake_.mu);
  EXPECT_EQ(fake_.violation, "");
  ASSERT_EQ(fake_.gaps.size(), 1u);
  EXPECT_EQ(fake_.gaps[0].from_seq(), 1u);
  EXPECT_EQ(fake_.gaps[0].to_seq(), purged);
  EXPECT_EQ(fake_.gaps[0].cause(), idflow::v1::DROP_CAUSE_SPOOL);
  // Stored + declared lost == every seq; the hello carried the count.
  EXPECT_EQ(fake_.events_stored + purged, last);
  EXPECT_EQ(fake_.drops.front().spool_dropped(), purged);
}

TEST_F(SenderTest, ResumesAfterStoredUpTo) {
  OpenSpool();
  uint64_t last = Append(30);
  {
    std::lock_guard lock(fake_.mu);
    fake_.stored_up_to = 10;  // the collector already has 1..10
  }
  StartSender();
  ASSERT_TRUE(sender_->WaitAcked(last, std::chrono::seconds(20)));
  std::lock_guard lock(fake_.mu);
  EXPECT_EQ(fake_.violation, "");
  EXPECT_EQ(fake_.events_stored, 20u);
  EXPECT_TRUE(fake_.gaps.empty());
}

TEST_F(SenderTest, RejectedBatchGoesToDeadLetterAndIsDeclared) {
  OpenSpool();
  {
    std::lock_guard lock(fake_.mu);
    fake_.reject_seq = 60;  // in the second batch of 50: 51..100
  }
  uint64_t last = Append(120);
  StartSender();
  ASSERT_TRUE(sender_->WaitAcked(last, std::chrono::seconds(20)));
  {
    std::lock_guard lock(fake_.mu);
    EXPECT_EQ(fake_.violation, "");
    EXPECT_GE(fake_.streams, 2);
    ASSERT_EQ(fake_.gaps.size(), 1u);
    EXPECT_EQ(fake_.gaps[0].from_seq(), 51u);
    EXPECT_EQ(fake_.gaps[0].to_seq(), 100u);
    EXPECT_EQ(fake_.gaps[0].cause(), idflow::v1::DROP_CAUSE_DEAD_LETTER);
    EXPECT_EQ(fake_.events_stored, 70u);
  }
  EXPECT_EQ(drops_->Get(idflow::v1::DROP_CAUSE_DEAD_LETTER), 50u);
  EXPECT_EQ(sender_->stats().dead_lettered, 50u);
  DeadLetterFile dl(dir_ + "/spool");
  auto kept = dl.ReadAll();
  ASSERT_THAT(kept, IsOk());
  ASSERT_EQ(kept->size(), 50u);
  EXPECT_EQ(kept->front().seq(), 51u);
  // The next counters the collector saw carry the dead letters.
  ASSERT_TRUE(fake_.WaitFor(
      [&] { return !fake_.drops.empty() && fake_.drops.back().dead_lettered() == 50u; }));
}

TEST_F(SenderTest, NonRetryableStatusIsNotRetriedInATightLoop) {
  OpenSpool();
  {
    std::lock_guard lock(fake_.mu);
    fake_.refuse = grpc::StatusCode::PERMISSION_DENIED;
  }
  Append(5);
  StartSender(/*fatal_backoff=*/std::chrono::hours(1));
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.streams >= 1; }));
  for (int i = 0; i < 2000 && sender_->stats().fatal_errors == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(sender_->stats().fatal_errors, 1u);
  EXPECT_NE(sender_->stats().last_error.find("refused"), std::string::npos);
  // With 1-5 ms retryable backoff, a tight loop would reconnect many times
  // in this window; the long backoff holds it at one attempt.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::lock_guard lock(fake_.mu);
  EXPECT_EQ(fake_.streams, 1);
}

TEST_F(SenderTest, RetryableStatusReconnectsSoon) {
  OpenSpool();
  {
    std::lock_guard lock(fake_.mu);
    fake_.refuse = grpc::StatusCode::UNAVAILABLE;
  }
  Append(5);
  StartSender();
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.streams >= 3; }));
  EXPECT_EQ(sender_->stats().fatal_errors, 0u);
}

TEST_F(SenderTest, SendsDropCountersWhenTheyChange) {
  OpenSpool();
  StartSender();
  ASSERT_TRUE(fake_.WaitFor([&] { return fake_.streams >= 1; }));
  ASSERT_TRUE(sender_->WaitAcked(0, std::chrono::seconds(5)));
  drops_->Add(idflow::v1::DROP_CAUSE_TAP, 17);
  sender_->Notify(0);
  ASSERT_TRUE(fake_.WaitFor(
      [&] { return !fake_.drops.empty() && fake_.drops.back().tap_dropped() == 17u; }));
}

}  // namespace
}  // namespace idflow::agent

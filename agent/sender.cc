#include "agent/sender.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <random>

#include "common/log.h"

namespace idflow::agent {

using idflow::v1::AgentMessage;
using idflow::v1::CollectorMessage;

class Sender::Stream : public grpc::ClientBidiReactor<AgentMessage, CollectorMessage> {
 public:
  Stream(Sender* sender, idflow::v1::Ingest::Stub* stub, AgentMessage hello)
      : sender_(sender), out_(std::move(hello)) {
    stub->async()->Stream(&ctx_, this);
    AddHold();  // released by Finish(): no OnDone while the control thread may write
    StartWrite(&out_);
    StartRead(&in_);
    StartCall();
  }

  // Control thread only, with no write in flight.
  void Write(AgentMessage msg) {
    out_ = std::move(msg);
    StartWrite(&out_);
  }
  void Cancel() { ctx_.TryCancel(); }
  void Finish() { RemoveHold(); }

  void OnWriteDone(bool ok) override { sender_->OnWriteDone(ok); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      sender_->OnReadFailed();
      return;
    }
    sender_->OnMessage(in_);
    StartRead(&in_);
  }
  void OnDone(const grpc::Status& status) override {
    // Destroy the call (and its ClientContext) before telling the control
    // thread, which then drops the channel and stub the call still refers to.
    Sender* sender = sender_;
    grpc::Status copy = status;
    delete this;
    sender->OnStreamDone(copy);
  }

 private:
  Sender* const sender_;
  grpc::ClientContext ctx_;
  AgentMessage out_;
  CollectorMessage in_;
};

Sender::Sender(SenderOptions options, Spool* spool) : options_(std::move(options)), spool_(spool) {
  std::lock_guard lock(mu_);
  acked_ = spool_->acked();
  latest_spooled_ = spool_->last_seq();
}

Sender::~Sender() { Stop(); }

void Sender::Start() {
  thread_ = std::thread([this] { RunLoop(); });
}

void Sender::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Sender::Notify(uint64_t last_seq) {
  {
    std::lock_guard lock(mu_);
    latest_spooled_ = std::max(latest_spooled_, last_seq);
  }
  cv_.notify_all();
}

SenderStats Sender::stats() const {
  std::lock_guard lock(mu_);
  SenderStats s = stats_;
  s.acked = acked_;
  return s;
}

bool Sender::WaitAcked(uint64_t seq, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this, seq] { return acked_ >= seq; });
}

void Sender::OnWriteDone(bool ok) {
  {
    std::lock_guard lock(mu_);
    write_in_flight_ = false;
    if (!ok) broken_ = true;
  }
  cv_.notify_all();
}

void Sender::OnMessage(const CollectorMessage& msg) {
  uint64_t ack = 0;
  {
    std::lock_guard lock(mu_);
    if (msg.has_hello_ack()) {
      hello_acked_ = true;
      ack = msg.hello_ack().stored_up_to();
      sent_up_to_ = std::max(acked_, ack);
    } else if (msg.has_ack()) {
      ack = msg.ack().up_to();
    }
  }
  if (ack != 0) {
    absl::Status st = spool_->Ack(ack);
    if (!st.ok()) LogError("spool ack failed: ", st.ToString());
    std::lock_guard lock(mu_);
    acked_ = std::max(acked_, std::min(ack, spool_->last_seq()));
  }
  cv_.notify_all();
}

void Sender::OnReadFailed() {
  {
    std::lock_guard lock(mu_);
    broken_ = true;
  }
  cv_.notify_all();
}

void Sender::OnStreamDone(const grpc::Status& status) {
  {
    std::lock_guard lock(mu_);
    stream_done_ = true;
    last_status_ = status;
  }
  cv_.notify_all();
}

bool Sender::RunStream(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  auto creds = options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials();
  auto channel = grpc::CreateCustomChannel(address, creds, args);
  auto stub = idflow::v1::Ingest::NewStub(channel);

  AgentMessage hello;
  hello.mutable_hello()->set_agent_id(spool_->agent_id());
  *hello.mutable_hello()->mutable_device() = options_.device;
  hello.mutable_hello()->set_agent_version(options_.agent_version);
  hello.mutable_hello()->mutable_drops()->set_spool_dropped(spool_->stats().dropped);

  {
    std::lock_guard lock(mu_);
    stream_done_ = false;
    broken_ = false;
    hello_acked_ = false;
    write_in_flight_ = true;
  }
  // The reactor holds itself alive until Finish(); callbacks take mu_, so no
  // gRPC call below is made while holding it.
  Stream* stream = new Stream(this, stub.get(), std::move(hello));

  bool got_hello = false;
  std::unique_lock lock(mu_);
  // Wait for the hello ack, bounded so a collector that accepts but never
  // answers does not hold the agent.
  cv_.wait_for(lock, options_.hello_timeout,
               [this] { return stopping_ || broken_ || hello_acked_; });
  if (hello_acked_ && !broken_ && !stopping_) {
    got_hello = true;
    ++stats_.connects;
    stats_.connected = true;
    stats_.collector = address;
    if (outage_reported_) LogInfo("connected to collector ", address, "; resuming delivery");
    outage_reported_ = false;
    for (;;) {
      cv_.wait(lock, [this] {
        return stopping_ || broken_ || (!write_in_flight_ && latest_spooled_ > sent_up_to_);
      });
      if (stopping_ || broken_) break;
      uint64_t after = sent_up_to_;
      lock.unlock();
      auto batch = spool_->ReadAfter(after, options_.batch_events, options_.batch_bytes);
      lock.lock();
      if (!batch.ok()) {
        LogError("spool read failed: ", batch.status().ToString());
        broken_ = true;
        break;
      }
      if (batch->empty()) {
        // Purged or already acked: nothing left up to what was announced.
        sent_up_to_ = std::max(sent_up_to_, latest_spooled_);
        continue;
      }
      AgentMessage msg;
      for (auto& ev : *batch) *msg.mutable_batch()->add_events() = std::move(ev);
      sent_up_to_ = msg.batch().events(msg.batch().events_size() - 1).seq();
      ++stats_.batches_sent;
      stats_.events_sent += msg.batch().events_size();
      write_in_flight_ = true;
      lock.unlock();
      stream->Write(std::move(msg));
      lock.lock();
    }
  }
  stats_.connected = false;
  lock.unlock();
  stream->Cancel();
  lock.lock();
  cv_.wait(lock, [this] { return !write_in_flight_; });
  lock.unlock();
  stream->Finish();
  lock.lock();
  cv_.wait(lock, [this] { return stream_done_; });
  if (!stopping_ && !outage_reported_) {
    LogWarning("collector ", address, " unreachable (",
               last_status_.error_message().empty() ? std::string("no hello ack")
                                                    : last_status_.error_message(),
               "); spooling events on disk and retrying with backoff");
    outage_reported_ = true;
  }
  return got_hello;
}

void Sender::RunLoop() {
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = options_.min_backoff;
  size_t index = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const std::string& address = options_.collectors[index % options_.collectors.size()];
    bool was_up = RunStream(address);
    std::unique_lock lock(mu_);
    if (stopping_) return;
    ++stats_.failures;
    if (was_up) {
      backoff = options_.min_backoff;
    } else {
      backoff = std::min(options_.max_backoff, backoff * 2);
    }
    ++index;  // fail over to the next address
    // Jitter in [backoff/2, backoff] spreads a fleet's reconnects.
    auto half = backoff.count() / 2;
    std::chrono::milliseconds wait(half + static_cast<long>(rng() % (half + 1)));
    cv_.wait_for(lock, wait, [this] { return stopping_; });
  }
}

}  // namespace idflow::agent

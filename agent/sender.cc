#include "agent/sender.h"

#include <optional>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/version.h"

namespace idflow::agent {

using idflow::v1::AgentMessage;
using idflow::v1::CollectorMessage;

class Sender::Stream : public grpc::ClientBidiReactor<AgentMessage, CollectorMessage> {
 public:
  Stream(Sender* sender, idflow::v1::Ingest::Stub* stub, AgentMessage hello,
         const std::string& bearer_token)
      : sender_(sender), out_(std::move(hello)) {
    if (!bearer_token.empty()) ctx_.AddMetadata("authorization", "Bearer " + bearer_token);
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

Sender::Sender(SenderOptions options, Spool* spool)
    : options_(std::move(options)),
      spool_(spool),
      dead_letter_(spool->dir(), options_.dead_letter_max_bytes) {
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
    if (!ok) broken_ = write_failed_ = true;
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
      // The stream must go on exactly after what the collector stored.
      sent_up_to_ = ack;
    } else if (msg.has_ack()) {
      ack = msg.ack().up_to();
    } else if (msg.has_reject()) {
      // Handled by the control thread once the stream has ended.
      has_reject_ = true;
      reject_ = msg.reject();
    }
  }
  if (ack != 0) {
    absl::Status st = spool_->Ack(ack);
    if (!st.ok()) LogError("spool ack failed: ", st.ToString());
    std::lock_guard lock(mu_);
    acked_ = std::max(acked_, ack);
  }
  cv_.notify_all();
}

void Sender::OnReadFailed() {
  {
    std::lock_guard lock(mu_);
    broken_ = true;
    reads_done_ = true;
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

bool Sender::Retryable(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:  // the server ended the stream: reconnect
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::CANCELLED:
      return true;
    default:
      return false;
  }
}

idflow::v1::DropCounters Sender::CurrentDrops() const {
  if (options_.drops != nullptr) return options_.drops->Snapshot();
  idflow::v1::DropCounters d;
  SpoolStats st = spool_->stats();
  d.set_spool_dropped(st.dropped);
  d.set_disk_dropped(st.disk_dropped);
  return d;
}

void Sender::DeadLetter(uint64_t from, uint64_t to, const std::string& reason) {
  from = std::max(from, spool_->acked() + 1);
  to = std::min(to, spool_->last_seq());
  if (from == 0 || from > to) return;
  // Keep what the spool still holds of the range, for inspection.
  std::vector<idflow::v1::Event> kept;
  uint64_t after = from - 1;
  while (after < to) {
    auto r = spool_->Read(after, 1024, 4 << 20);
    if (!r.ok()) break;
    if (r->is_gap) {
      after = r->gap.to;
      continue;
    }
    if (r->events.empty()) break;
    for (auto& ev : r->events) {
      if (ev.seq() <= to) kept.push_back(std::move(ev));
    }
    after = kept.empty() ? to : std::max(after, kept.back().seq());
    if (r->events.back().seq() >= to) break;
  }
  if (absl::Status st = dead_letter_.Write(kept, reason); !st.ok()) {
    LogError("dead-letter file: ", st.ToString());
  }
  // Counted whether or not the file had room: lost to the store either way.
  // In tap events: a kept event weighs its count, one not read weighs 1.
  const uint64_t n = to - from + 1;
  uint64_t weight = n - std::min<uint64_t>(n, kept.size());
  for (const auto& ev : kept) weight += TapEvents(ev);
  if (options_.drops != nullptr) options_.drops->Add(idflow::v1::DROP_CAUSE_DEAD_LETTER, weight);
  if (absl::Status st = spool_->MarkLost(from, to, idflow::v1::DROP_CAUSE_DEAD_LETTER); !st.ok()) {
    LogError("spool: ", st.ToString());
  }
  LogWarning("collector refused seq ", from, "..", to, " for good (", reason, "); ", n,
             " events set aside in ", dead_letter_.path());
  std::lock_guard lock(mu_);
  stats_.dead_lettered += n;
}

Sender::Outcome Sender::RunStream(const std::string& address) {
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
  // This build's version unless the caller names another (tests, embedders).
  hello.mutable_hello()->set_agent_version(options_.agent_version.empty() ? VersionString()
                                                                          : options_.agent_version);
  *hello.mutable_hello()->mutable_drops() = CurrentDrops();
  uint64_t drops_version = options_.drops ? options_.drops->version() : 0;
  auto drops_sent_at = std::chrono::steady_clock::now();

  {
    std::lock_guard lock(mu_);
    stream_done_ = false;
    broken_ = false;
    reads_done_ = false;
    write_failed_ = false;
    hello_acked_ = false;
    has_reject_ = false;
    write_in_flight_ = true;
  }
  // The reactor holds itself alive until Finish(); callbacks take mu_, so no
  // gRPC call below is made while holding it.
  Stream* stream = new Stream(this, stub.get(), std::move(hello), options_.bearer_token);

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
    fatal_reported_.clear();
    std::optional<std::chrono::steady_clock::time_point> unsent_since;
    for (;;) {
      // Drop counters: when they changed (rate-limited), and periodically.
      auto drops_due = [&] {
        auto since = std::chrono::steady_clock::now() - drops_sent_at;
        uint64_t v = options_.drops ? options_.drops->version() : 0;
        return since >= options_.drops_interval ||
               (v != drops_version && since >= options_.drops_min_interval);
      };
      // Counters change without a notification: look at least this often.
      auto next_check = std::max(std::chrono::milliseconds(100),
                                 std::min(options_.drops_interval, options_.drops_min_interval));
      // A short batch lingers (batch_linger) so that a low rate makes a few
      // large batches and acks rather than one per flush.
      auto batch_due = [&] {
        if (latest_spooled_ <= sent_up_to_) {
          unsent_since.reset();
          return false;
        }
        if (options_.batch_linger.count() <= 0 ||
            latest_spooled_ - sent_up_to_ >= options_.batch_events) {
          return true;
        }
        const auto now = std::chrono::steady_clock::now();
        if (!unsent_since) unsent_since = now;
        return now - *unsent_since >= options_.batch_linger;
      };
      if (options_.batch_linger.count() > 0 && latest_spooled_ > sent_up_to_) {
        next_check = std::min<std::chrono::milliseconds>(next_check, options_.batch_linger);
      }
      cv_.wait_for(lock, next_check, [&] {
        return stopping_ || broken_ || (!write_in_flight_ && (batch_due() || drops_due()));
      });
      if (stopping_ || broken_) break;
      if (write_in_flight_) continue;
      AgentMessage msg;
      if (drops_due()) {
        drops_version = options_.drops ? options_.drops->version() : 0;
        drops_sent_at = std::chrono::steady_clock::now();
        lock.unlock();
        *msg.mutable_drops() = CurrentDrops();
        lock.lock();
        ++stats_.drops_sent;
      } else if (batch_due()) {
        unsent_since.reset();
        uint64_t after = sent_up_to_;
        lock.unlock();
        auto read = spool_->Read(after, options_.batch_events, options_.batch_bytes);
        lock.lock();
        if (!read.ok()) {
          LogError("spool read failed: ", read.status().ToString());
          broken_ = true;
          break;
        }
        if (read->is_gap) {
          // Declared before anything after it, so the sequence stays whole.
          *msg.mutable_gap() = idflow::v1::SeqGap();
          msg.mutable_gap()->set_from_seq(read->gap.from);
          msg.mutable_gap()->set_to_seq(read->gap.to);
          msg.mutable_gap()->set_cause(read->gap.cause);
          sent_up_to_ = read->gap.to;
          ++stats_.gaps_sent;
          // Purged events this sender had in flight before: now known lost.
          spool_->GapDeclared(read->gap.from, read->gap.to);
        } else if (read->events.empty()) {
          // Nothing held beyond `after` (the spool moved on): wait for more.
          latest_spooled_ = sent_up_to_;
          continue;
        } else {
          for (auto& ev : read->events) *msg.mutable_batch()->add_events() = std::move(ev);
          sent_up_to_ = msg.batch().events(msg.batch().events_size() - 1).seq();
          ++stats_.batches_sent;
          stats_.events_sent += msg.batch().events_size();
        }
      } else {
        continue;
      }
      write_in_flight_ = true;
      lock.unlock();
      stream->Write(std::move(msg));
      lock.lock();
    }
  }
  stats_.connected = false;
  // A failed write means the collector is ending the call; what it sent
  // before (a Reject ahead of its error status) must still be read, or the
  // refused range would be sent again instead of set aside.
  if (write_failed_ && !stopping_) {
    cv_.wait_for(lock, options_.drain_timeout, [this] { return stopping_ || reads_done_; });
  }
  lock.unlock();
  stream->Cancel();
  lock.lock();
  cv_.wait(lock, [this] { return !write_in_flight_; });
  lock.unlock();
  stream->Finish();
  lock.lock();
  cv_.wait(lock, [this] { return stream_done_; });
  if (stopping_) return got_hello ? Outcome::kRetryable : Outcome::kNoHello;
  if (has_reject_) {
    has_reject_ = false;
    idflow::v1::Reject rej = reject_;
    ++stats_.rejects;
    lock.unlock();
    DeadLetter(rej.from_seq(), rej.to_seq(), rej.reason());
    // Nothing else is wrong: reconnect soon and declare the gap.
    return Outcome::kRetryable;
  }
  const grpc::StatusCode code = last_status_.error_code();
  if (!Retryable(code)) {
    ++stats_.fatal_errors;
    std::string reason =
        absl::StrCat("status ", static_cast<int>(code), ": ", last_status_.error_message());
    stats_.last_error = reason;
    if (reason != fatal_reported_) {
      LogError("collector ", address, " refused the stream (", reason, "); retrying in ",
               options_.fatal_backoff.count() / 1000, " s");
      fatal_reported_ = reason;
    }
    outage_reported_ = true;
    return Outcome::kFatal;
  }
  if (!outage_reported_) {
    LogWarning("collector ", address, " unreachable (",
               last_status_.error_message().empty() ? std::string("no hello ack")
                                                    : last_status_.error_message(),
               "); spooling events on disk and retrying with backoff");
    outage_reported_ = true;
  }
  return got_hello ? Outcome::kRetryable : Outcome::kNoHello;
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
    Outcome outcome = RunStream(address);
    std::unique_lock lock(mu_);
    if (stopping_) return;
    ++stats_.failures;
    if (outcome == Outcome::kRetryable) {
      backoff = options_.min_backoff;
    } else {
      backoff = std::min(options_.max_backoff, backoff * 2);
    }
    ++index;  // fail over to the next address
    // Jitter in [backoff/2, backoff] spreads a fleet's reconnects.
    auto half = backoff.count() / 2;
    std::chrono::milliseconds wait(half + static_cast<long>(rng() % (half + 1)));
    // A refusal (bad credentials, a protocol mismatch) will not fix itself soon.
    if (outcome == Outcome::kFatal) wait = std::max(wait, options_.fatal_backoff);
    cv_.wait_for(lock, wait, [this] { return stopping_; });
  }
}

}  // namespace idflow::agent

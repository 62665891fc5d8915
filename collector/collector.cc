#include "collector/collector.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collector/convert.h"
#include "collector/dashboard.h"
#include "collector/grpc_status.h"
#include "collector/http/http_server.h"
#include "collector/limits.h"
#include "collector/store/sqlite_store.h"
#include "common/file_util.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/version.h"
#include "idflow/v1/ingest.grpc.pb.h"
#include "idflow/v1/query.grpc.pb.h"

namespace idflow::collector {

using idflow::v1::AgentMessage;
using idflow::v1::CollectorMessage;

namespace {

std::string Metadata(grpc::CallbackServerContext* ctx, const char* key) {
  auto it = ctx->client_metadata().find(key);
  if (it == ctx->client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// Verified identities of the client certificate (CN and SANs); empty over
// plaintext or without a client certificate.
std::vector<std::string> PeerIdentities(grpc::CallbackServerContext* ctx) {
  std::vector<std::string> out;
  auto auth = ctx->auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return out;
  for (const char* prop : {"x509_common_name", "x509_subject_alternative_name"}) {
    for (const auto& v : auth->FindPropertyValues(prop)) out.emplace_back(v.data(), v.size());
  }
  return out;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

store::DropCounts FromProto(const idflow::v1::DropCounters& d) {
  return {d.tap_dropped(), d.ingress_rejected(), d.spool_dropped(), d.disk_dropped(),
          d.dead_lettered()};
}

const char* DropCauseName(idflow::v1::DropCause c) {
  switch (c) {
    case idflow::v1::DROP_CAUSE_TAP:
      return "tap";
    case idflow::v1::DROP_CAUSE_INGRESS:
      return "ingress";
    case idflow::v1::DROP_CAUSE_SPOOL:
      return "spool";
    case idflow::v1::DROP_CAUSE_DISK:
      return "disk";
    case idflow::v1::DROP_CAUSE_DEAD_LETTER:
      return "dead_letter";
    default:
      return "unspecified";
  }
}

}  // namespace

class IngestReactor;

// A batch or declared gap on its way to the store, with what is counted
// once it is committed.
struct PendingWrite {
  store::WriteOp op;
  IngestReactor* stream = nullptr;  // holds a reference until the result is delivered
  uint64_t memory_generation = 0;   // the stream's StreamRegistry claim
  uint64_t up_to = 0;               // acked once committed
  size_t events = 0;                // op.events.size(), kept once the op is moved
  size_t truncated = 0;
  size_t cookies = 0;
  std::vector<Category> categories;
};

// Group commit across streams: one committer thread drains a bounded queue
// of writes into Store::Write (one durable transaction for all of them) and
// hands each stream its result, in order. A second thread checks the store
// claims of idle streams, so that a stream superseded on another collector
// ends without waiting for its next write.
class IngestPipeline {
 public:
  IngestPipeline(Collector* c, const CollectorOptions& o) : c_(c), options_(o) {}
  ~IngestPipeline() { Stop(); }

  void Start() {
    committer_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "idflow-commit");
      RunCommitter();
    });
    checker_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "idflow-claims");
      RunClaimChecks();
    });
  }

  // Never blocks: RoomOrWait bounds the queue. Once stopped, the write fails
  // at once (UNAVAILABLE: nothing was committed, the agent resends).
  void Enqueue(PendingWrite w);

  // True when the queue has room for another read; otherwise `stream` is
  // resumed (OnRoom) once the committer has taken writes off the queue.
  bool RoomOrWait(IngestReactor* stream);

  // Streams whose claim the store fences (ClaimStream != 0).
  void Watch(IngestReactor* stream) {
    std::lock_guard lock(mu_);
    watched_.insert(stream);
  }
  void Unwatch(IngestReactor* stream) {
    std::lock_guard lock(mu_);
    watched_.erase(stream);
  }

  // Commits what is queued, then fails whatever comes later; joins threads.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (committer_.joinable()) committer_.join();
    if (checker_.joinable()) checker_.join();
  }

 private:
  void RunCommitter();
  void Commit(std::vector<PendingWrite>* group);
  void ResumeWaiters(std::vector<IngestReactor*> waiters);
  void RunClaimChecks();
  // Deletes events older than the retention (on the claim-check thread).
  void Prune();

  Collector* const c_;
  const CollectorOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PendingWrite> queue_;
  size_t queued_events_ = 0;
  std::vector<IngestReactor*> waiters_;  // each holds a reference
  std::set<IngestReactor*> watched_;     // removed in OnDone, before the last reference goes
  bool stopping_ = false;
  bool committer_done_ = false;
  std::thread committer_;
  std::thread checker_;
};

// One reactor per agent stream. A read batch is validated and judged here,
// handed to the pipeline, and the next read starts at once, up to
// max_batches_in_flight / max_events_in_flight (and while the commit queue
// has room): past that the stream stops reading and gRPC flow control holds
// the agent. Acks are cumulative and written only after the commit, one write
// outstanding. Every refusal goes through Step(), which ends the stream once
// nothing it handed on is still in flight.
//
// Threads: gRPC callbacks, the committer (OnCommitted, OnRoom) and the claim
// checker (IdleClaim, Supersede) all decide under mu_; gRPC calls are made
// after it is released. The object lives until gRPC is done with it and the
// pipeline has returned every reference it took (Ref/Unref).
class IngestReactor : public grpc::ServerBidiReactor<AgentMessage, CollectorMessage> {
 public:
  IngestReactor(Collector* c, IngestPipeline* pipeline, grpc::CallbackServerContext* ctx)
      : c_(c), pipeline_(pipeline), ctx_(ctx) {
    c_->counters().streams++;
    reading_ = true;
    StartNextRead();
  }

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void OnReadDone(bool ok) override {
    {
      std::unique_lock lock(mu_);
      if (!ok || end_.has_value()) {
        // The agent closed its side, or the end is decided: what came after it
        // is not handled.
        reading_ = false;
        if (!ok) read_closed_ = true;
        Step(std::move(lock));
        return;
      }
      handling_ = true;
    }
    absl::Status st = Handle();
    std::unique_lock lock(mu_);
    handling_ = false;
    reading_ = false;
    Step(std::move(lock), st);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    writing_ = false;
    if (!ok) write_broken_ = true;
    Step(std::move(lock));
  }

  void OnCancel() override {
    std::unique_lock lock(mu_);
    cancelled_ = true;
    Step(std::move(lock));
  }

  void OnDone() override {
    if (watched_) pipeline_->Unwatch(this);
    Unref();
  }

  // The committer's result for a write this stream handed on, in order.
  void OnCommitted(const absl::Status& st, const PendingWrite& w) {
    std::unique_lock lock(mu_);
    --inflight_batches_;
    inflight_events_ -= w.events;
    absl::Status end;
    if (st.ok()) {
      if (!commit_failed_) pending_ack_ = std::max(pending_ack_, w.up_to);
    } else if (!commit_failed_.exchange(true)) {
      end = st;  // later writes of this stream fail too: no ack beyond this point
    }
    Step(std::move(lock), end);
  }

  void OnRoom() {
    std::unique_lock lock(mu_);
    waiting_room_ = false;
    Step(std::move(lock));
  }

  // An earlier write failed: the committer skips the later ones.
  bool CommitFailed() const { return commit_failed_.load(); }

  // The claim to check when the stream has nothing in flight.
  bool IdleClaim(std::string* agent_id, uint64_t* generation) {
    std::lock_guard lock(mu_);
    if (end_.has_value() || handling_ || inflight_batches_ > 0) return false;
    *agent_id = agent_id_;
    *generation = store_generation_;
    return true;
  }

  void Supersede() {
    std::unique_lock lock(mu_);
    Step(std::move(lock),
         absl::AbortedError("superseded by a newer stream of the same agent (another collector)"));
  }

 private:
  ~IngestReactor() override = default;

  absl::Status Handle() {
    switch (in_->msg_case()) {
      case AgentMessage::kHello:
        return OnHello(in_->hello());
      case AgentMessage::kBatch:
        RETURN_IF_ERROR(RequireCurrent());
        return OnBatch(in_->mutable_batch());
      case AgentMessage::kGap:
        RETURN_IF_ERROR(RequireCurrent());
        return OnGap(in_->gap());
      case AgentMessage::kDrops:
        RETURN_IF_ERROR(RequireCurrent());
        return c_->store().UpdateDrops(agent_id_, FromProto(in_->drops()), NowMs());
      default:
        return absl::InvalidArgumentError("empty agent message");
    }
  }

  absl::Status OnHello(const idflow::v1::AgentHello& hello) {
    if (!agent_id_.empty()) return absl::FailedPreconditionError("second hello on a stream");
    RETURN_IF_ERROR(ValidateAgentId(hello.agent_id()));
    absl::Status auth = AuthorizeAgent(c_->auth(), BearerToken(Metadata(ctx_, "authorization")),
                                       PeerIdentities(ctx_), hello.agent_id());
    if (!auth.ok()) {
      c_->counters().unauthenticated++;
      return auth;
    }
    agent_id_ = hello.agent_id();
    // The store's claim orders streams across collectors sharing it (0: a
    // store only this collector writes); the registry orders them here.
    ASSIGN_OR_RETURN(store_generation_,
                     c_->store().ClaimStream(agent_id_, c_->options().collector_id));
    memory_generation_ = c_->streams().Claim(agent_id_);
    if (store_generation_ != 0) {
      watched_ = true;
      pipeline_->Watch(this);
    }
    store::AgentRecord a;
    a.agent_id = agent_id_;
    idflow::v1::Event bounded;  // reuse the event bounds for the device fields
    *bounded.mutable_device() = hello.device();
    BoundEvent(&bounded);
    a.device_id = bounded.device().id();
    a.device_class = bounded.device().class_();
    a.firmware = bounded.device().firmware();
    a.agent_version = hello.agent_version().substr(0, kMaxShortBytes);
    TruncateUtf8(&a.agent_version, kMaxShortBytes);
    a.last_seen_unix_ms = NowMs();
    a.drops = FromProto(hello.drops());
    RETURN_IF_ERROR(c_->store().UpsertAgent(a));
    ASSIGN_OR_RETURN(uint64_t last, c_->store().LastSeq(agent_id_));
    LogInfo(
        "agent ", agent_id_, " (device ", a.device_id, ", version ",
        a.agent_version.empty() ? "unknown" : a.agent_version, ") connected; stored up to ", last,
        a.drops.Total() ? absl::StrCat("; it reports ", a.drops.Total(), " dropped events") : "");
    CollectorMessage reply;
    reply.mutable_hello_ack()->set_stored_up_to(last);
    reply.mutable_hello_ack()->set_collector_id(c_->options().collector_id);
    Send(std::move(reply));
    return absl::OkStatus();
  }

  absl::Status RequireCurrent() {
    if (agent_id_.empty()) return absl::FailedPreconditionError("message before hello");
    if (!c_->streams().IsCurrent(agent_id_, memory_generation_)) {
      return absl::AbortedError("superseded by a newer stream of the same agent");
    }
    return absl::OkStatus();
  }

  // Bounds the events in place (the read buffer is reused by the next read).
  absl::Status OnBatch(idflow::v1::EventBatch* batch) {
    if (batch->events_size() == 0) return absl::OkStatus();
    uint64_t first = batch->events(0).seq();
    uint64_t last = first + static_cast<uint64_t>(batch->events_size()) - 1;
    PendingWrite w;
    w.op.events.reserve(batch->events_size());
    w.categories.reserve(batch->events_size());
    for (int i = 0; i < batch->events_size(); ++i) {
      idflow::v1::Event& in = *batch->mutable_events(i);
      if (in.seq() != first + static_cast<uint64_t>(i) || first == 0 || last > kMaxSeq) {
        // Out of order or out of range: no part of the batch can be stored.
        return absl::InvalidArgumentError(
            absl::StrCat("batch seqs must run contiguously within 1..2^63-1; got ", in.seq(),
                         " at index ", i, " after ", first));
      }
      absl::Status valid = ValidateEvent(in);
      if (valid.ok() && !in.agent_id().empty() && in.agent_id() != agent_id_) {
        valid = absl::InvalidArgumentError("event of another agent on this stream");
      }
      if (!valid.ok()) return Reject(first, last, valid);
      w.truncated += BoundEvent(&in);
      store::EventRecord rec = ToRecord(in);
      rec.agent_id = agent_id_;
      w.categories.push_back(JudgeEvent(c_->policy(), &rec));
      if (rec.has_cookie) ++w.cookies;
      w.op.events.push_back(std::move(rec));
    }
    w.events = w.op.events.size();
    w.up_to = last;
    HandOn(std::move(w));
    return absl::OkStatus();
  }

  absl::Status OnGap(const idflow::v1::SeqGap& gap) {
    if (gap.from_seq() == 0 || gap.to_seq() < gap.from_seq() || gap.to_seq() > kMaxSeq) {
      return absl::InvalidArgumentError(
          absl::StrCat("gap ", gap.from_seq(), "..", gap.to_seq(), " out of range"));
    }
    PendingWrite w;
    w.op.gap_from = gap.from_seq();
    w.op.gap_to = gap.to_seq();
    w.op.gap_cause = DropCauseName(gap.cause());
    w.up_to = gap.to_seq();
    HandOn(std::move(w));
    return absl::OkStatus();
  }

  void HandOn(PendingWrite w) {
    w.op.agent_id = agent_id_;
    w.op.generation = store_generation_;
    w.memory_generation = memory_generation_;
    w.stream = this;
    {
      std::lock_guard lock(mu_);
      ++inflight_batches_;
      inflight_events_ += w.events;
    }
    Ref();  // returned by the pipeline with the result
    pipeline_->Enqueue(std::move(w));
  }

  // A batch that can never be stored as sent: tell the agent which range to
  // set aside (after the acks of what was handed on before it), then end the
  // stream with the reason.
  absl::Status Reject(uint64_t first, uint64_t last, const absl::Status& why) {
    CollectorMessage msg;
    msg.mutable_reject()->set_from_seq(first);
    msg.mutable_reject()->set_to_seq(last);
    msg.mutable_reject()->set_reason(std::string(why.message()));
    Send(std::move(msg));
    return why;
  }

  // Counts and logs the reason a stream ends, once.
  void Account(const absl::Status& st) {
    const std::string who = agent_id_.empty() ? "(no hello)" : agent_id_;
    if (absl::IsAborted(st)) {
      c_->counters().superseded_streams++;
      LogInfo("agent ", who, ": ", st.message());
    } else if (absl::IsUnavailable(st) || absl::IsResourceExhausted(st) || absl::IsInternal(st) ||
               absl::IsDataLoss(st) || absl::IsUnknown(st)) {
      c_->counters().store_errors++;
      LogError("agent ", who, ": ", st.ToString());
    } else if (!absl::IsUnauthenticated(st) && !absl::IsCancelled(st)) {
      c_->counters().rejected_streams++;
      LogWarning("agent ", who, ": stream refused: ", st.ToString());
    }
  }

  // One write outstanding; a newer cumulative ack replaces one not yet sent.
  void Send(CollectorMessage msg) {
    std::unique_lock lock(mu_);
    if (msg.has_hello_ack()) {
      hello_ = std::move(msg);
      has_hello_ = true;
    } else if (msg.has_reject()) {
      reject_ = std::move(msg);
      has_reject_ = true;
    } else {
      pending_ack_ = std::max(pending_ack_, msg.ack().up_to());
    }
    Step(std::move(lock));
  }

  // Moves the next message into out_; true when a write should start. Acks
  // go before a reject, which waits for what was handed on before it.
  bool PrepareNextLocked() {
    if (has_hello_) {
      out_ = std::move(hello_);
      has_hello_ = false;
    } else if (pending_ack_ != 0) {
      out_.Clear();
      out_.mutable_ack()->set_up_to(pending_ack_);
      pending_ack_ = 0;
    } else if (has_reject_ && inflight_batches_ == 0) {
      out_ = std::move(reject_);
      has_reject_ = false;
    } else {
      return false;
    }
    return true;
  }

  // The one place the stream decides what to do next: write, read on, or
  // finish (once nothing is in flight, written or being handled). `end`, if
  // not OK, ends the stream (the first reason wins). Releases `lock` before
  // any gRPC call, since a reaction may run inline on this thread.
  void Step(std::unique_lock<std::mutex> lock, const absl::Status& end = absl::OkStatus()) {
    const bool first_end = !end.ok() && !end_.has_value();
    if (first_end) end_ = end;
    bool write = false, read = false, finish = false;
    grpc::Status status;
    if (!finished_) {
      if (!writing_ && !write_broken_ && PrepareNextLocked()) write = writing_ = true;
      const bool ending = end_.has_value() || read_closed_ || cancelled_;
      if (ending) {
        if (inflight_batches_ == 0 && !writing_ && !handling_) {
          finish = finished_ = true;
          status = end_.has_value() ? ToGrpcStatus(*end_)
                   : read_closed_   ? grpc::Status::OK
                                    : grpc::Status::CANCELLED;
        }
      } else if (!reading_ && !handling_) {
        bool room = !waiting_room_ && inflight_batches_ < c_->options().max_batches_in_flight &&
                    inflight_events_ < c_->options().max_events_in_flight;
        if (room && !pipeline_->RoomOrWait(this)) {
          room = false;
          waiting_room_ = true;
        }
        const auto now = std::chrono::steady_clock::now();
        if (room) {
          read = reading_ = true;
          if (blocked_since_) {
            c_->counters().backpressure_us +=
                std::chrono::duration_cast<std::chrono::microseconds>(now - *blocked_since_)
                    .count();
            blocked_since_.reset();
          }
        } else if (!blocked_since_) {
          blocked_since_ = now;
        }
      }
    }
    lock.unlock();
    if (first_end) Account(end);
    // Finish last: OnDone (and the delete) may follow at once.
    if (write) StartWrite(&out_);
    if (read) StartNextRead();
    if (finish) Finish(status);
  }

  // Only while no read is in flight and nothing is being handled.
  void StartNextRead() {
#if defined(__SANITIZE_THREAD__)
    // Debian's libprotobuf is built without ThreadSanitizer, under which its
    // headers lay map fields out differently (map_field.h): the library's
    // arena cleanup of a map would read the wrong fields. Heap messages only.
    in_ = &heap_in_;
#else
    arena_.Reset();
    in_ = google::protobuf::Arena::CreateMessage<AgentMessage>(&arena_);
#endif
    StartRead(in_);
  }

  Collector* const c_;
  IngestPipeline* const pipeline_;
  grpc::CallbackServerContext* const ctx_;
  std::atomic<int> refs_{1};  // gRPC's, returned in OnDone
  // Set while handling (handling_ excludes every other reader of them).
  std::string agent_id_;
  uint64_t memory_generation_ = 0;
  uint64_t store_generation_ = 0;
  bool watched_ = false;
  // The message read, owned by the read in flight or the handling (reading_).
  // It lives on an arena that each read starts afresh: a batch is a oneof
  // field, which parsing would otherwise free and allocate event by event.
  google::protobuf::Arena arena_;
  AgentMessage heap_in_;  // instead, under ThreadSanitizer
  AgentMessage* in_ = nullptr;
  std::atomic<bool> commit_failed_{false};

  std::mutex mu_;  // std::mutex: visible to ThreadSanitizer
  bool reading_ = false;
  bool handling_ = false;
  bool read_closed_ = false;
  bool cancelled_ = false;
  bool waiting_room_ = false;
  size_t inflight_batches_ = 0;
  size_t inflight_events_ = 0;
  std::optional<std::chrono::steady_clock::time_point> blocked_since_;
  std::optional<absl::Status> end_;
  bool finished_ = false;
  CollectorMessage out_;  // owned by the write in flight (writing_)
  bool writing_ = false;
  bool write_broken_ = false;
  CollectorMessage hello_;
  bool has_hello_ = false;
  CollectorMessage reject_;
  bool has_reject_ = false;
  uint64_t pending_ack_ = 0;
};

void IngestPipeline::Enqueue(PendingWrite w) {
  std::unique_lock lock(mu_);
  if (committer_done_) {
    lock.unlock();
    IngestReactor* stream = w.stream;
    stream->OnCommitted(absl::UnavailableError("collector shutting down; nothing was committed"),
                        w);
    stream->Unref();
    return;
  }
  queued_events_ += w.events;
  queue_.push_back(std::move(w));
  c_->counters().queued_ops = queue_.size();
  c_->counters().queued_events = queued_events_;
  lock.unlock();
  cv_.notify_all();
}

bool IngestPipeline::RoomOrWait(IngestReactor* stream) {
  std::lock_guard lock(mu_);
  if (committer_done_ || queued_events_ < options_.max_queued_events) return true;
  stream->Ref();
  waiters_.push_back(stream);
  return false;
}

void IngestPipeline::ResumeWaiters(std::vector<IngestReactor*> waiters) {
  for (IngestReactor* r : waiters) {
    r->OnRoom();
    r->Unref();
  }
}

void IngestPipeline::RunCommitter() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and everything queued is committed
    std::vector<PendingWrite> group;
    size_t events = 0;
    while (!queue_.empty() && group.size() < options_.max_ops_per_commit &&
           (group.empty() || events + queue_.front().events <= options_.max_events_per_commit)) {
      events += queue_.front().events;
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_events_ -= events;
    c_->counters().queued_ops = queue_.size();
    c_->counters().queued_events = queued_events_;
    std::vector<IngestReactor*> waiters;
    if (queued_events_ < options_.max_queued_events) waiters.swap(waiters_);
    lock.unlock();
    // Readers resume while this group commits.
    ResumeWaiters(std::move(waiters));
    Commit(&group);
    lock.lock();
  }
  committer_done_ = true;
  std::vector<IngestReactor*> waiters;
  waiters.swap(waiters_);
  lock.unlock();
  ResumeWaiters(std::move(waiters));
}

void IngestPipeline::Commit(std::vector<PendingWrite>* group) {
  std::vector<absl::Status> results(group->size());
  std::vector<store::WriteOp> ops;
  std::vector<size_t> at;
  ops.reserve(group->size());
  for (size_t i = 0; i < group->size(); ++i) {
    PendingWrite& w = (*group)[i];
    if (w.stream->CommitFailed()) {
      results[i] = absl::CancelledError("an earlier write of the stream failed");
    } else if (!c_->streams().IsCurrent(w.op.agent_id, w.memory_generation)) {
      results[i] = absl::AbortedError("superseded by a newer stream of the same agent");
    } else {
      at.push_back(i);
      ops.push_back(std::move(w.op));
    }
  }
  if (!ops.empty()) {
    const auto start = std::chrono::steady_clock::now();
    const uint64_t cpu_start = ThreadCpuMicros();
    absl::StatusOr<std::vector<absl::Status>> written = c_->store().Write(ops);
    const uint64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    CollectorCounters& n = c_->counters();
    n.commits++;
    n.commit_ops += ops.size();
    n.commit_us += us;
    n.commit_cpu_us += ThreadCpuMicros() - cpu_start;
    n.last_commit_us = us;
    if (written.ok() && written->size() != ops.size()) {
      written = absl::InternalError(
          absl::StrCat("store returned ", written->size(), " results for ", ops.size(), " writes"));
    }
    for (size_t k = 0; k < at.size(); ++k) {
      // The whole write failed: retryable for the agent, whatever the cause.
      results[at[k]] = written.ok() ? (*written)[k]
                                    : absl::UnavailableError(absl::StrCat(
                                          "store write failed: ", written.status().ToString()));
    }
    // Counted once, after the commit and before any ack names it.
    for (size_t k = 0; k < at.size(); ++k) {
      const PendingWrite& w = (*group)[at[k]];
      if (!results[at[k]].ok()) continue;
      const store::WriteOp& op = ops[k];
      if (op.events.empty()) {
        uint64_t gap = op.gap_to - op.gap_from + 1;
        n.gap_events += gap;
        LogWarning("agent ", op.agent_id, " declared ", gap, " events lost (", op.gap_cause,
                   ", seq ", op.gap_from, "..", op.gap_to, ")");
        continue;
      }
      n.batches++;
      n.events += w.events;
      n.fields_truncated += w.truncated;
      n.cookie_verdicts += w.cookies;
      for (Category cat : w.categories) n.verdicts_by_category[static_cast<size_t>(cat)]++;
    }
  }
  for (size_t i = 0; i < group->size(); ++i) {
    IngestReactor* stream = (*group)[i].stream;
    stream->OnCommitted(results[i], (*group)[i]);
    stream->Unref();
  }
}

void IngestPipeline::RunClaimChecks() {
  std::unique_lock lock(mu_);
  auto next_prune = std::chrono::steady_clock::now();
  for (;;) {
    cv_.wait_for(lock, options_.claim_check_interval, [this] { return stopping_; });
    if (stopping_) return;
    if (options_.retention.count() > 0 && std::chrono::steady_clock::now() >= next_prune) {
      next_prune = std::chrono::steady_clock::now() + options_.retention_interval;
      lock.unlock();
      Prune();
      lock.lock();
      if (stopping_) return;
    }
    std::vector<IngestReactor*> streams(watched_.begin(), watched_.end());
    for (IngestReactor* r : streams) r->Ref();
    lock.unlock();
    for (IngestReactor* r : streams) {
      std::string agent;
      uint64_t generation = 0;
      if (r->IdleClaim(&agent, &generation)) {
        absl::StatusOr<uint64_t> now = c_->store().StreamGeneration(agent);
        if (!now.ok()) {
          LogWarning("claim check of agent ", agent, ": ", now.status().ToString());
        } else if (*now != generation) {
          r->Supersede();
        }
      }
      r->Unref();
    }
    lock.lock();
  }
}

void IngestPipeline::Prune() {
  const int64_t cutoff =
      NowMs() - std::chrono::duration_cast<std::chrono::milliseconds>(options_.retention).count();
  absl::StatusOr<uint64_t> pruned = c_->store().PruneBefore(cutoff);
  if (!pruned.ok()) {
    c_->counters().store_errors++;
    LogWarning("retention: ", pruned.status().ToString());
    return;
  }
  c_->counters().pruned_events += *pruned;
  if (*pruned > 0) LogInfo("retention: deleted ", *pruned, " events last seen before ", cutoff);
}

class Collector::IngestService : public idflow::v1::Ingest::CallbackService {
 public:
  explicit IngestService(Collector* c) : c_(c) {}
  grpc::ServerBidiReactor<AgentMessage, CollectorMessage>* Stream(
      grpc::CallbackServerContext* ctx) override {
    return new IngestReactor(c_, c_->pipeline_.get(), ctx);
  }

 private:
  Collector* const c_;
};

namespace {

// Page tokens are opaque to clients; here they are "o<offset>".
constexpr size_t kDefaultPageSize = 500;
constexpr size_t kMaxPageSize = 1000;
// Stop filling a page well under the 4 MiB default message limit.
constexpr size_t kMaxResponseBytes = 3u << 20;

absl::StatusOr<size_t> DecodePageToken(const std::string& token) {
  if (token.empty()) return 0;
  size_t offset = 0;
  if (token[0] != 'o' || !absl::SimpleAtoi(absl::string_view(token).substr(1), &offset)) {
    return absl::InvalidArgumentError("bad page_token");
  }
  return offset;
}

size_t PageSize(uint32_t requested, uint32_t filter_limit) {
  size_t n = requested ? requested : (filter_limit ? filter_limit : kDefaultPageSize);
  return std::min(n, kMaxPageSize);
}

}  // namespace

class Collector::QueryService : public idflow::v1::Query::CallbackService {
 public:
  QueryService(Collector* c, std::string token) : c_(c), token_(std::move(token)) {}

  grpc::ServerUnaryReactor* ListVerdicts(grpc::CallbackServerContext* ctx,
                                         const idflow::v1::ListVerdictsRequest* req,
                                         idflow::v1::ListVerdictsResponse* resp) override {
    return Answer(ctx, [&] {
      return ListPage(
          *req, [&](const store::VerdictFilter& f) { return c_->store().QueryVerdicts(f); },
          resp->mutable_verdicts(), resp->mutable_next_page_token());
    });
  }

  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* ctx,
                                       const idflow::v1::ListEventsRequest* req,
                                       idflow::v1::ListEventsResponse* resp) override {
    return Answer(ctx, [&] {
      return ListPage(
          *req, [&](const store::VerdictFilter& f) { return c_->store().QueryEvents(f); },
          resp->mutable_events(), resp->mutable_next_page_token());
    });
  }

  grpc::ServerUnaryReactor* Count(grpc::CallbackServerContext* ctx,
                                  const idflow::v1::CountRequest* req,
                                  idflow::v1::CountResponse* resp) override {
    return Answer(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(uint64_t n, c_->store().CountEvents(collector::FromProto(req->filter())));
      resp->set_events(n);
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                       const idflow::v1::ListAgentsRequest* req,
                                       idflow::v1::ListAgentsResponse* resp) override {
    return Answer(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(size_t offset, DecodePageToken(req->page_token()));
      size_t page = PageSize(req->page_size(), 0);
      ASSIGN_OR_RETURN(auto agents, c_->store().ListAgents(req->device(), page + 1, offset));
      Paginate(agents, page, offset, resp->mutable_agents(), resp->mutable_next_page_token());
      return absl::OkStatus();
    });
  }

 private:
  // Every Query call: authorize, run, and map the status in one place.
  template <typename Body>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, Body body) {
    auto* reactor = ctx->DefaultReactor();
    absl::Status st = Authorize(ctx);
    if (st.ok()) st = body();
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }

  // One page of a filtered listing (verdict groups or events).
  template <typename Request, typename Query, typename Repeated>
  static absl::Status ListPage(const Request& req, Query query, Repeated* out,
                               std::string* next_token) {
    store::VerdictFilter f = collector::FromProto(req.filter());
    ASSIGN_OR_RETURN(f.offset, DecodePageToken(req.page_token()));
    size_t page = PageSize(req.page_size(), req.filter().limit());
    f.limit = page + 1;
    ASSIGN_OR_RETURN(auto items, query(f));
    Paginate(items, page, f.offset, out, next_token);
    return absl::OkStatus();
  }

  absl::Status Authorize(grpc::CallbackServerContext* ctx) {
    if (token_.empty()) return absl::OkStatus();
    std::string bearer = BearerToken(Metadata(ctx, "authorization"));
    if (!bearer.empty() && TokensMatch(bearer, token_)) return absl::OkStatus();
    c_->counters().unauthenticated++;
    return absl::UnauthenticatedError("bad or missing token");
  }

  // Adds items while the response stays under kMaxResponseBytes; the next
  // page starts at the first item left out.
  template <typename Item, typename Repeated>
  static void Paginate(const std::vector<Item>& items, size_t page, size_t offset, Repeated* out,
                       std::string* next_token) {
    size_t bytes = 0, taken = 0;
    for (; taken < items.size() && taken < page; ++taken) {
      auto msg = ToProto(items[taken]);
      size_t size = msg.ByteSizeLong() + 8;  // field tag and length
      if (taken > 0 && bytes + size > kMaxResponseBytes) break;
      bytes += size;
      *out->Add() = std::move(msg);
    }
    if (taken < items.size()) *next_token = absl::StrCat("o", offset + taken);
  }

  Collector* const c_;
  const std::string token_;
};

namespace {

// HOST:PORT from the listen address when it names a port; with port 0, the
// process id and a counter keep collectors of one host (or one test) apart.
std::string DefaultCollectorId(const std::string& listen) {
  static std::atomic<int> started{0};
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "localhost");
  }
  std::string port = listen.substr(listen.rfind(':') + 1);
  if (!port.empty() && port != "0") return absl::StrCat(host, ":", port);
  return absl::StrCat(host, ":pid", ::getpid(), "-", started++);
}

// The SQLite file `url` names (OpenStore's grammar: sqlite:PATH,
// sqlite://PATH or a bare path), or "" for another back-end.
std::string SqlitePath(const std::string& url) {
  if (absl::StartsWith(url, "sqlite:")) {
    std::string path = url.substr(7);
    return absl::StartsWith(path, "//") ? path.substr(2) : path;
  }
  return url.find("://") == std::string::npos ? url : "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Collector>> Collector::Start(const CollectorOptions& options) {
  if (options.store_url.empty()) return absl::InvalidArgumentError("--store is required");
  if (options.policies_dir.empty()) return absl::InvalidArgumentError("--policies is required");
  std::unique_ptr<store::Store> store;
  if (std::string path = SqlitePath(options.store_url); !path.empty()) {
    // A SQLite file has no stream claims across processes: one collector
    // writes it (a second is refused, naming the holder).
    ASSIGN_OR_RETURN(store, store::SqliteStore::Open(path, {.exclusive_writer = true}));
  } else {
    ASSIGN_OR_RETURN(store, store::OpenStore(options.store_url));
  }
  return Start(options, std::move(store));
}

absl::StatusOr<std::unique_ptr<Collector>> Collector::Start(const CollectorOptions& options,
                                                            std::unique_ptr<store::Store> store) {
  std::unique_ptr<Collector> c(new Collector());
  c->options_ = options;
  if (c->options_.collector_id.empty()) {
    c->options_.collector_id = DefaultCollectorId(options.listen);
  }
  if (options.policies_dir.empty()) return absl::InvalidArgumentError("--policies is required");
  if (store == nullptr) return absl::InvalidArgumentError("no store");
  if (options.max_batches_in_flight == 0 || options.max_events_in_flight == 0 ||
      options.max_queued_events == 0 || options.max_ops_per_commit == 0 ||
      options.max_events_per_commit == 0) {
    return absl::InvalidArgumentError("ingest pipeline bounds must be positive");
  }
  ASSIGN_OR_RETURN(c->policy_, policy::LoadPolicyDir(options.policies_dir));

  c->auth_.shared_token = options.auth_token;
  if (!options.agent_tokens_file.empty()) {
    ASSIGN_OR_RETURN(c->auth_.agent_token_sha256, LoadAgentTokens(options.agent_tokens_file));
  }
  c->auth_.mtls = !options.tls_client_ca.empty();
  if (!IsLoopbackListen(options.listen) && !c->auth_.Any() &&
      !options.allow_unauthenticated_ingest) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing to accept agents on ", options.listen,
                     " without credentials: give --tls-client-ca (mutual TLS), --agent-tokens or "
                     "--auth-token-file, or --allow-unauthenticated-ingest to accept anyone"));
  }
  c->store_ = std::move(store);
  c->pipeline_ = std::make_unique<IngestPipeline>(c.get(), c->options_);
  c->pipeline_->Start();

  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ASSIGN_OR_RETURN(std::string cert, ReadFile(options.tls_cert));
    ASSIGN_OR_RETURN(std::string key, ReadFile(options.tls_key));
    ssl.pem_key_cert_pairs.push_back({key, cert});
    if (!options.tls_client_ca.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(options.tls_client_ca));
      ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(ssl);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  c->ingest_ = std::make_unique<IngestService>(c.get());
  c->query_ = std::make_unique<QueryService>(c.get(), options.auth_token);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &c->grpc_port_);
  builder.RegisterService(c->ingest_.get());
  builder.RegisterService(c->query_.get());
  builder.SetMaxReceiveMessageSize(8 << 20);
  c->server_ = builder.BuildAndStart();
  if (!c->server_ || c->grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  if (!options.http.empty()) {
    http::HttpServerOptions ho;
    ho.listen = options.http;
    ho.bearer_token = options.auth_token;
    ASSIGN_OR_RETURN(c->http_, http::HttpServer::Create(ho));
    RegisterHttpRoutes(c->http_.get(), c.get());
    RETURN_IF_ERROR(c->http_->Start());
    c->http_port_ = c->http_->port();
  }
  return c;
}

Collector::~Collector() { Shutdown(); }

void Collector::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    if (http_) http_->Stop();
    // Agents hold streams open indefinitely: cancel them after a short grace,
    // in which what they handed on is committed and acked.
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    // Commits what is still queued (no ack can name it any more: the agents
    // resend from stored_up_to), then fails anything later.
    if (pipeline_) pipeline_->Stop();
  });
}

void Collector::Wait() {
  if (server_) server_->Wait();
}

std::string Collector::MetricsText() {
  std::string out;
  absl::StrAppend(&out,
                  "# HELP idflow_build_info The collector's build (always 1).\n"
                  "# TYPE idflow_build_info gauge\n"
                  "idflow_build_info{version=\"",
                  Version(), "\",commit=\"", GitCommit(), "\",build_type=\"", BuildType(),
                  "\"} 1\n");
#define IDFLOW_COUNTER_TEXT_(member, type, name, help)                                    \
  absl::StrAppend(&out, "# HELP " name " " help "\n# TYPE " name " " #type "\n" name " ", \
                  counters_.member.load(), "\n");
  IDFLOW_COLLECTOR_COUNTERS(IDFLOW_COUNTER_TEXT_)
#undef IDFLOW_COUNTER_TEXT_
  absl::StrAppend(&out,
                  "# HELP idflow_collector_verdicts_total Verdicts committed, by category and "
                  "finding.\n",
                  "# TYPE idflow_collector_verdicts_total counter\n");
  for (const CategoryInfo& info : kCategories) {
    absl::StrAppend(&out, "idflow_collector_verdicts_total{verdict=\"", info.name, "\",finding=\"",
                    FindingName(info.finding), "\"} ",
                    counters_.verdicts_by_category[static_cast<size_t>(info.category)].load(),
                    "\n");
  }
  // Per-agent loss, as the agents report it: "no violations" must never mean
  // "no data". Bounded by the number of agents one collector serves.
  auto agents = store_->ListAgents("", 10000, 0);
  if (agents.ok()) {
    absl::StrAppend(&out,
                    "# HELP idflow_agent_dropped_events Events an agent reports lost, by cause "
                    "(cumulative).\n# TYPE idflow_agent_dropped_events gauge\n");
    for (const auto& a : *agents) {
      const std::pair<const char*, uint64_t> causes[] = {{"tap", a.drops.tap},
                                                         {"ingress", a.drops.ingress},
                                                         {"spool", a.drops.spool},
                                                         {"disk", a.drops.disk},
                                                         {"dead_letter", a.drops.dead_letter}};
      for (const auto& [cause, n] : causes) {
        absl::StrAppend(&out, "idflow_agent_dropped_events{agent=\"", a.agent_id, "\",device=\"",
                        JsonEscape(a.device_id), "\",cause=\"", cause, "\"} ", n, "\n");
      }
    }
    absl::StrAppend(&out,
                    "# HELP idflow_agent_stored_up_to Highest sequence number accounted for "
                    "(stored or declared lost).\n# TYPE idflow_agent_stored_up_to gauge\n");
    for (const auto& a : *agents) {
      absl::StrAppend(&out, "idflow_agent_stored_up_to{agent=\"", a.agent_id, "\"} ",
                      a.stored_up_to, "\n");
    }
    // The version each agent sent in its last hello (for fleet upgrades).
    absl::StrAppend(&out,
                    "# HELP idflow_agent_info The version an agent reported in its last hello "
                    "(always 1).\n# TYPE idflow_agent_info gauge\n");
    for (const auto& a : *agents) {
      absl::StrAppend(&out, "idflow_agent_info{agent=\"", a.agent_id, "\",device=\"",
                      JsonEscape(a.device_id), "\",version=\"", JsonEscape(a.agent_version),
                      "\"} 1\n");
    }
  }
  return out;
}

}  // namespace idflow::collector

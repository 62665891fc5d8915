// Streams spooled events to a collector over Ingest.Stream (gRPC callback
// API): hello (with the drop counters), then from HelloAck.stored_up_to + 1
// batches and gaps, contiguous, with one write outstanding; cumulative acks
// move the spool's ack mark. A range the spool no longer holds (purged,
// dead-lettered) goes out as a SeqGap before the batches that follow it. Drop
// counters go out when they change (at most every drops_min_interval) and
// every drops_interval.
//
// Failures: retryable statuses (UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN, CANCELLED) back off
// (exponential, jittered) and fail over to the next collector address,
// resending from what the collector stored: it stores idempotently on (agent
// id, seq), so delivery is at least once on the wire and exactly once in the
// store. A Reject sets its range aside (dead-letter file, counted, declared as
// a DEAD_LETTER gap on the next stream). Any other status is logged once per
// distinct reason, counted, and retried only after fatal_backoff.
//
// Threads: one control thread decides what to write; the reactor's callbacks
// only record what happened, so no gRPC call is made while holding a lock
// that a callback needs.
#ifndef IDFLOW_AGENT_SENDER_H_
#define IDFLOW_AGENT_SENDER_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/security/credentials.h>
#include "agent/dead_letter.h"
#include "agent/drop_counters.h"
#include "agent/spool.h"

#include "idflow/v1/ingest.grpc.pb.h"

namespace idflow::agent {

struct SenderOptions {
  std::vector<std::string> collectors;  // HOST:PORT, in failover order
  size_t batch_events = 256;
  size_t batch_bytes = 1 << 20;
  // Fewer, larger batches at low rates: a batch short of batch_events waits
  // until its first event has been spooled this long (0: send at once).
  std::chrono::milliseconds batch_linger{0};
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{30000};
  std::chrono::milliseconds hello_timeout{10000};
  // After a failed write, how long the collector's last messages (a Reject
  // before its error status) may take to arrive before the call is cancelled.
  std::chrono::milliseconds drain_timeout{2000};
  // After a non-retryable status (e.g. PERMISSION_DENIED): retry this late.
  std::chrono::milliseconds fatal_backoff{300000};
  std::chrono::milliseconds drops_interval{10000};
  std::chrono::milliseconds drops_min_interval{1000};
  // Cumulative loss accounting sent in the hello and on the stream; when
  // null, the spool's own counts of this run are sent.
  DropCounterStore* drops = nullptr;
  uint64_t dead_letter_max_bytes = 16ull << 20;
  idflow::v1::Device device;
  std::string agent_version;  // sent in the hello; empty: this build's VersionString()
  // Channel credentials; insecure when null.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Non-empty: sent as "authorization: Bearer <token>" on every Ingest stream
  // (the collector requires it when it holds tokens).
  std::string bearer_token;
};

struct SenderStats {
  uint64_t batches_sent = 0;
  uint64_t events_sent = 0;
  uint64_t acked = 0;
  uint64_t connects = 0;
  uint64_t failures = 0;
  uint64_t gaps_sent = 0;
  uint64_t drops_sent = 0;
  uint64_t rejects = 0;
  uint64_t dead_lettered = 0;
  uint64_t fatal_errors = 0;  // non-retryable stream ends
  std::string last_error;
  bool connected = false;
  std::string collector;
};

class Sender {
 public:
  Sender(SenderOptions options, Spool* spool);
  ~Sender();  // Stop()

  void Start();
  // Cancels the stream and joins the control thread.
  void Stop();
  // Events up to `last_seq` are spooled: send them when the stream is idle.
  void Notify(uint64_t last_seq);
  SenderStats stats() const;
  // Waits until the collector acked `seq` (or the timeout passes).
  bool WaitAcked(uint64_t seq, std::chrono::milliseconds timeout);

  class Stream;

 private:
  friend class Stream;
  void RunLoop();
  enum class Outcome { kNoHello, kRetryable, kFatal };
  // One connection attempt.
  Outcome RunStream(const std::string& address);
  idflow::v1::DropCounters CurrentDrops() const;
  // Sets a rejected range aside: dead-letter file, counters, spool lost range.
  void DeadLetter(uint64_t from, uint64_t to, const std::string& reason);
  static bool Retryable(grpc::StatusCode code);
  // Reactor callbacks.
  void OnWriteDone(bool ok);
  void OnMessage(const idflow::v1::CollectorMessage& msg);
  void OnReadFailed();
  void OnStreamDone(const grpc::Status& status);

  const SenderOptions options_;
  Spool* const spool_;
  // std::mutex rather than absl::Mutex: ThreadSanitizer sees pthread locks,
  // not those inside Debian's uninstrumented abseil.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool stream_done_ = true;
  grpc::Status last_status_;
  bool write_in_flight_ = false;
  bool broken_ = false;
  bool reads_done_ = false;
  bool write_failed_ = false;
  bool hello_acked_ = false;
  uint64_t sent_up_to_ = 0;
  uint64_t latest_spooled_ = 0;
  uint64_t acked_ = 0;
  bool outage_reported_ = false;
  bool has_reject_ = false;
  idflow::v1::Reject reject_;
  std::string fatal_reported_;  // last non-retryable reason logged
  SenderStats stats_;
  DeadLetterFile dead_letter_;
  std::thread thread_;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_SENDER_H_

// Streams spooled events to a collector over Ingest.Stream (gRPC callback
// API): hello, then batches with one write outstanding; cumulative acks move
// the spool's ack mark. On failure it backs off (exponential, jittered) and
// fails over to the next collector address, resending from the last ack: the
// collector stores idempotently on (agent id, seq), so delivery is at least
// once on the wire and exactly once in the store.
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
#include "agent/spool.h"

#include "idflow/v1/ingest.grpc.pb.h"

namespace idflow::agent {

struct SenderOptions {
  std::vector<std::string> collectors;  // HOST:PORT, in failover order
  size_t batch_events = 256;
  size_t batch_bytes = 1 << 20;
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{30000};
  std::chrono::milliseconds hello_timeout{10000};
  idflow::v1::Device device;
  std::string agent_version = "0.1.0";
  // Channel credentials; insecure when null.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

struct SenderStats {
  uint64_t batches_sent = 0;
  uint64_t events_sent = 0;
  uint64_t acked = 0;
  uint64_t connects = 0;
  uint64_t failures = 0;
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
  // One connection attempt; returns true when the hello was acknowledged.
  bool RunStream(const std::string& address);
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
  bool hello_acked_ = false;
  uint64_t sent_up_to_ = 0;
  uint64_t latest_spooled_ = 0;
  uint64_t acked_ = 0;
  bool outage_reported_ = false;
  SenderStats stats_;
  std::thread thread_;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_SENDER_H_

// Durable on-disk queue of events between ingress and the gRPC sender,
// after osquery's buffered logger: persist, purge oldest, resume after restart.
//
// Layout of the spool directory:
//   seg-<first seq, 20 digits>.log  records: u32 length, u32 crc32, Event bytes
//   acked                           highest seq the collector committed
//   agent_id                        this agent's id, made on first start
// A torn tail (power loss mid-write) is detected by length/CRC and truncated
// on open. Appends are fdatasync'ed per batch when `sync` is on.
#ifndef IDFLOW_AGENT_SPOOL_H_
#define IDFLOW_AGENT_SPOOL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <mutex>
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "idflow/v1/event.pb.h"

namespace idflow::agent {

struct SpoolOptions {
  std::string dir;
  uint64_t max_bytes = 256ull << 20;    // on-disk bound; oldest segments go first
  uint64_t segment_bytes = 4ull << 20;  // roll to a new segment past this
  bool sync = true;                     // fdatasync after every Append
};

struct SpoolStats {
  uint64_t next_seq = 1;
  uint64_t acked = 0;
  uint64_t bytes = 0;
  uint64_t segments = 0;
  uint64_t dropped = 0;  // unacked events purged because the spool was full
};

class Spool {
 public:
  static absl::StatusOr<std::unique_ptr<Spool>> Open(const SpoolOptions& options);
  ~Spool();

  const std::string& agent_id() const { return agent_id_; }

  // Assigns consecutive sequence numbers (and the agent id) to `events`, then
  // persists them. On error nothing is assigned.
  absl::Status Append(std::vector<idflow::v1::Event>* events);

  // Up to `max_events` events with seq > after, in order.
  absl::StatusOr<std::vector<idflow::v1::Event>> ReadAfter(uint64_t after, size_t max_events,
                                                           size_t max_bytes);

  // Everything with seq <= up_to is stored by the collector: forget it.
  absl::Status Ack(uint64_t up_to);

  SpoolStats stats() const;
  uint64_t acked() const;
  uint64_t last_seq() const;

 private:
  struct Segment {
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;  // 0 when empty
    uint64_t bytes = 0;
    std::string path;
  };
  explicit Spool(SpoolOptions options) : options_(std::move(options)) {}
  absl::Status Recover();
  absl::Status RecoverSegment(Segment* seg);
  absl::Status OpenNewSegment(uint64_t first_seq);
  void EnforceBound();

  const SpoolOptions options_;
  std::string agent_id_;
  mutable std::mutex mu_;  // std::mutex: visible to ThreadSanitizer
  std::vector<Segment> segments_;
  int write_fd_ = -1;
  uint64_t next_seq_ = 1;
  uint64_t acked_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_SPOOL_H_

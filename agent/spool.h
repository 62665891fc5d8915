// Durable on-disk queue of events between ingress and the gRPC sender,
// after osquery's buffered logger: persist, purge oldest, resume after restart.
//
// Layout of the spool directory:
//   seg-<first seq, 20 digits>.log  records: u32 length, u32 crc32, Event bytes
//   acked                           highest seq the collector committed
//   lost                            seq ranges set aside (dead letter), text
//   agent_id                        this agent's id, made on first start
// A torn tail (power loss mid-write) is detected by length/CRC and truncated
// on open.
//
// Durability: every Append write()s its records before it returns, so they
// survive a kill -9 of the agent (the page cache belongs to the kernel).
// fdatasync, the power-loss boundary, is group-committed: at most every
// `sync_interval` (0 = after every Append). A power cut can lose at most the
// last interval; those seqs come back as a gap the sender declares.
//
// Accounting: every seq the spool hands out is acked by the collector, still
// held, or in a lost range (purged when full: DROP_CAUSE_SPOOL; refused by the
// collector: DROP_CAUSE_DEAD_LETTER). A purged event a Read had already
// handed to the sender may be in flight and then stored: it is counted only
// once the sender declares it as a gap (GapDeclared), and forgotten when
// acked (file `purged`, "seq tap-events" lines, so a restart keeps them). Events an Append could
// not write get no seq and are counted as DROP_CAUSE_DISK. Counters count tap events (TapEvents():
// an aggregated event weighs its count); SpoolStats count spooled events (seqs). After a write
// failure the spool backs off (exponential, capped): Appends meanwhile fail fast, without I/O.
#ifndef IDFLOW_AGENT_SPOOL_H_
#define IDFLOW_AGENT_SPOOL_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/drop_counters.h"
#include "idflow/v1/event.pb.h"

namespace idflow::agent {

// The spool's file writes, replaceable so tests can inject ENOSPC and EIO
// where no tiny filesystem can be mounted. Same contract as write(2) and
// fdatasync(2): -1 with errno set on failure.
struct SpoolIo {
  std::function<ssize_t(int fd, const void* buf, size_t n)> write;
  std::function<int(int fd)> sync;
  static SpoolIo Posix();
};

struct SpoolOptions {
  std::string dir;
  uint64_t max_bytes = 256ull << 20;  // on-disk bound of the segments; oldest go first
  // Roll to a new segment past this. 0: min(4 MiB, max_bytes / 4), at least
  // 4 KiB, so that purging one segment frees a quarter of the bound.
  uint64_t segment_bytes = 0;
  bool sync = true;  // false: never fdatasync (tests, benchmarks)
  // Group commit: fdatasync at most this often; 0 = after every Append.
  std::chrono::milliseconds sync_interval{200};
  // Backoff after a failed write: doubles from min to max, reset on success.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{30000};
  SpoolIo io = SpoolIo::Posix();
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
  // Where purged (spool) and unwritable (disk) events are counted; optional.
  DropCounterStore* drops = nullptr;
  // The `acked` file is rewritten (write, fsync, rename) at most this often,
  // and at once before a segment is freed, when next_seq_ jumps, and at
  // Sync()/close. Between saves it may lag the collector's acks: harmless,
  // since the sender resumes from the collector's stored_up_to and the spool
  // never frees a segment past the saved mark. 0: on every Ack.
  std::chrono::milliseconds ack_persist_interval{1000};
};

struct SpoolStats {
  uint64_t next_seq = 1;
  uint64_t acked = 0;
  uint64_t bytes = 0;
  uint64_t segments = 0;
  uint64_t dropped = 0;       // unacked events purged because the spool was full
  uint64_t disk_dropped = 0;  // events an Append could not write
  uint64_t write_errors = 0;  // failed write attempts (not fast failures in backoff)
  bool backing_off = false;
};

// A run of seqs the spool will never deliver, and why.
struct SeqRange {
  uint64_t from = 0;
  uint64_t to = 0;  // inclusive
  idflow::v1::DropCause cause = idflow::v1::DROP_CAUSE_SPOOL;
};

// What comes next after a given seq: a gap to declare, or events to send.
struct SpoolRead {
  bool is_gap = false;
  SeqRange gap;                           // when is_gap
  std::vector<idflow::v1::Event> events;  // otherwise; empty: nothing yet
};

class Spool {
 public:
  static absl::StatusOr<std::unique_ptr<Spool>> Open(const SpoolOptions& options);
  ~Spool();

  const std::string& agent_id() const { return agent_id_; }
  const std::string& dir() const { return options_.dir; }
  uint64_t segment_bytes() const { return segment_bytes_; }

  // Assigns consecutive sequence numbers (and the agent id) to `events`, then
  // writes them. On error nothing is assigned, the events are counted as
  // disk drops (they are the caller's to discard) and the status says why:
  // ResourceExhausted (disk full, or a batch over the bound), Unavailable
  // (backing off after an earlier failure), Internal (I/O error).
  absl::Status Append(std::vector<idflow::v1::Event>* events);

  // What follows `after`: a gap when after + 1 is lost (purged, dead-lettered,
  // or no longer held), else up to the limits of events, in order, stopping
  // before the next lost range.
  absl::StatusOr<SpoolRead> Read(uint64_t after, size_t max_events, size_t max_bytes);
  // Events only (gaps skipped): up to `max_events` events with seq >
  // max(after, acked()).
  absl::StatusOr<std::vector<idflow::v1::Event>> ReadAfter(uint64_t after, size_t max_events,
                                                           size_t max_bytes);

  // Everything with seq <= up_to is stored (or declared lost) at the
  // collector: forget it, deleting fully acked segments (after saving the
  // mark; see SpoolOptions::ack_persist_interval).
  absl::Status Ack(uint64_t up_to);
  // The sender declared [from, to] lost to the collector (a gap Read
  // returned): purged events in it that had been handed out are counted now.
  void GapDeclared(uint64_t from, uint64_t to);

  // Sets [from, to] aside for good (clamped to unacked, spooled seqs): Read
  // returns it as a gap with `cause`. Persisted.
  // Drops the records with seqs >= `from` from the tail of the last segment
  // (an append a kill -9 cut short), so they can be appended again whole.
  // FailedPrecondition when any of them was acknowledged or they span
  // segments.
  absl::Status DiscardTail(uint64_t from);
  absl::Status MarkLost(uint64_t from, uint64_t to, idflow::v1::DropCause cause);

  // fdatasync now if anything is unsynced, and save the ack mark (e.g. at
  // shutdown).
  absl::Status Sync();

  SpoolStats stats() const;
  uint64_t acked() const;
  uint64_t last_seq() const;
  std::vector<SeqRange> lost() const;

 private:
  struct Segment {
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;  // 0 when empty
    uint64_t bytes = 0;
    std::string path;
    // (first seq, byte offset) of each Append, so a read seeks instead of
    // parsing the segment from its start.
    std::vector<std::pair<uint64_t, uint64_t>> index;
  };
  Spool(SpoolOptions options, uint64_t segment_bytes)
      : options_(std::move(options)), segment_bytes_(segment_bytes) {}
  absl::Status Recover();
  void SyncLoop();
  absl::Status RecoverSegment(Segment* seg);
  absl::Status OpenNewSegment(uint64_t first_seq);
  // Purges oldest segments (never the one being written) until `incoming`
  // more bytes fit the bound.
  void MakeRoom(uint64_t incoming);
  void DropSegmentsAckedLocked();
  absl::Status PersistLostLocked();
  absl::Status PersistPurgedLocked();
  // Removes the purged in-flight events in [from, to]; their tap events.
  uint64_t TakePurgedLocked(uint64_t from, uint64_t to);
  // Seqs in [from, to] not in a lost_ range.
  uint64_t CountableLocked(uint64_t from, uint64_t to) const;
  // Saves acked_ to the `acked` file if it moved since the last save.
  absl::Status PersistAckedLocked();
  absl::Status FailAppendLocked(const std::vector<idflow::v1::Event>& events, absl::Status st);
  void CountDrop(idflow::v1::DropCause cause, uint64_t n);
  uint64_t TotalBytesLocked() const;

  const SpoolOptions options_;
  const uint64_t segment_bytes_;
  std::string agent_id_;
  mutable std::mutex mu_;  // std::mutex: visible to ThreadSanitizer
  std::vector<Segment> segments_;
  std::vector<SeqRange> lost_;  // sorted, disjoint, all > acked_
  // Highest seq a Read may have handed out (a purge at or below it may be
  // in flight to the collector).
  uint64_t handed_out_ = 0;
  // Purged after being handed out, not acked yet: (seq, tap events), sorted.
  // Bounded by what the sender has in flight plus one read.
  std::vector<std::pair<uint64_t, uint64_t>> purged_in_flight_;
  int write_fd_ = -1;
  uint64_t next_seq_ = 1;
  uint64_t acked_ = 0;
  uint64_t acked_saved_ = 0;  // what the `acked` file says
  std::chrono::steady_clock::time_point acked_saved_at_{};
  uint64_t dropped_ = 0;
  uint64_t disk_dropped_ = 0;
  uint64_t write_errors_ = 0;
  bool unsynced_ = false;
  bool stopping_ = false;
  std::condition_variable sync_cv_;
  std::thread sync_thread_;  // group commit when sync_interval > 0
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point retry_at_{};
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_SPOOL_H_

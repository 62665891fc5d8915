// Crash-safe ingress journal: an append-only file where the agent writes each
// event as it is received, before it waits in memory to be aggregated and
// spooled. write(2) without fsync: the page cache survives a kill -9 of the
// agent (a power cut is the spool's fsync boundary, not this one's).
//
// Protocol (io thread):
//   on each received event:   journal.Append(event)
//   on flush, before spooling: journal.MarkFlush(spool.last_seq() + pending.size())
//   after Spool::Append (ok, or failed and counted as disk drops): journal.Reset()
//   at start, before ingress: events = journal.Replay(spool.last_seq());
//                             spool.Append(&events); journal.Reset()
// A marker says "everything before me becomes seqs <= N". Replay drops the
// records before a marker when the spool already reaches N (the crash came
// after the append but before Reset), so nothing is spooled twice.
//
// Ring cursors: an event read from a tap's ring is journaled together with
// the ring's position after it, in one record, so that an agent killed after
// the write but before it released the ring slot does not read it twice: the
// next agent resumes that ring at max(ring's own mark, journaled cursor).
//
// Records: record_io framing; payload = type byte and data: 'E' event,
// 'F' flush marker with a decimal seq, 'R' ring cursor (u64 ring id, u64
// next position, little-endian) followed by an event or by nothing.
#ifndef IDFLOW_AGENT_JOURNAL_H_
#define IDFLOW_AGENT_JOURNAL_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "idflow/v1/event.pb.h"

namespace idflow::agent {

struct JournalReplay {
  std::vector<idflow::v1::Event> events;  // not yet in the spool, in arrival order
  // Highest journaled position per ring id.
  std::vector<std::pair<uint64_t, uint64_t>> cursors;
};

class Journal {
 public:
  // Opens (creating) `path`; what it holds stays there until Reset().
  static absl::StatusOr<std::unique_ptr<Journal>> Open(std::string path);
  ~Journal();

  absl::Status Append(const idflow::v1::Event& event);
  // An event read from ring `ring_id`, after which the ring is at `ring_next`.
  absl::Status Append(const idflow::v1::Event& event, uint64_t ring_id, uint64_t ring_next);
  // A cursor alone (kept across Reset() until the ring is attached again).
  absl::Status AppendCursor(uint64_t ring_id, uint64_t ring_next);
  absl::Status MarkFlush(uint64_t last_seq_after_flush);
  // Everything journaled so far is spooled or counted: start over.
  absl::Status Reset();
  // The journaled events not yet in a spool whose last seq is
  // `spool_last_seq`, in arrival order; a torn tail is ignored.
  absl::StatusOr<std::vector<idflow::v1::Event>> Replay(uint64_t spool_last_seq) const;
  // The same, with the ring cursors.
  absl::StatusOr<JournalReplay> ReplayAll(uint64_t spool_last_seq) const;

  uint64_t bytes() const;
  const std::string& path() const { return path_; }

 private:
  Journal(std::string path, int fd, uint64_t bytes)
      : path_(std::move(path)), fd_(fd), bytes_(bytes) {}
  absl::Status Write(const std::string& payload);

  const std::string path_;
  mutable std::mutex mu_;
  int fd_;
  uint64_t bytes_;
  std::string scratch_;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_JOURNAL_H_

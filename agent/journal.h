// Crash-safe ingress journal: an append-only file where the agent writes each
// event as it is received, before it waits in memory to be aggregated and
// spooled. write(2) without fsync: the page cache survives a kill -9 of the
// agent (a power cut is the spool's fsync boundary, not this one's).
//
// Protocol (io thread):
//   on each received event:   journal.Append(event); the records are held in
//                             memory until Commit(), one write(2) for what a
//                             drain pass read from a ring, before its slots
//                             are freed (an event from the socket: at once)
//   on flush, before spooling: journal.MarkFlush(spool.last_seq() + 1,
//                                                spool.last_seq() + pending.size())
//   after Spool::Append fails (events counted as disk drops): journal.Reset()
//   after Spool::Append succeeds: nothing (the marker says it), or Reset()
//                             once the file passes a size (kept small)
//   at start, before ingress: events = journal.Replay(spool.last_seq());
//                             spool.Append(&events); journal.Reset()
// A marker says "everything before me becomes seqs S..N". Replay drops the
// records before a marker when the spool already reaches N (the crash came
// after the append but before Reset); when the spool ends inside S..N the
// append was cut short, and the spool drops S.. before the replay
// (JournalReplay::torn_from): nothing is spooled twice.
//
// Ring cursors: an event read from a tap's ring is journaled together with
// the ring's position after it, in one record, so that an agent killed after
// the write but before it released the ring slot does not read it twice: the
// next agent resumes that ring at max(ring's own mark, journaled cursor).
//
// Records: record_io framing; payload = type byte and data: 'E' event,
// 'F' flush marker "N" or "N:S" (last and first seq, decimal), 'R' ring cursor (u64 ring id, u64
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
  // Non-zero: the last flush reached the spool only in part (a kill -9 cut
  // its write short); the spool must drop seqs >= torn_from before `events`
  // (which hold that whole flush) are spooled again, or its prefix is twice.
  uint64_t torn_from = 0;
};

class Journal {
 public:
  // Opens (creating) `path`; what it holds stays there until Reset().
  // `buffered`: appends are held in memory until Commit(); otherwise each
  // is written at once.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(std::string path, bool buffered = false);
  ~Journal();

  absl::Status Append(const idflow::v1::Event& event);
  // An event read from ring `ring_id`, after which the ring is at `ring_next`.
  absl::Status Append(const idflow::v1::Event& event, uint64_t ring_id, uint64_t ring_next);
  // A cursor alone (kept across Reset() until the ring is attached again).
  absl::Status AppendCursor(uint64_t ring_id, uint64_t ring_next);
  // The flush about to be appended becomes seqs first..last.
  absl::Status MarkFlush(uint64_t first_seq, uint64_t last_seq);
  // Writes the records appended since the last Commit(), in one write(2).
  // On failure they are discarded (the file stays a valid prefix).
  absl::Status Commit();
  // Everything journaled so far (committed or not) is spooled or counted:
  // start over.
  absl::Status Reset();
  // The journaled events not yet in a spool whose last seq is
  // `spool_last_seq`, in arrival order; a torn tail is ignored.
  absl::StatusOr<std::vector<idflow::v1::Event>> Replay(uint64_t spool_last_seq) const;
  // The same, with the ring cursors.
  absl::StatusOr<JournalReplay> ReplayAll(uint64_t spool_last_seq) const;

  uint64_t bytes() const;
  const std::string& path() const { return path_; }

 private:
  Journal(std::string path, int fd, uint64_t bytes, bool buffered)
      : path_(std::move(path)), fd_(fd), bytes_(bytes), buffered_(buffered) {}
  // Frames `payload` into the uncommitted buffer (written at once unless
  // buffered_).
  absl::Status Write(absl::string_view payload);
  absl::Status CommitLocked();

  const std::string path_;
  mutable std::mutex mu_;
  int fd_;
  uint64_t bytes_;  // committed
  const bool buffered_;
  std::string scratch_;  // framed, not yet written (Commit)
  std::string payload_;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_JOURNAL_H_

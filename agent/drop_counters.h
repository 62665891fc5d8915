// The agent's cumulative loss accounting per DropCause, persisted in the
// spool directory so it survives restarts (the collector keeps the latest
// values, so a reset would read as a negative loss).
//
// File `drops`: one "cause value" line per cause, then "crc <crc32 of the
// lines before>", written by write-rename. Add() is cheap (a mutex and an
// add); the file is rewritten at most once per `persist_interval` from
// Add(), and on Flush() / destruction, so a kill -9 loses at most the
// increments of the last interval.
//
// Tap drops are counted from a ring's shared `dropped` counter and then
// marked reported in the ring; a kill -9 between the two would make the next
// agent count them again. So the file also holds, per ring, the total the
// count includes ("ring:ID upto" lines), written in the same atomic write as
// the counters: the next agent resumes the ring's report from there.
#ifndef IDFLOW_AGENT_DROP_COUNTERS_H_
#define IDFLOW_AGENT_DROP_COUNTERS_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "idflow/v1/event.pb.h"

namespace idflow::agent {

// How many tap events a spooled event stands for (repeats aggregated into
// one event carry a count). Drops are counted in tap events, so that stored
// counts + drops == events emitted.
inline uint64_t TapEvents(const idflow::v1::Event& e) { return e.count() > 0 ? e.count() : 1; }

class DropCounterStore {
 public:
  // Loads `path` when it exists (a corrupt file is an error naming it, so
  // counters are never silently reset); otherwise starts at zero.
  static absl::StatusOr<std::unique_ptr<DropCounterStore>> Open(
      std::string path, std::chrono::milliseconds persist_interval = std::chrono::seconds(1));
  ~DropCounterStore();  // Flush()

  // Thread-safe. DROP_CAUSE_UNSPECIFIED is ignored.
  void Add(idflow::v1::DropCause cause, uint64_t n);
  idflow::v1::DropCounters Snapshot() const;
  uint64_t Get(idflow::v1::DropCause cause) const;
  // Bumped by every Add with n > 0: "changed since I last looked".
  uint64_t version() const;
  // Writes the file if anything changed since the last write.
  absl::Status Flush();

  // `n` tap drops read from ring `ring_id`, whose drop total is then `upto`:
  // counted and written at once, with the mark, before the ring is told.
  absl::Status AddRingDrops(uint64_t ring_id, uint64_t n, uint64_t upto);
  // The ring now says so itself: the mark may go (with the next write).
  void ForgetRing(uint64_t ring_id);
  // The drop total counted for a ring, per this file (0: none); consulted
  // when a ring attaches.
  uint64_t RingDropsCounted(uint64_t ring_id) const;

  using RingMarks = std::map<uint64_t, uint64_t>;
  static std::string Encode(const idflow::v1::DropCounters& c, const RingMarks& marks = {});
  static absl::StatusOr<idflow::v1::DropCounters> Decode(const std::string& text,
                                                         RingMarks* marks = nullptr);
  // Marks kept at most (rings of processes that never come back go first).
  static constexpr size_t kMaxRingMarks = 256;

 private:
  DropCounterStore(std::string path, std::chrono::milliseconds interval)
      : path_(std::move(path)), interval_(interval) {}
  absl::Status FlushLocked();

  const std::string path_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  idflow::v1::DropCounters counters_;
  RingMarks marks_;
  uint64_t version_ = 0;
  uint64_t persisted_version_ = 0;
  bool error_logged_ = false;
  std::chrono::steady_clock::time_point last_persist_{};
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_DROP_COUNTERS_H_

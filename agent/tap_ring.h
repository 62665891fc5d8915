// The agent's side of a tap's event ring (layout and protocol in
// tap_protocol.h): maps the sealed memfd the tap passed with its Hello and
// consumes records one at a time. Everything in the shared page is written by
// another process and is treated as untrusted: records are copied out before
// they are decoded, sizes are validated once at attach, and a memfd that
// could shrink under us (SIGBUS) is refused.
//
// Not thread-safe: one connection's strand owns a reader.
#ifndef IDFLOW_AGENT_TAP_RING_H_
#define IDFLOW_AGENT_TAP_RING_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/tap_protocol.h"

namespace idflow::agent {

class TapRingReader {
 public:
  // Takes ownership of both descriptors (closed on failure too).
  static absl::StatusOr<std::unique_ptr<TapRingReader>> Attach(int memfd, int doorbell_fd);
  ~TapRingReader();
  TapRingReader(const TapRingReader&) = delete;
  TapRingReader& operator=(const TapRingReader&) = delete;

  uint64_t ring_id() const { return ring_id_; }
  uint32_t slot_count() const { return slots_; }
  int doorbell_fd() const { return doorbell_fd_; }
  // Next position to consume.
  uint64_t position() const { return pos_; }

  // Starts at max(what the ring says was consumed, `journaled`): a previous
  // agent may have journaled records it died before releasing. Slots in
  // between are released.
  void Resume(uint64_t journaled);

  enum class Read { kEmpty, kRecord, kMalformed };
  // Copies the record at position() (one or more slots) into *out
  // (kRecord), or reports a slot whose length is out of range (kMalformed,
  // one slot). Either must be Release()d.
  Read Next(std::string* out);
  // Position after the record Next() read.
  uint64_t next_position() const { return pos_ + span_; }
  // Frees the slot read by Next() and publishes the new position.
  void Release();
  // Moves past the slot read by Next() without freeing it yet: the tap
  // cannot reuse it, and `consumed` stays where it was until ReleaseRead()
  // (so a batch can be journaled in one write before any of it is freed).
  void Advance() {
    pos_ += span_;
    span_ = 1;
  }
  // Frees every slot Advance()d over and publishes the position.
  void ReleaseRead();

  // Before sleeping on the doorbell: flags the consumer as waiting and
  // re-checks. True: still empty, sleep. False: records came in, keep going
  // (the flag is cleared again).
  bool PrepareSleep();
  void ClearWaiting();
  // Resets the doorbell counter (eventfd read).
  void DrainDoorbell();

  // Drops the tap counted that were not reported yet (*upto: the tap's
  // total). Count them durably, then MarkDropsReported(*upto), so that the
  // next agent does not count them again.
  uint64_t PendingDrops(uint64_t* upto) const;
  void MarkDropsReported(uint64_t upto);
  // At attach: a previous agent durably counted drops up to `counted` but
  // may have died before marking them in the ring; marks them now.
  void ResumeDrops(uint64_t counted);
  // Records reserved by producers but never committed. Only meaningful
  // once the process is gone (then they are lost); at most slot_count().
  uint64_t Uncommitted() const;

  // The module table (tap_protocol.h): entries [0, module_count()) are
  // published; shared memory, copy what you read and check it.
  const TapRingModule* modules() const { return TapRingModules(map_, slots_); }
  uint32_t module_count() const;

 private:
  TapRingReader(int memfd, int doorbell_fd, void* map, size_t bytes, uint32_t slots,
                uint64_t ring_id)
      : memfd_(memfd),
        doorbell_fd_(doorbell_fd),
        map_(map),
        bytes_(bytes),
        slots_(slots),
        ring_id_(ring_id) {}
  TapRingHeader* header() const { return static_cast<TapRingHeader*>(map_); }
  TapRingSlot* slot(uint64_t pos) const;

  const int memfd_;
  const int doorbell_fd_;
  void* const map_;
  const size_t bytes_;
  const uint32_t slots_;  // validated copy: never re-read from shared memory
  const uint64_t ring_id_;
  uint64_t pos_ = 0;       // next record to read
  uint64_t span_ = 1;      // slots of the record Next() read
  uint64_t released_ = 0;  // first slot not freed yet (<= pos_)
  uint64_t reported_ = 0;  // drops reported by this reader (with the header's)
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_TAP_RING_H_

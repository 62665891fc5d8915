// A fixed pool of per-stream slots for the tap: state a stream keeps from
// one hooked call to the next (the send-side carry, a response header block
// split across reads). A stream is (fd, plain-or-TLS): TLS plaintext and the
// ciphertext on the same fd are separate streams. No allocation: the pool is
// constinit (a dynamic initializer could run after the tap's constructor and
// wipe it). When the pool is exhausted, or another thread holds the
// stream's slot, Lock() returns nullptr and the caller does without.
#ifndef IDFLOW_AGENT_TAP_FD_STREAM_SLOTS_H_
#define IDFLOW_AGENT_TAP_FD_STREAM_SLOTS_H_

#include <stdint.h>

#include <atomic>

namespace idflow::tap {

// `Payload` must be constexpr-constructible and have Reset() (called when a
// slot is claimed for a stream). `kFds`: fds at or above it have no slot.
template <typename Payload, int kSlots, int kFds>
class StreamSlots {
 public:
  static_assert(kSlots < 65535);
  struct Slot {
    std::atomic<int> owner{0};      // stream key + 1, or 0 when free
    std::atomic<bool> busy{false};  // try-lock: a concurrent caller does without
    Payload payload{};
  };

  constexpr StreamSlots() = default;

  // Whether the stream holds a slot (a hint: it may be released meanwhile).
  bool Has(int fd, int tls) const {
    return InRange(fd) && by_fd_[fd][tls].load(std::memory_order_relaxed) != 0;
  }

  // Locks the stream's slot, claiming a free one (Reset) if it has none and
  // `claim`; nullptr = none. Unlock() when done.
  Slot* Lock(int fd, int tls, bool claim) {
    if (!InRange(fd)) return nullptr;
    const int key = fd * 2 + tls + 1;
    uint16_t slot = by_fd_[fd][tls].load(std::memory_order_acquire);
    if (slot == 0) {
      if (!claim) return nullptr;
      for (int i = 0; i < kSlots; ++i) {
        const int idx = (fd + i) % kSlots;
        Slot* s = &slots_[idx];
        int expected = 0;
        if (!s->owner.compare_exchange_strong(expected, key, std::memory_order_acq_rel)) continue;
        // A caller that locked it for its previous stream may still be in
        // it (its fd closed meanwhile): leave that slot alone.
        if (s->busy.exchange(true, std::memory_order_acquire)) {
          s->owner.store(0, std::memory_order_release);
          continue;
        }
        s->payload.Reset();
        uint16_t none = 0;
        if (by_fd_[fd][tls].compare_exchange_strong(none, static_cast<uint16_t>(idx + 1))) {
          return s;  // claimed and locked
        }
        // Another thread claimed one for this stream first: use that one.
        s->busy.store(false, std::memory_order_release);
        s->owner.store(0, std::memory_order_release);
        slot = none;
        break;
      }
      if (slot == 0) return nullptr;
    }
    Slot* s = &slots_[slot - 1];
    if (s->busy.exchange(true, std::memory_order_acquire)) return nullptr;
    if (s->owner.load(std::memory_order_acquire) != key) {
      s->busy.store(false, std::memory_order_release);
      return nullptr;
    }
    return s;
  }

  static void Unlock(Slot* s) { s->busy.store(false, std::memory_order_release); }

  // Frees the stream's slot (the stream ended, or its state is not needed).
  void Release(int fd, int tls) {
    if (!InRange(fd) || by_fd_[fd][tls].load(std::memory_order_relaxed) == 0) return;
    uint16_t slot = by_fd_[fd][tls].exchange(0, std::memory_order_acq_rel);
    if (slot != 0) slots_[slot - 1].owner.store(0, std::memory_order_release);
  }

  // Both streams of an fd (it was closed or reused).
  void ReleaseFd(int fd) {
    Release(fd, 0);
    Release(fd, 1);
  }

 private:
  static bool InRange(int fd) { return fd >= 0 && fd < kFds; }

  Slot slots_[kSlots];
  std::atomic<uint16_t> by_fd_[kFds][2] = {};  // slot + 1, 0 = none
};

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_FD_STREAM_SLOTS_H_

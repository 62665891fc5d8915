#include "agent/tap_ring.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace idflow::agent {
namespace {

uint64_t Load(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void Store(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

absl::Status Refuse(int memfd, int doorbell_fd, const std::string& why) {
  if (memfd >= 0) ::close(memfd);
  if (doorbell_fd >= 0) ::close(doorbell_fd);
  return absl::InvalidArgumentError(absl::StrCat("tap ring refused: ", why));
}

bool IsEventFd(int fd) {
  char link[64];
  std::string proc = absl::StrCat("/proc/self/fd/", fd);
  ssize_t n = ::readlink(proc.c_str(), link, sizeof(link) - 1);
  if (n <= 0) return false;
  link[n] = '\0';
  return strcmp(link, "anon_inode:[eventfd]") == 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TapRingReader>> TapRingReader::Attach(int memfd, int doorbell_fd) {
  if (memfd < 0 || doorbell_fd < 0) return Refuse(memfd, doorbell_fd, "missing descriptor");
  if (!IsEventFd(doorbell_fd)) return Refuse(memfd, doorbell_fd, "doorbell is not an eventfd");
  // A memfd the tap could shrink would SIGBUS us on access: require seals.
  int seals = ::fcntl(memfd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0 || (seals & F_SEAL_GROW) == 0) {
    return Refuse(memfd, doorbell_fd, "memfd not sealed against resizing");
  }
  struct stat st {};
  if (::fstat(memfd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<size_t>(st.st_size) < kTapRingHeaderBytes) {
    return Refuse(memfd, doorbell_fd, "bad memfd size");
  }
  TapRingHeader h;
  if (::pread(memfd, &h, sizeof(h), 0) != static_cast<ssize_t>(sizeof(h))) {
    return Refuse(memfd, doorbell_fd, "cannot read header");
  }
  const uint32_t n = h.slot_count;
  if (h.magic != kTapRingMagic || h.version != kTapRingVersion ||
      h.slot_bytes != kTapRingSlotBytes || n < kTapRingMinSlots || n > kTapRingMaxSlots ||
      (n & (n - 1)) != 0 || static_cast<size_t>(st.st_size) != TapRingBytes(n)) {
    return Refuse(memfd, doorbell_fd, "bad header");
  }
  const size_t bytes = TapRingBytes(n);
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (map == MAP_FAILED) return Refuse(memfd, doorbell_fd, absl::StrCat("mmap: ", strerror(errno)));
  auto reader = std::unique_ptr<TapRingReader>(
      new TapRingReader(memfd, doorbell_fd, map, bytes, n, h.ring_id));
  reader->pos_ = Load(&reader->header()->consumed);
  reader->released_ = reader->pos_;
  return reader;
}

TapRingReader::~TapRingReader() {
  ::munmap(map_, bytes_);
  ::close(memfd_);
  ::close(doorbell_fd_);
}

TapRingSlot* TapRingReader::slot(uint64_t pos) const {
  char* base = static_cast<char*>(map_) + kTapRingHeaderBytes;
  return reinterpret_cast<TapRingSlot*>(base + (pos & (slots_ - 1)) * kTapRingSlotBytes);
}

void TapRingReader::Resume(uint64_t journaled) {
  pos_ = Load(&header()->consumed);
  // Bounded: a ring holds at most slots_ records ahead of `consumed`.
  if (journaled > pos_ && journaled - pos_ <= slots_) {
    for (uint64_t p = pos_; p < journaled; ++p) {
      const uint64_t idx = p & (slots_ - 1);
      if (Load(&slot(p)->lap) == p - idx + 1) Store(&slot(p)->lap, p - idx + slots_);
    }
    pos_ = journaled;
    Store(&header()->consumed, pos_);
  }
  released_ = pos_;
}

TapRingReader::Read TapRingReader::Next(std::string* out) {
  TapRingSlot* s = slot(pos_);
  const uint64_t idx = pos_ & (slots_ - 1);
  span_ = 1;
  if (Load(&s->lap) != pos_ - idx + 1) return Read::kEmpty;
  const uint32_t len = __atomic_load_n(&s->length, __ATOMIC_RELAXED);
  if (len < sizeof(TapWireHeader) || len > kTapRingRecordMax) return Read::kMalformed;
  // The producer committed the continuation slots before the first (whose
  // lap we acquired). Private copy: the tap cannot change it under the
  // decoder.
  const uint32_t span = TapRingSpan(len);
  out->resize(len);
  size_t done = 0;
  for (uint32_t i = 0; i < span; ++i) {
    const size_t take = std::min<size_t>(len - done, kTapRingPayloadMax);
    memcpy(out->data() + done, slot(pos_ + i)->data, take);
    done += take;
  }
  span_ = span;
  return Read::kRecord;
}

void TapRingReader::Release() {
  Advance();
  ReleaseRead();
}

void TapRingReader::ReleaseRead() {
  if (released_ == pos_) return;
  for (uint64_t p = released_; p < pos_; ++p) {
    const uint64_t idx = p & (slots_ - 1);
    Store(&slot(p)->lap, p - idx + slots_);
  }
  released_ = pos_;
  Store(&header()->consumed, pos_);
}

bool TapRingReader::PrepareSleep() {
  Store(&header()->waiting, 1);
  // Pairs with the producer's fence between its commit and its read of
  // `waiting`: either it sees 1 and rings, or we see its record here.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  TapRingSlot* s = slot(pos_);
  if (Load(&s->lap) == pos_ - (pos_ & (slots_ - 1)) + 1) {
    ClearWaiting();
    return false;
  }
  return true;
}

void TapRingReader::ClearWaiting() { Store(&header()->waiting, 0); }

void TapRingReader::DrainDoorbell() {
  uint64_t v;
  while (::read(doorbell_fd_, &v, sizeof(v)) == static_cast<ssize_t>(sizeof(v))) {
  }
}

uint64_t TapRingReader::PendingDrops(uint64_t* upto) const {
  const uint64_t dropped = Load(&header()->dropped);
  // A tap resetting dropped_reported cannot make this agent count twice.
  const uint64_t reported = std::max(reported_, Load(&header()->dropped_reported));
  *upto = std::max(dropped, reported);
  return dropped > reported ? dropped - reported : 0;
}

void TapRingReader::MarkDropsReported(uint64_t upto) {
  reported_ = std::max(reported_, upto);
  Store(&header()->dropped_reported, reported_);
}

void TapRingReader::ResumeDrops(uint64_t counted) {
  // Never past what the tap counted: a mark from a damaged file (or a ring
  // id reused by a hostile tap) cannot hide drops counted later.
  counted = std::min(counted, Load(&header()->dropped));
  if (counted > std::max(reported_, Load(&header()->dropped_reported))) {
    MarkDropsReported(counted);
  }
}

uint64_t TapRingReader::Uncommitted() const {
  const uint64_t head = Load(&header()->head);
  const uint64_t end = head > pos_ ? pos_ + std::min<uint64_t>(head - pos_, slots_) : pos_;
  // A producer writes its record's length right after reserving it: count
  // records, not slots (a length not written yet counts one slot each).
  uint64_t records = 0;
  for (uint64_t p = pos_; p < end; ++records) {
    const uint32_t len = __atomic_load_n(&slot(p)->length, __ATOMIC_RELAXED);
    const uint32_t span =
        len >= sizeof(TapWireHeader) && len <= kTapRingRecordMax ? TapRingSpan(len) : 1;
    p += span;
  }
  return records;
}

uint32_t TapRingReader::module_count() const {
  return static_cast<uint32_t>(std::min<uint64_t>(Load(&header()->module_count), kTapRingModules));
}

}  // namespace idflow::agent

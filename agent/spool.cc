#include "agent/spool.h"

#include "agent/record_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/digest.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace idflow::agent {
namespace {

constexpr size_t kHeader = kRecordHeader;
constexpr uint32_t kMaxRecord = kMaxRecordPayload;
constexpr uint64_t kMinSegment = 4096;
constexpr uint64_t kMaxSegment = 4ull << 20;

absl::Status Errno(const std::string& what) { return ErrnoStatus(errno, what); }

uint32_t Crc(const char* p, size_t n) { return RecordCrc(p, n); }

// Calls fn(event, start, end) for each valid record until it returns false;
// returns the offset just past the last one accepted (recovery only).
template <typename Fn>
absl::StatusOr<uint64_t> ScanSegment(const std::string& path, Fn fn) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  idflow::v1::Event ev;
  return static_cast<uint64_t>(
      ScanRecords(data, [&](absl::string_view rec, size_t start, size_t end) {
        if (!ev.ParseFromArray(rec.data(), static_cast<int>(rec.size()))) return false;
        return fn(ev, start, end);
      }));
}

// Reads the records of a segment from byte `off` (where seq `seq` starts) to
// `end`, in bounded chunks; records before `from` are skipped unparsed (seqs
// within a segment are consecutive). Calls fn(event) until it returns false.
template <typename Fn>
absl::Status ScanFrom(const std::string& path, uint64_t off, uint64_t end, uint64_t seq,
                      uint64_t from, Fn fn) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? absl::NotFoundError(path) : Errno(absl::StrCat(path, ": open"));
  }
  std::string buf;
  size_t pos = 0;          // parse position in buf
  uint64_t buf_off = off;  // file offset of buf[0]
  auto fill = [&](size_t need) -> bool {
    while (buf.size() - pos < need) {
      buf.erase(0, pos);
      buf_off += pos;
      pos = 0;
      uint64_t at = buf_off + buf.size();
      if (at >= end) return false;
      size_t want = static_cast<size_t>(std::min<uint64_t>(end - at, 256 << 10));
      want = std::max(want, std::min<size_t>(need - buf.size(), static_cast<size_t>(end - at)));
      size_t old = buf.size();
      buf.resize(old + want);
      ssize_t n = ::pread(fd, buf.data() + old, want, static_cast<off_t>(at));
      if (n <= 0) {
        buf.resize(old);
        return false;
      }
      buf.resize(old + static_cast<size_t>(n));
    }
    return true;
  };
  idflow::v1::Event ev;
  for (;; ++seq) {
    if (!fill(kHeader)) break;
    uint32_t len = GetU32(buf.data() + pos);
    uint32_t crc = GetU32(buf.data() + pos + 4);
    if (len > kMaxRecord || !fill(kHeader + len)) break;
    const char* rec = buf.data() + pos + kHeader;
    pos += kHeader + len;
    if (seq < from) continue;
    if (Crc(rec, len) != crc || !ev.ParseFromArray(rec, static_cast<int>(len))) break;
    if (!fn(ev)) break;
  }
  ::close(fd);
  return absl::OkStatus();
}

const char* CauseName(idflow::v1::DropCause c) { return idflow::v1::DropCause_Name(c).c_str(); }

}  // namespace

SpoolIo SpoolIo::Posix() {
  SpoolIo io;
  io.write = [](int fd, const void* buf, size_t n) { return ::write(fd, buf, n); };
  io.sync = [](int fd) { return ::fdatasync(fd); };
  return io;
}

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(const SpoolOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("spool directory not set");
  if (::mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Errno(absl::StrCat(options.dir, ": mkdir"));
  }
  uint64_t seg = options.segment_bytes;
  if (seg == 0) seg = std::max(kMinSegment, std::min(kMaxSegment, options.max_bytes / 4));
  std::unique_ptr<Spool> spool(new Spool(options, seg));
  RETURN_IF_ERROR(spool->Recover());
  if (options.sync && options.sync_interval.count() > 0) {
    spool->sync_thread_ = std::thread([s = spool.get()] { s->SyncLoop(); });
  }
  return spool;
}

Spool::~Spool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  sync_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
  (void)Sync();
  std::lock_guard lock(mu_);
  if (write_fd_ >= 0) ::close(write_fd_);
}

absl::Status Spool::Recover() {
  const std::string id_path = options_.dir + "/agent_id";
  if (auto id = ReadFile(id_path); id.ok() && !id->empty()) {
    agent_id_ = std::string(absl::StripAsciiWhitespace(*id));
  } else {
    std::string rnd = RandomBytes(8);
    if (rnd.empty()) return absl::InternalError("no randomness for the agent id");
    agent_id_ = "agent-" + HexEncode(rnd);
    RETURN_IF_ERROR(WriteFileAtomic(id_path, agent_id_ + "\n"));
  }
  std::lock_guard lock(mu_);
  if (auto acked = ReadFile(options_.dir + "/acked"); acked.ok()) {
    uint64_t v = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*acked), &v)) acked_ = v;
  } else {
    // Made now, while there is room, so a later save on a full disk can
    // overwrite it in place (PersistAckedLocked).
    RETURN_IF_ERROR(WriteFileAtomic(options_.dir + "/acked", "0\n"));
  }
  acked_saved_ = acked_;
  if (auto lost = ReadFile(options_.dir + "/lost"); lost.ok()) {
    for (absl::string_view line : absl::StrSplit(*lost, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      SeqRange r;
      int cause = 0;
      if (f.size() != 3 || !absl::SimpleAtoi(f[0], &r.from) || !absl::SimpleAtoi(f[1], &r.to) ||
          !absl::SimpleAtoi(f[2], &cause) || !idflow::v1::DropCause_IsValid(cause) ||
          r.from > r.to || r.to <= acked_) {
        continue;
      }
      r.from = std::max(r.from, acked_ + 1);
      r.cause = static_cast<idflow::v1::DropCause>(cause);
      lost_.push_back(r);
    }
  }
  if (auto purged = ReadFile(options_.dir + "/purged"); purged.ok()) {
    for (absl::string_view line : absl::StrSplit(*purged, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      uint64_t seq = 0, weight = 0;
      if (f.size() != 2 || !absl::SimpleAtoi(f[0], &seq) || !absl::SimpleAtoi(f[1], &weight) ||
          seq <= acked_) {
        continue;
      }
      purged_in_flight_.emplace_back(seq, weight);
    }
    std::sort(purged_in_flight_.begin(), purged_in_flight_.end());
  }
  DIR* d = ::opendir(options_.dir.c_str());
  if (d == nullptr) return Errno(absl::StrCat(options_.dir, ": opendir"));
  std::vector<Segment> found;
  while (dirent* e = ::readdir(d)) {
    absl::string_view name = e->d_name;
    if (!absl::ConsumePrefix(&name, "seg-") || !absl::ConsumeSuffix(&name, ".log")) continue;
    Segment seg;
    if (!absl::SimpleAtoi(name, &seg.first_seq)) continue;
    seg.path = absl::StrCat(options_.dir, "/", e->d_name);
    found.push_back(seg);
  }
  ::closedir(d);
  std::sort(found.begin(), found.end(),
            [](const Segment& a, const Segment& b) { return a.first_seq < b.first_seq; });
  uint64_t last = acked_;
  for (Segment& seg : found) {
    RETURN_IF_ERROR(RecoverSegment(&seg));
    // An empty segment still proves its first seq was handed out... minus one.
    if (seg.first_seq > 0) last = std::max(last, seg.first_seq - 1);
    if (seg.last_seq == 0 || seg.last_seq <= acked_) {
      ::unlink(seg.path.c_str());  // empty or fully acknowledged
      continue;
    }
    last = std::max(last, seg.last_seq);
    segments_.push_back(seg);
  }
  next_seq_ = last + 1;
  lost_.erase(
      std::remove_if(lost_.begin(), lost_.end(), [&](const SeqRange& r) { return r.from > last; }),
      lost_.end());
  std::sort(lost_.begin(), lost_.end(),
            [](const SeqRange& a, const SeqRange& b) { return a.from < b.from; });
  return absl::OkStatus();
}

absl::Status Spool::RecoverSegment(Segment* seg) {
  uint64_t first = 0, last = 0;
  uint64_t off = 0;
  ASSIGN_OR_RETURN(uint64_t good_end, ScanSegment(seg->path, [&](const idflow::v1::Event& ev,
                                                                 size_t start, size_t end) {
                     if (first == 0) first = ev.seq();
                     // Seqs must run on by one within a segment; stop at a break.
                     if (last != 0 && ev.seq() != last + 1) return false;
                     if ((ev.seq() - first) % 64 == 0) seg->index.emplace_back(ev.seq(), start);
                     last = ev.seq();
                     off = end;
                     return true;
                   }));
  good_end = std::min(good_end, off);
  struct stat st {};
  if (::stat(seg->path.c_str(), &st) != 0) return Errno(seg->path);
  if (static_cast<uint64_t>(st.st_size) != good_end) {
    // Torn or corrupt tail: keep the valid prefix.
    if (::truncate(seg->path.c_str(), static_cast<off_t>(good_end)) != 0) {
      return Errno(absl::StrCat(seg->path, ": truncate"));
    }
  }
  if (first != 0) seg->first_seq = first;
  seg->last_seq = last;
  seg->bytes = good_end;
  return absl::OkStatus();
}

absl::Status Spool::OpenNewSegment(uint64_t first_seq) {
  if (write_fd_ >= 0) {
    // The finished segment is made durable before we stop tracking its fd.
    if (options_.sync && unsynced_ && options_.io.sync(write_fd_) != 0) {
      LogError("spool: fdatasync of a finished segment failed: ", std::strerror(errno));
    }
    unsynced_ = false;
    ::close(write_fd_);
    write_fd_ = -1;
  }
  if (!segments_.empty() && segments_.back().last_seq == 0) segments_.pop_back();
  Segment seg;
  seg.first_seq = first_seq;
  seg.path = absl::StrFormat("%s/seg-%020d.log", options_.dir, first_seq);
  write_fd_ = ::open(seg.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (write_fd_ < 0) return Errno(absl::StrCat(seg.path, ": open"));
  // Reusing a name (an empty segment left by a failed write): start clean.
  if (::ftruncate(write_fd_, 0) != 0) return Errno(absl::StrCat(seg.path, ": ftruncate"));
  segments_.push_back(seg);
  return absl::OkStatus();
}

void Spool::CountDrop(idflow::v1::DropCause cause, uint64_t n) {
  if (options_.drops != nullptr) options_.drops->Add(cause, n);
}

uint64_t Spool::TotalBytesLocked() const {
  uint64_t total = 0;
  for (const auto& s : segments_) total += s.bytes;
  return total;
}

absl::Status Spool::FailAppendLocked(const std::vector<idflow::v1::Event>& events,
                                     absl::Status st) {
  disk_dropped_ += events.size();
  uint64_t weight = 0;
  for (const auto& e : events) weight += TapEvents(e);
  CountDrop(idflow::v1::DROP_CAUSE_DISK, weight);
  return st;
}

absl::Status Spool::Append(std::vector<idflow::v1::Event>* events) {
  if (events->empty()) return absl::OkStatus();
  std::lock_guard lock(mu_);
  const auto now = options_.now();
  if (backoff_.count() > 0 && now < retry_at_) {
    // Fail fast: no I/O until the backoff expires, so a full disk costs
    // nothing per event but the count.
    return FailAppendLocked(
        *events,
        absl::UnavailableError("spool: backing off after a write failure; events dropped"));
  }
  std::string buf;
  uint64_t seq = next_seq_;
  std::string rec;
  for (auto& ev : *events) {
    ev.set_agent_id(agent_id_);
    ev.set_seq(seq++);
    rec.clear();
    ev.SerializeToString(&rec);
    if (rec.size() > kMaxRecord) {
      for (auto& e : *events) e.set_seq(0);
      return FailAppendLocked(*events,
                              absl::ResourceExhaustedError("spool: event larger than 1 MiB"));
    }
    AppendRecord(rec, &buf);
  }
  absl::Status st;
  if (buf.size() > options_.max_bytes) {
    st = absl::ResourceExhaustedError(absl::StrCat(
        "spool: a batch of ", buf.size(), " bytes exceeds the bound ", options_.max_bytes));
  }
  if (st.ok() &&
      (write_fd_ < 0 || segments_.empty() ||
       (segments_.back().bytes > 0 && segments_.back().bytes + buf.size() > segment_bytes_))) {
    st = OpenNewSegment(next_seq_);
  }
  if (st.ok()) {
    MakeRoom(buf.size());
    st = WriteAll(options_.io.write, write_fd_, buf, segments_.back().path);
    if (!st.ok()) {
      // Drop the partial write so the segment stays a valid prefix.
      (void)!::ftruncate(write_fd_, static_cast<off_t>(segments_.back().bytes));
    }
  }
  if (st.ok() && options_.sync && options_.sync_interval.count() == 0) {
    if (options_.io.sync(write_fd_) != 0) {
      st = Errno(segments_.back().path + ": fdatasync");
      (void)!::ftruncate(write_fd_, static_cast<off_t>(segments_.back().bytes));
    }
  }
  if (!st.ok()) {
    for (auto& ev : *events) ev.set_seq(0);
    ++write_errors_;
    backoff_ =
        backoff_.count() == 0 ? options_.min_backoff : std::min(options_.max_backoff, backoff_ * 2);
    retry_at_ = now + backoff_;
    // Free what the collector already has: space may come back from us
    // (once the ack mark is saved; else older segments only).
    if (PersistAckedLocked().ok()) {
      DropSegmentsAckedLocked();
    } else {
      while (segments_.size() > 1 && segments_.front().last_seq <= acked_) {
        ::unlink(segments_.front().path.c_str());
        segments_.erase(segments_.begin());
      }
    }
    return FailAppendLocked(*events, st);
  }
  if (backoff_.count() > 0) LogInfo("spool: writes succeed again");
  backoff_ = std::chrono::milliseconds(0);
  Segment& seg = segments_.back();
  if (seg.last_seq == 0) seg.first_seq = next_seq_;
  seg.index.emplace_back(next_seq_, seg.bytes);
  seg.bytes += buf.size();
  seg.last_seq = seq - 1;
  next_seq_ = seq;
  if (options_.sync && options_.sync_interval.count() > 0 && !unsynced_) {
    unsynced_ = true;
    sync_cv_.notify_all();
  }
  return absl::OkStatus();
}

void Spool::SyncLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    sync_cv_.wait(lock, [this] { return stopping_ || unsynced_; });
    if (stopping_) break;
    // Group commit: let the interval's appends gather, then one fdatasync.
    sync_cv_.wait_for(lock, options_.sync_interval, [this] { return stopping_; });
    if (stopping_ || !unsynced_ || write_fd_ < 0) continue;
    int fd = ::dup(write_fd_);  // the segment may roll while we sync
    unsynced_ = false;
    lock.unlock();
    if (fd >= 0) {
      if (options_.io.sync(fd) != 0) {
        LogError("spool: fdatasync failed: ", std::strerror(errno));
      }
      ::close(fd);
    }
    lock.lock();
  }
}

absl::Status Spool::Sync() {
  int fd = -1;
  {
    std::lock_guard lock(mu_);
    if (absl::Status st = PersistAckedLocked(); !st.ok()) {
      LogError("spool: ack mark not saved: ", st.message());
    }
    if (!options_.sync || !unsynced_ || write_fd_ < 0) return absl::OkStatus();
    fd = ::dup(write_fd_);
    unsynced_ = false;
  }
  if (fd < 0) return Errno("spool: dup");
  int rc = options_.io.sync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : ErrnoStatus(err, "spool: fdatasync");
}

void Spool::MakeRoom(uint64_t incoming) {
  uint64_t total = TotalBytesLocked();
  // Never delete the segment being written (the last one).
  bool lost_changed = false;
  bool purged_changed = false;
  while (total + incoming > options_.max_bytes && segments_.size() > 1) {
    Segment old = segments_.front();
    uint64_t first_unacked = std::max(old.first_seq, acked_ + 1);
    if (old.last_seq >= first_unacked) {
      // Remember the purged range so the sender declares it, minus any part
      // already set aside for another cause.
      const uint64_t n = CountableLocked(first_unacked, old.last_seq);
      dropped_ += n;
      // Counters weigh each purged event by its count: one read of the
      // segment, only when the spool is full. Events a Read handed out may
      // reach the collector still: counted when declared as a gap.
      const uint64_t now_from = std::max(first_unacked, handed_out_ + 1);
      const uint64_t n_now = now_from <= old.last_seq ? CountableLocked(now_from, old.last_seq) : 0;
      uint64_t weight = 0;
      std::vector<std::pair<uint64_t, uint64_t>> in_flight;
      auto counted = [&](uint64_t seq) {
        if (seq < first_unacked) return false;
        for (const SeqRange& r : lost_) {
          if (r.from <= seq && seq <= r.to) return false;
        }
        return true;
      };
      absl::StatusOr<uint64_t> scanned =
          ScanSegment(old.path, [&](const idflow::v1::Event& ev, size_t, size_t) {
            if (!counted(ev.seq())) return true;
            if (ev.seq() <= handed_out_) {
              in_flight.emplace_back(ev.seq(), TapEvents(ev));
            } else {
              weight += TapEvents(ev);
            }
            return true;
          });
      if (scanned.ok()) {
        CountDrop(idflow::v1::DROP_CAUSE_SPOOL, std::max(weight, n_now));
        purged_in_flight_.insert(purged_in_flight_.end(), in_flight.begin(), in_flight.end());
        purged_changed = purged_changed || !in_flight.empty();
      } else {
        CountDrop(idflow::v1::DROP_CAUSE_SPOOL, n);  // unreadable: each counts once, now
      }
      if (n > 0) {
        LogWarning("spool full: purged ", n, " unacked events (seq ", first_unacked, "..",
                   old.last_seq, ")");
      }
      // Implicit: Read() reports seqs below the first held segment as a
      // SPOOL gap; only other causes need to stay in lost_.
      lost_changed = true;
    }
    ::unlink(old.path.c_str());
    total -= old.bytes;
    segments_.erase(segments_.begin());
  }
  if (purged_changed) {
    std::sort(purged_in_flight_.begin(), purged_in_flight_.end());
    (void)PersistPurgedLocked();
  }
  if (lost_changed) {
    uint64_t first_held = segments_.front().first_seq;
    auto it = lost_.begin();
    while (it != lost_.end() && it->to < first_held) ++it;
    if (it != lost_.begin()) {
      lost_.erase(lost_.begin(), it);
      (void)PersistLostLocked();
    }
  }
}

void Spool::DropSegmentsAckedLocked() {
  while (!segments_.empty() && segments_.front().last_seq != 0 &&
         segments_.front().last_seq <= acked_) {
    if (segments_.size() == 1) {
      // The segment being written: close it; the next Append opens a fresh
      // one at next_seq_ (the acked file keeps next_seq_ across restarts).
      if (write_fd_ >= 0) ::close(write_fd_);
      write_fd_ = -1;
      unsynced_ = false;
    }
    ::unlink(segments_.front().path.c_str());
    segments_.erase(segments_.begin());
  }
}

uint64_t Spool::CountableLocked(uint64_t from, uint64_t to) const {
  uint64_t n = 0;
  uint64_t s = from;
  for (const SeqRange& r : lost_) {
    if (r.to < s || r.from > to) continue;
    if (r.from > s) n += r.from - s;
    s = r.to + 1;
  }
  if (s <= to) n += to - s + 1;
  return n;
}

absl::Status Spool::PersistPurgedLocked() {
  std::string text;
  for (const auto& [seq, weight] : purged_in_flight_)
    absl::StrAppend(&text, seq, " ", weight, "\n");
  absl::Status st = WriteFileAtomic(options_.dir + "/purged", text);
  if (!st.ok()) LogError("spool: purged in-flight events not persisted: ", st.message());
  return st;
}

uint64_t Spool::TakePurgedLocked(uint64_t from, uint64_t to) {
  auto lo = std::lower_bound(purged_in_flight_.begin(), purged_in_flight_.end(),
                             std::make_pair(from, uint64_t{0}));
  auto hi = std::upper_bound(lo, purged_in_flight_.end(), std::make_pair(to, UINT64_MAX));
  if (lo == hi) return 0;
  uint64_t weight = 0;
  for (auto it = lo; it != hi; ++it) weight += it->second;
  purged_in_flight_.erase(lo, hi);
  (void)PersistPurgedLocked();
  return weight;
}

void Spool::GapDeclared(uint64_t from, uint64_t to) {
  std::lock_guard lock(mu_);
  CountDrop(idflow::v1::DROP_CAUSE_SPOOL, TakePurgedLocked(from, to));
}

absl::Status Spool::PersistLostLocked() {
  std::string text;
  for (const SeqRange& r : lost_) absl::StrAppend(&text, r.from, " ", r.to, " ", r.cause, "\n");
  absl::Status st = WriteFileAtomic(options_.dir + "/lost", text);
  if (!st.ok()) LogError("spool: lost ranges not persisted: ", st.message());
  return st;
}

absl::Status Spool::MarkLost(uint64_t from, uint64_t to, idflow::v1::DropCause cause) {
  std::lock_guard lock(mu_);
  from = std::max(from, acked_ + 1);
  to = std::min(to, next_seq_ - 1);
  if (from > to) return absl::OkStatus();
  // Keep lost_ disjoint: only the parts not yet lost are added.
  std::vector<SeqRange> add;
  uint64_t s = from;
  for (const SeqRange& r : lost_) {
    if (r.to < s || r.from > to) continue;
    if (r.from > s) add.push_back({s, r.from - 1, cause});
    s = r.to + 1;
  }
  if (s <= to) add.push_back({s, to, cause});
  lost_.insert(lost_.end(), add.begin(), add.end());
  std::sort(lost_.begin(), lost_.end(),
            [](const SeqRange& a, const SeqRange& b) { return a.from < b.from; });
  for (const SeqRange& r : add) {
    LogWarning("spool: seq ", r.from, "..", r.to, " set aside (", CauseName(cause), ")");
  }
  // Purged in flight and now set aside: the caller counts them under its
  // cause, so a later gap does not count them again.
  (void)TakePurgedLocked(from, to);
  return PersistLostLocked();
}

absl::StatusOr<SpoolRead> Spool::Read(uint64_t after, size_t max_events, size_t max_bytes) {
  SpoolRead out;
  struct Part {
    std::string path;
    uint64_t off, end, seq;
  };
  std::vector<Part> parts;
  uint64_t stop = 0;  // last seq to read in this call
  const uint64_t s = after + 1;
  {
    std::lock_guard lock(mu_);
    if (s >= next_seq_) return out;
    for (const SeqRange& r : lost_) {
      if (r.from <= s && s <= r.to) {
        out.is_gap = true;
        out.gap = {s, r.to, r.cause};
        return out;
      }
    }
    uint64_t next_lost = next_seq_;
    for (const SeqRange& r : lost_) {
      if (r.from > s) {
        next_lost = r.from;
        break;
      }
    }
    const uint64_t first_held = segments_.empty() ? next_seq_ : segments_.front().first_seq;
    if (s < first_held) {
      // No longer held (purged when full) and not recorded otherwise.
      out.is_gap = true;
      out.gap = {s, std::min(first_held, next_lost) - 1, idflow::v1::DROP_CAUSE_SPOOL};
      return out;
    }
    stop = next_lost - 1;
    // Before the lock is let go: a purge while this read runs must not count
    // what it returns (at most max_events of it).
    handed_out_ = std::max(handed_out_, std::min(stop, after + std::max<size_t>(max_events, 1)));
    for (const auto& seg : segments_) {
      if (seg.last_seq < s || seg.first_seq > stop || seg.index.empty()) continue;
      // Last Append that starts at or before s.
      auto it = std::upper_bound(seg.index.begin(), seg.index.end(), std::make_pair(s, UINT64_MAX));
      if (it != seg.index.begin()) --it;
      parts.push_back({seg.path, it->second, seg.bytes, it->first});
    }
  }
  size_t bytes = 0;
  for (const auto& p : parts) {
    absl::Status st = ScanFrom(p.path, p.off, p.end, p.seq, s, [&](const idflow::v1::Event& ev) {
      if (ev.seq() > stop || out.events.size() >= max_events || bytes >= max_bytes) return false;
      bytes += ev.ByteSizeLong();
      out.events.push_back(ev);
      return true;
    });
    // A segment purged meanwhile is not an error: the next read reports it.
    if (absl::IsNotFound(st)) break;
    RETURN_IF_ERROR(st);
    if (out.events.size() >= max_events || bytes >= max_bytes) break;
    if (!out.events.empty() && out.events.back().seq() >= stop) break;
  }
  return out;
}

absl::StatusOr<std::vector<idflow::v1::Event>> Spool::ReadAfter(uint64_t after, size_t max_events,
                                                                size_t max_bytes) {
  after = std::max(after, acked());  // events only: what the collector lacks
  for (;;) {
    ASSIGN_OR_RETURN(SpoolRead r, Read(after, max_events, max_bytes));
    if (!r.is_gap) return std::move(r.events);
    after = r.gap.to;
  }
}

absl::Status Spool::Ack(uint64_t up_to) {
  std::lock_guard lock(mu_);
  if (up_to <= acked_) return absl::OkStatus();
  bool save_now = options_.ack_persist_interval.count() == 0;
  if (up_to >= next_seq_) {
    // The collector holds more than this spool ever made (the spool was
    // reset): never hand out a seq it already has.
    LogWarning("spool: collector has seq ", up_to, ", spool only ", next_seq_ - 1,
               "; continuing after it");
    next_seq_ = up_to + 1;
    save_now = true;  // the acked file carries next_seq_ across restarts
  }
  acked_ = up_to;
  while (!lost_.empty() && lost_.front().to <= acked_) lost_.erase(lost_.begin());
  // Stored after all (the file may keep them: they are dropped when read
  // back below the saved mark, or acked again).
  purged_in_flight_.erase(purged_in_flight_.begin(),
                          std::upper_bound(purged_in_flight_.begin(), purged_in_flight_.end(),
                                           std::make_pair(acked_, UINT64_MAX)));
  if (!lost_.empty()) lost_.front().from = std::max(lost_.front().from, acked_ + 1);
  const bool frees =
      !segments_.empty() && segments_.front().last_seq != 0 && segments_.front().last_seq <= acked_;
  if (!save_now && !frees && options_.now() - acked_saved_at_ < options_.ack_persist_interval) {
    return absl::OkStatus();  // saved later: nothing depends on the file yet
  }
  // Older segments first (all acked by the collector; the one being written
  // stays, so next_seq_ survives a restart): on a full disk, the acked file
  // needs their room.
  while (segments_.size() > 1 && segments_.front().last_seq <= acked_) {
    ::unlink(segments_.front().path.c_str());
    segments_.erase(segments_.begin());
  }
  RETURN_IF_ERROR(PersistAckedLocked());
  // Only now may the last segment go: the acked file carries next_seq_.
  DropSegmentsAckedLocked();
  return absl::OkStatus();
}

absl::Status Spool::PersistAckedLocked() {
  if (acked_saved_ == acked_) return absl::OkStatus();
  const std::string path = options_.dir + "/acked";
  const std::string text = absl::StrCat(acked_, "\n");
  absl::Status st = WriteFileAtomic(path, text);
  if (!st.ok()) {
    // A full disk has no room for the temporary file, and the mark is what
    // lets the segments go that would make room: overwrite the existing file
    // in place (its block is already allocated). Acks only grow, so the new
    // text is never shorter than the old and no stale tail can remain.
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return st;
    bool ok = ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()) &&
              ::fdatasync(fd) == 0;
    ::close(fd);
    if (!ok) return st;
  }
  acked_saved_ = acked_;
  acked_saved_at_ = options_.now();
  return absl::OkStatus();
}

SpoolStats Spool::stats() const {
  std::lock_guard lock(mu_);
  SpoolStats s;
  s.next_seq = next_seq_;
  s.acked = acked_;
  s.segments = segments_.size();
  s.bytes = TotalBytesLocked();
  s.dropped = dropped_;
  s.disk_dropped = disk_dropped_;
  s.write_errors = write_errors_;
  s.backing_off = backoff_.count() > 0;
  return s;
}

absl::Status Spool::DiscardTail(uint64_t from) {
  std::lock_guard lock(mu_);
  if (from == 0 || from >= next_seq_) return absl::OkStatus();
  if (from <= acked_) {
    return absl::FailedPreconditionError(
        absl::StrCat("spool: seq ", from, " is acknowledged (up to ", acked_, ")"));
  }
  if (segments_.empty() || from < segments_.back().first_seq) {
    return absl::FailedPreconditionError(
        absl::StrCat("spool: seqs from ", from, " are not all in the last segment"));
  }
  Segment& seg = segments_.back();
  uint64_t cut = seg.bytes;
  RETURN_IF_ERROR(ScanSegment(seg.path, [&](const idflow::v1::Event& ev, size_t start, size_t) {
                    if (ev.seq() < from) return true;
                    cut = start;
                    return false;
                  }).status());
  if (::truncate(seg.path.c_str(), static_cast<off_t>(cut)) != 0) {
    return Errno(absl::StrCat(seg.path, ": truncate"));
  }
  seg.bytes = cut;
  seg.last_seq = from > seg.first_seq ? from - 1 : 0;
  seg.index.erase(std::remove_if(seg.index.begin(), seg.index.end(),
                                 [&](const auto& e) { return e.first >= from; }),
                  seg.index.end());
  next_seq_ = from;
  lost_.erase(
      std::remove_if(lost_.begin(), lost_.end(), [&](const SeqRange& r) { return r.from >= from; }),
      lost_.end());
  return absl::OkStatus();
}

uint64_t Spool::acked() const {
  std::lock_guard lock(mu_);
  return acked_;
}

uint64_t Spool::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

std::vector<SeqRange> Spool::lost() const {
  std::lock_guard lock(mu_);
  return lost_;
}

}  // namespace idflow::agent

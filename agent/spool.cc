#include "agent/spool.h"

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
#include "absl/strings/strip.h"
#include "common/digest.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace idflow::agent {
namespace {

constexpr size_t kHeader = 8;
constexpr uint32_t kMaxRecord = 1u << 20;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

uint32_t Crc(const std::string& s) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(absl::StrCat(path, ": write"));
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Calls fn(seq, event_bytes, end_offset) for each valid record; returns the
// offset just past the last valid record.
template <typename Fn>
absl::StatusOr<uint64_t> ScanSegment(const std::string& path, Fn fn) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  size_t off = 0;
  while (off + kHeader <= data.size()) {
    uint32_t len = GetU32(data.data() + off);
    uint32_t crc = GetU32(data.data() + off + 4);
    if (len > kMaxRecord || off + kHeader + len > data.size()) break;
    std::string rec = data.substr(off + kHeader, len);
    if (Crc(rec) != crc) break;
    idflow::v1::Event ev;
    if (!ev.ParseFromString(rec)) break;
    off += kHeader + len;
    if (!fn(ev, off)) break;
  }
  return static_cast<uint64_t>(off);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(const SpoolOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("spool directory not set");
  if (::mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Errno(absl::StrCat(options.dir, ": mkdir"));
  }
  std::unique_ptr<Spool> spool(new Spool(options));
  RETURN_IF_ERROR(spool->Recover());
  return spool;
}

Spool::~Spool() {
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
    if (seg.last_seq == 0 || seg.last_seq <= acked_) {
      ::unlink(seg.path.c_str());  // empty or fully acknowledged
      continue;
    }
    last = std::max(last, seg.last_seq);
    segments_.push_back(seg);
  }
  next_seq_ = last + 1;
  return absl::OkStatus();
}

absl::Status Spool::RecoverSegment(Segment* seg) {
  uint64_t last = 0;
  ASSIGN_OR_RETURN(uint64_t good_end,
                   ScanSegment(seg->path, [&](const idflow::v1::Event& ev, size_t) {
                     last = ev.seq();
                     return true;
                   }));
  struct stat st {};
  if (::stat(seg->path.c_str(), &st) != 0) return Errno(seg->path);
  if (static_cast<uint64_t>(st.st_size) != good_end) {
    // Torn or corrupt tail: keep the valid prefix.
    if (::truncate(seg->path.c_str(), static_cast<off_t>(good_end)) != 0) {
      return Errno(absl::StrCat(seg->path, ": truncate"));
    }
  }
  seg->last_seq = last;
  seg->bytes = good_end;
  return absl::OkStatus();
}

absl::Status Spool::OpenNewSegment(uint64_t first_seq) {
  if (write_fd_ >= 0) ::close(write_fd_);
  Segment seg;
  seg.first_seq = first_seq;
  seg.path = absl::StrFormat("%s/seg-%020d.log", options_.dir, first_seq);
  write_fd_ = ::open(seg.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (write_fd_ < 0) return Errno(absl::StrCat(seg.path, ": open"));
  segments_.push_back(seg);
  return absl::OkStatus();
}

absl::Status Spool::Append(std::vector<idflow::v1::Event>* events) {
  if (events->empty()) return absl::OkStatus();
  std::lock_guard lock(mu_);
  if (write_fd_ < 0 || segments_.empty() || segments_.back().bytes >= options_.segment_bytes) {
    RETURN_IF_ERROR(OpenNewSegment(next_seq_));
  }
  std::string buf;
  uint64_t seq = next_seq_;
  for (auto& ev : *events) {
    ev.set_agent_id(agent_id_);
    ev.set_seq(seq++);
    std::string rec = ev.SerializeAsString();
    if (rec.size() > kMaxRecord) return absl::InvalidArgumentError("event larger than 1 MiB");
    char hdr[kHeader];
    PutU32(hdr, static_cast<uint32_t>(rec.size()));
    PutU32(hdr + 4, Crc(rec));
    buf.append(hdr, kHeader);
    buf.append(rec);
  }
  Segment& seg = segments_.back();
  absl::Status st = WriteAll(write_fd_, buf, seg.path);
  if (st.ok() && options_.sync && ::fdatasync(write_fd_) != 0) st = Errno(seg.path + ": fdatasync");
  if (!st.ok()) {
    // Drop the partial write so the segment stays a valid prefix.
    (void)!::ftruncate(write_fd_, static_cast<off_t>(seg.bytes));
    for (auto& ev : *events) ev.set_seq(0);
    return st;
  }
  if (seg.last_seq == 0) seg.first_seq = next_seq_;
  seg.bytes += buf.size();
  seg.last_seq = seq - 1;
  next_seq_ = seq;
  EnforceBound();
  return absl::OkStatus();
}

void Spool::EnforceBound() {
  uint64_t total = 0;
  for (const auto& s : segments_) total += s.bytes;
  // Never delete the segment being written.
  while (total > options_.max_bytes && segments_.size() > 1) {
    Segment old = segments_.front();
    uint64_t first_unacked = std::max(old.first_seq, acked_ + 1);
    if (old.last_seq >= first_unacked) dropped_ += old.last_seq - first_unacked + 1;
    acked_ = std::max(acked_, old.last_seq);  // the purged range is gone for good
    ::unlink(old.path.c_str());
    total -= old.bytes;
    segments_.erase(segments_.begin());
  }
}

absl::StatusOr<std::vector<idflow::v1::Event>> Spool::ReadAfter(uint64_t after, size_t max_events,
                                                                size_t max_bytes) {
  std::vector<Segment> segs;
  {
    std::lock_guard lock(mu_);
    after = std::max(after, acked_);
    for (const auto& s : segments_) {
      if (s.last_seq > after) segs.push_back(s);
    }
  }
  std::vector<idflow::v1::Event> out;
  size_t bytes = 0;
  for (const auto& seg : segs) {
    absl::StatusOr<uint64_t> r = ScanSegment(seg.path, [&](const idflow::v1::Event& ev, size_t) {
      if (ev.seq() <= after) return true;
      if (out.size() >= max_events || bytes >= max_bytes) return false;
      bytes += ev.ByteSizeLong();
      out.push_back(ev);
      return true;
    });
    // A segment purged meanwhile is not an error: the next read skips it.
    if (!r.ok() && !absl::IsNotFound(r.status())) return r.status();
    if (out.size() >= max_events || bytes >= max_bytes) break;
  }
  return out;
}

absl::Status Spool::Ack(uint64_t up_to) {
  std::lock_guard lock(mu_);
  if (up_to <= acked_) return absl::OkStatus();
  up_to = std::min(up_to, next_seq_ - 1);
  acked_ = up_to;
  RETURN_IF_ERROR(WriteFileAtomic(options_.dir + "/acked", absl::StrCat(acked_, "\n")));
  while (segments_.size() > 1 && segments_.front().last_seq <= acked_) {
    ::unlink(segments_.front().path.c_str());
    segments_.erase(segments_.begin());
  }
  return absl::OkStatus();
}

SpoolStats Spool::stats() const {
  std::lock_guard lock(mu_);
  SpoolStats s;
  s.next_seq = next_seq_;
  s.acked = acked_;
  s.segments = segments_.size();
  for (const auto& seg : segments_) s.bytes += seg.bytes;
  s.dropped = dropped_;
  return s;
}

uint64_t Spool::acked() const {
  std::lock_guard lock(mu_);
  return acked_;
}

uint64_t Spool::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

}  // namespace idflow::agent

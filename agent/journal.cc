#include "agent/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/record_io.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace idflow::agent {
namespace {

constexpr char kEvent = 'E';
constexpr char kFlush = 'F';
constexpr char kRing = 'R';

void PutU64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

ssize_t PosixWrite(int fd, const void* buf, size_t n) { return ::write(fd, buf, n); }

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(std::string path, bool buffered) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat(path, ": open"));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, absl::StrCat(path, ": fstat"));
  }
  return std::unique_ptr<Journal>(
      new Journal(std::move(path), fd, static_cast<uint64_t>(st.st_size), buffered));
}

Journal::~Journal() { ::close(fd_); }

absl::Status Journal::Write(absl::string_view payload) {
  AppendRecord(payload, &scratch_);
  return buffered_ ? absl::OkStatus() : CommitLocked();
}

absl::Status Journal::Commit() {
  std::lock_guard lock(mu_);
  return CommitLocked();
}

absl::Status Journal::CommitLocked() {
  if (scratch_.empty()) return absl::OkStatus();
  absl::Status st = WriteAll(PosixWrite, fd_, scratch_, path_);
  if (!st.ok()) {
    // Keep the file a valid prefix so later records still replay.
    (void)!::ftruncate(fd_, static_cast<off_t>(bytes_));
  } else {
    bytes_ += scratch_.size();
  }
  scratch_.clear();
  if (scratch_.capacity() > (1 << 20)) scratch_.shrink_to_fit();
  return st;
}

absl::Status Journal::Append(const idflow::v1::Event& event) {
  std::lock_guard lock(mu_);
  payload_.assign(1, kEvent);
  event.AppendToString(&payload_);
  return Write(payload_);
}

absl::Status Journal::Append(const idflow::v1::Event& event, uint64_t ring_id, uint64_t ring_next) {
  std::lock_guard lock(mu_);
  payload_.assign(1, kRing);
  PutU64(ring_id, &payload_);
  PutU64(ring_next, &payload_);
  event.AppendToString(&payload_);
  return Write(payload_);
}

absl::Status Journal::AppendCursor(uint64_t ring_id, uint64_t ring_next) {
  std::lock_guard lock(mu_);
  payload_.assign(1, kRing);
  PutU64(ring_id, &payload_);
  PutU64(ring_next, &payload_);
  return Write(payload_);
}

absl::Status Journal::MarkFlush(uint64_t first_seq, uint64_t last_seq) {
  std::lock_guard lock(mu_);
  return Write(absl::StrCat(std::string(1, kFlush), last_seq, ":", first_seq));
}

absl::Status Journal::Reset() {
  std::lock_guard lock(mu_);
  scratch_.clear();
  if (bytes_ == 0) return absl::OkStatus();
  if (::ftruncate(fd_, 0) != 0) return ErrnoStatus(errno, absl::StrCat(path_, ": ftruncate"));
  bytes_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<idflow::v1::Event>> Journal::Replay(uint64_t spool_last_seq) const {
  ASSIGN_OR_RETURN(JournalReplay r, ReplayAll(spool_last_seq));
  return std::move(r.events);
}

absl::StatusOr<JournalReplay> Journal::ReplayAll(uint64_t spool_last_seq) const {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::string data, ReadFile(path_));
  JournalReplay out;
  std::vector<idflow::v1::Event>& pending = out.events;
  auto parse_event = [&](const char* p, size_t n) {
    idflow::v1::Event ev;
    if (!ev.ParseFromArray(p, static_cast<int>(n))) return false;
    pending.push_back(std::move(ev));
    return true;
  };
  ScanRecords(data, [&](absl::string_view rec, size_t, size_t) {
    if (rec.empty()) return false;
    if (rec[0] == kEvent) {
      if (!parse_event(rec.data() + 1, rec.size() - 1)) return false;
    } else if (rec[0] == kRing) {
      if (rec.size() < 17) return false;
      const uint64_t id = GetU64(rec.data() + 1), next = GetU64(rec.data() + 9);
      if (rec.size() > 17 && !parse_event(rec.data() + 17, rec.size() - 17)) return false;
      auto it = std::find_if(out.cursors.begin(), out.cursors.end(),
                             [&](const auto& c) { return c.first == id; });
      if (it == out.cursors.end()) {
        out.cursors.emplace_back(id, next);
      } else {
        it->second = std::max(it->second, next);
      }
    } else if (rec[0] == kFlush) {
      // "N" (older journals) or "N:S".
      std::vector<absl::string_view> f = absl::StrSplit(rec.substr(1), ':');
      uint64_t n = 0, first = 0;
      if (f.empty() || f.size() > 2 || !absl::SimpleAtoi(f[0], &n)) return false;
      if (f.size() == 2 && !absl::SimpleAtoi(f[1], &first)) return false;
      if (spool_last_seq >= n) {
        pending.clear();  // that flush reached the spool
        out.torn_from = 0;
      } else if (first != 0 && spool_last_seq >= first) {
        out.torn_from = first;  // it reached the spool in part
      } else {
        out.torn_from = 0;
      }
    } else {
      return false;
    }
    return true;
  });
  return out;
}

uint64_t Journal::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace idflow::agent

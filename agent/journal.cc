#include "agent/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/record_io.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace idflow::agent {
namespace {

constexpr char kEvent = 'E';
constexpr char kFlush = 'F';

ssize_t PosixWrite(int fd, const void* buf, size_t n) { return ::write(fd, buf, n); }

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(std::string path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat(path, ": open"));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, absl::StrCat(path, ": fstat"));
  }
  return std::unique_ptr<Journal>(
      new Journal(std::move(path), fd, static_cast<uint64_t>(st.st_size)));
}

Journal::~Journal() { ::close(fd_); }

absl::Status Journal::Write(const std::string& payload) {
  scratch_.clear();
  AppendRecord(payload, &scratch_);
  absl::Status st = WriteAll(PosixWrite, fd_, scratch_, path_);
  if (!st.ok()) {
    // Keep the file a valid prefix so later records still replay.
    (void)!::ftruncate(fd_, static_cast<off_t>(bytes_));
    return st;
  }
  bytes_ += scratch_.size();
  return absl::OkStatus();
}

absl::Status Journal::Append(const idflow::v1::Event& event) {
  std::lock_guard lock(mu_);
  std::string payload(1, kEvent);
  event.AppendToString(&payload);
  return Write(payload);
}

absl::Status Journal::MarkFlush(uint64_t last_seq_after_flush) {
  std::lock_guard lock(mu_);
  return Write(absl::StrCat(std::string(1, kFlush), last_seq_after_flush));
}

absl::Status Journal::Reset() {
  std::lock_guard lock(mu_);
  if (bytes_ == 0) return absl::OkStatus();
  if (::ftruncate(fd_, 0) != 0) return ErrnoStatus(errno, absl::StrCat(path_, ": ftruncate"));
  bytes_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<idflow::v1::Event>> Journal::Replay(uint64_t spool_last_seq) const {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::string data, ReadFile(path_));
  std::vector<idflow::v1::Event> pending;
  ScanRecords(data, [&](absl::string_view rec, size_t, size_t) {
    if (rec.empty()) return false;
    if (rec[0] == kEvent) {
      idflow::v1::Event ev;
      if (!ev.ParseFromArray(rec.data() + 1, static_cast<int>(rec.size() - 1))) return false;
      pending.push_back(std::move(ev));
    } else if (rec[0] == kFlush) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(rec.substr(1), &n)) return false;
      if (spool_last_seq >= n) pending.clear();  // that flush reached the spool
    } else {
      return false;
    }
    return true;
  });
  return pending;
}

uint64_t Journal::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace idflow::agent

#include "agent/dead_letter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "agent/record_io.h"
#include "common/file_util.h"

namespace idflow::agent {

DeadLetterFile::DeadLetterFile(std::string dir, uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {}

absl::Status DeadLetterFile::Write(const std::vector<idflow::v1::Event>& events,
                                   absl::string_view reason) {
  std::string buf;
  AppendRecord(absl::StrCat("R", reason.substr(0, 4096)), &buf);
  std::string payload;
  for (const auto& ev : events) {
    payload.assign(1, 'E');
    ev.AppendToString(&payload);
    std::string rec;
    AppendRecord(payload, &rec);
    if (buf.size() + rec.size() > max_bytes_ / 2) break;  // the rest is counted, not kept
    buf += rec;
  }
  std::lock_guard lock(mu_);
  const std::string p = path();
  struct stat st {};
  if (::stat(p.c_str(), &st) == 0 &&
      static_cast<uint64_t>(st.st_size) + buf.size() > max_bytes_ / 2) {
    if (::rename(p.c_str(), (dir_ + "/dead_letter.1.log").c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat(p, ": rotate"));
    }
  }
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat(p, ": open"));
  absl::Status status =
      WriteAll([](int f, const void* b, size_t n) { return ::write(f, b, n); }, fd, buf, p);
  if (status.ok() && ::fdatasync(fd) != 0) status = ErrnoStatus(errno, absl::StrCat(p, ": fsync"));
  ::close(fd);
  return status;
}

absl::StatusOr<std::vector<idflow::v1::Event>> DeadLetterFile::ReadAll() const {
  std::lock_guard lock(mu_);
  std::vector<idflow::v1::Event> out;
  for (const std::string& p : {dir_ + "/dead_letter.1.log", path()}) {
    absl::StatusOr<std::string> data = ReadFile(p);
    if (!data.ok()) continue;
    ScanRecords(*data, [&](absl::string_view rec, size_t, size_t) {
      if (!rec.empty() && rec[0] == 'E') {
        idflow::v1::Event ev;
        if (ev.ParseFromArray(rec.data() + 1, static_cast<int>(rec.size() - 1))) {
          out.push_back(std::move(ev));
        }
      }
      return true;
    });
  }
  return out;
}

}  // namespace idflow::agent

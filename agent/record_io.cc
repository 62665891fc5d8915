#include "agent/record_io.h"

#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace idflow::agent {

uint32_t RecordCrc(const char* p, size_t n) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return v;
}

void AppendRecord(absl::string_view payload, std::string* out) {
  char hdr[kRecordHeader];
  PutU32(hdr, static_cast<uint32_t>(payload.size()));
  PutU32(hdr + 4, RecordCrc(payload.data(), payload.size()));
  out->append(hdr, kRecordHeader);
  out->append(payload.data(), payload.size());
}

size_t ScanRecords(absl::string_view data,
                   const std::function<bool(absl::string_view, size_t, size_t)>& fn) {
  size_t off = 0;
  while (off + kRecordHeader <= data.size()) {
    uint32_t len = GetU32(data.data() + off);
    uint32_t crc = GetU32(data.data() + off + 4);
    if (len > kMaxRecordPayload || off + kRecordHeader + len > data.size()) break;
    absl::string_view payload = data.substr(off + kRecordHeader, len);
    if (RecordCrc(payload.data(), payload.size()) != crc) break;
    const size_t start = off;
    if (!fn(payload, start, off + kRecordHeader + len)) break;
    off += kRecordHeader + len;
  }
  return off;
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

absl::Status WriteAll(const std::function<ssize_t(int, const void*, size_t)>& write_fn, int fd,
                      absl::string_view data, absl::string_view path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write_fn(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat(path, ": write"));
    }
    if (n == 0) return absl::ResourceExhaustedError(absl::StrCat(path, ": short write"));
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace idflow::agent

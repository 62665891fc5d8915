// Framing shared by the spool, the ingress journal and the dead-letter file:
// each record is u32 length, u32 crc32 (little endian), then the payload. A
// reader stops at the first short, oversized or corrupt record, which is how
// a torn tail (crash or power loss mid-write) is found.
#ifndef IDFLOW_AGENT_RECORD_IO_H_
#define IDFLOW_AGENT_RECORD_IO_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace idflow::agent {

inline constexpr size_t kRecordHeader = 8;
inline constexpr uint32_t kMaxRecordPayload = 1u << 20;

uint32_t RecordCrc(const char* p, size_t n);
void PutU32(char* p, uint32_t v);
uint32_t GetU32(const char* p);

// Appends one framed record to `out`.
void AppendRecord(absl::string_view payload, std::string* out);

// Calls fn(payload, start, end) for each intact record of `data` until fn
// returns false; returns the offset just past the last intact record.
size_t ScanRecords(absl::string_view data,
                   const std::function<bool(absl::string_view, size_t, size_t)>& fn);

// errno as a status: ResourceExhausted for ENOSPC/EDQUOT, else Internal.
absl::Status ErrnoStatus(int err, absl::string_view what);

// write(2) until done, retrying EINTR, through `write_fn` (replaceable).
absl::Status WriteAll(const std::function<ssize_t(int, const void*, size_t)>& write_fn, int fd,
                      absl::string_view data, absl::string_view path);

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_RECORD_IO_H_

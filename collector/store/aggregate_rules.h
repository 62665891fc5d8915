// What the aggregate queries accept and where they are served from: the
// rules of store.h's QueryMatrix / QueryHistogram, in one place for every
// back-end.
#ifndef IDFLOW_COLLECTOR_STORE_AGGREGATE_RULES_H_
#define IDFLOW_COLLECTOR_STORE_AGGREGATE_RULES_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "collector/store/store.h"

namespace idflow::store {

inline constexpr int64_t kAggregateHourMs = 3600000;

// Start of the UTC hour holding `ms` (floor, also before 1970).
inline int64_t HourStart(int64_t ms) {
  int64_t r = ms % kAggregateHourMs;
  return r < 0 ? ms - r - kAggregateHourMs : ms - r;
}

// The matrix keeps no agent or run.
inline absl::Status CheckMatrixFilter(const VerdictFilter& f) {
  if (f.agent_id.empty() && f.run_id.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "the verdict matrix keeps no agent or run: filter by device, SDK, data type, verdict, "
      "finding or time");
}

// True when the small (sdk, data_type, verdict) table answers `f` alone;
// otherwise the groups are summed.
inline bool MatrixFromSummary(const VerdictFilter& f) {
  return f.device_id.empty() && f.device_class.empty() && f.firmware.empty() &&
         f.since_unix_ms <= 0 && f.until_unix_ms <= 0;
}

// Buckets are whole hours; the hourly table keeps device, SDK, data type,
// verdict and finding only.
inline absl::Status CheckHistogramQuery(const VerdictFilter& f, int64_t bucket_ms) {
  if (bucket_ms <= 0 || bucket_ms % kAggregateHourMs != 0) {
    return absl::InvalidArgumentError(absl::StrCat("histogram bucket of ", bucket_ms,
                                                   " ms: must be a positive multiple of one hour"));
  }
  if (!f.device_class.empty() || !f.firmware.empty() || !f.agent_id.empty() || !f.run_id.empty()) {
    return absl::InvalidArgumentError(
        "the histogram keeps device, SDK, data type, verdict and hour only: device class, "
        "firmware, agent and run filters are not supported");
  }
  return absl::OkStatus();
}

}  // namespace idflow::store

#endif  // IDFLOW_COLLECTOR_STORE_AGGREGATE_RULES_H_

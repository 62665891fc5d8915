// Shared set-up for the tap benchmarks: a synthetic device identity large
// enough to give a ~1,000-pattern Vectorscan database (built with the agent's
// own PatternDb, so it tracks whatever encodings the agent compiles), the
// literal forms that database holds (for grep and for injecting identifiers
// into payloads) and realistic identifier-free payloads.
#ifndef IDFLOW_BENCH_TAP_BENCH_DB_H_
#define IDFLOW_BENCH_TAP_BENCH_DB_H_

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/inventory.h"
#include "agent/pattern_db.h"

namespace idflow::bench {

struct BenchDb {
  agent::Identity identity;
  std::shared_ptr<const agent::PatternDb> db;
  // Byte strings verified to be compiled patterns of `db` (each one matches
  // exactly one pattern over its whole length). Normally db->size() of them;
  // fewer only if the agent gained an encoding this file does not know.
  std::vector<std::string> forms;
};

// Adds synthetic identifiers (MAC, Bluetooth, OAID, device id in turn) until
// the database holds at least `min_patterns` patterns. Deterministic.
absl::StatusOr<BenchDb> BuildBenchDb(size_t min_patterns);

// Printable, identifier-free bytes shaped like JSON telemetry. Deterministic
// for a given seed.
std::string MakePayload(size_t size, uint64_t seed);

// Writes `forms` one per line, skipping forms that contain '\n' or '\0'
// (raw binary forms a line-based grep cannot take). Returns how many were
// written.
absl::StatusOr<size_t> WritePatternLines(const std::string& path,
                                         const std::vector<std::string>& forms);

}  // namespace idflow::bench

#endif  // IDFLOW_BENCH_TAP_BENCH_DB_H_

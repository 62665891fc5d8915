// The pattern database of the agent-side fuzz harnesses: one MAC address in
// every encoding the agent matches.
#ifndef IDFLOW_TESTS_FUZZ_FUZZ_PATTERN_DB_H_
#define IDFLOW_TESTS_FUZZ_FUZZ_PATTERN_DB_H_

#include <memory>

#include "agent/inventory.h"
#include "agent/pattern_db.h"
#include "tests/fuzz/fuzz_util.h"

namespace idflow::fuzz {

inline std::shared_ptr<const agent::PatternDb> MacPatternDb() {
  static std::shared_ptr<const agent::PatternDb> db = [] {
    agent::Identity id;
    id.digest_key = "k";
    id.identifiers = {{"mac_address", "eth0", "00:1a:2b:3c:4d:5e", "identity_file"}};
    auto built = agent::PatternDb::Build(id);
    if (!built.ok()) Die("no database");
    return std::make_shared<const agent::PatternDb>(std::move(*built));
  }();
  return db;
}

}  // namespace idflow::fuzz

#endif  // IDFLOW_TESTS_FUZZ_FUZZ_PATTERN_DB_H_

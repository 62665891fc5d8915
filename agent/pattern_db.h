// The compiled set of identifier forms the tap looks for in outgoing bytes.
// Each identifier expands into encoded forms (raw, upper, nosep, md5, ...);
// identical byte strings are kept once (first label wins) and compiled as
// literals with Vectorscan. The serialized database is what the agent sends
// to every tap; pattern ids index PatternInfo, which carries only the keyed
// digest, never the raw value.
#ifndef IDFLOW_AGENT_PATTERN_DB_H_
#define IDFLOW_AGENT_PATTERN_DB_H_

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/inventory.h"

struct hs_database;

namespace idflow::agent {

struct PatternInfo {
  std::string kind;      // identifier kind
  std::string instance;  // identifier instance (interface...)
  // How the value was written. Addresses: raw (aa:bb:..), upper, dash,
  // dash_upper, dot (Cisco aabb.ccdd.eeff), dot_upper, nosep, nosep_upper,
  // reversed/reversed_upper (Bluetooth, HCI byte order), bytes (6 raw bytes),
  // bytes_reversed, bytes_base64, bytes_base64url, url, url_upper. Other
  // kinds: raw, lower, upper, nosep, nosep_upper, url. Both: md5, sha1,
  // sha256 of the raw text (hex; _upper; _base64 of the digest bytes), the
  // same of another textual form as "md5(nosep_upper)"..., base64 and
  // "base64(form)" of the textual forms, base64_inner (the canonical form
  // base64-encoded inside a larger payload, at any alignment).
  // See docs/IDENTIFIERS.md.
  std::string encoding;
  std::string digest;  // KeyedDigest(digest_key, canonical value)
};

class PatternDb {
 public:
  struct Match {
    uint32_t id;
    size_t start;  // byte offset of the first matched byte
    size_t end;    // one past the last matched byte
  };

  // Forms shorter than this are not compiled: they would match everywhere.
  static constexpr size_t kMinFormBytes = 6;

  // Builds from identity.identifiers followed by `discovered` (sysfs).
  // Placeholders are skipped. With no usable identifier the database is empty:
  // size() == 0 and serialized() is empty ("nothing to scan").
  static absl::StatusOr<PatternDb> Build(const Identity& identity,
                                         const std::vector<Identifier>& discovered = {});

  PatternDb(PatternDb&&) noexcept;
  PatternDb& operator=(PatternDb&&) noexcept;
  ~PatternDb();

  // nullptr for an unknown id (ids come from the tap: never trust them).
  const PatternInfo* Lookup(uint32_t id) const;
  const std::string& serialized() const { return serialized_; }
  // The compiled database (nullptr when empty), for callers that scan with
  // their own scratch (the tap's handed-over calls).
  const hs_database* database() const { return db_; }
  size_t size() const { return infos_.size(); }

  // All matches, ordered by (start, id). Thread-safe (scratch per thread).
  std::vector<Match> Scan(std::string_view data) const;

  // Replaces every identifier form in `context` by "<kind>" and masks any
  // remaining run of 8+ hex digits (':'/'-' separators allowed) by "<hex>", so
  // a snippet cut through an identifier does not leak a partial raw value.
  std::string Redact(std::string_view context) const;

 private:
  PatternDb() = default;

  std::vector<PatternInfo> infos_;
  std::vector<size_t> lengths_;  // byte length of each compiled form
  std::string serialized_;
  hs_database* db_ = nullptr;
  // Unique per compiled database (addresses get reused): tells a thread's
  // cached scratch whether it was sized for this database.
  uint64_t scratch_key_ = 0;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_PATTERN_DB_H_

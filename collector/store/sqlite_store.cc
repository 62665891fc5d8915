#include "collector/store/sqlite_store.h"

#include <sqlite3.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <iterator>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/verdict_categories.h"
#include "nlohmann/json.hpp"

namespace idflow::store {
namespace {

// Forward migrations, index i takes the schema from version i to i + 1. Never
// edit a shipped entry: append a new one and bump kSchemaVersion.
constexpr const char* kMigrations[] = {
    // v1: events with their verdicts, unique per (agent_id, seq).
    R"sql(
CREATE TABLE events (
  id                INTEGER PRIMARY KEY,
  agent_id          TEXT    NOT NULL,
  seq               INTEGER NOT NULL,
  device_id         TEXT    NOT NULL DEFAULT '',
  device_class      TEXT    NOT NULL DEFAULT '',
  firmware          TEXT    NOT NULL DEFAULT '',
  pid               INTEGER NOT NULL DEFAULT 0,
  exe               TEXT    NOT NULL DEFAULT '',
  module            TEXT    NOT NULL DEFAULT '',
  module_build_id   TEXT    NOT NULL DEFAULT '',
  sdk               TEXT    NOT NULL DEFAULT '',
  action            TEXT    NOT NULL DEFAULT '',
  channel           TEXT    NOT NULL DEFAULT '',
  dest_ip           TEXT    NOT NULL DEFAULT '',
  dest_port         INTEGER NOT NULL DEFAULT 0,
  dest_host         TEXT    NOT NULL DEFAULT '',
  dest_peer_exe     TEXT    NOT NULL DEFAULT '',
  destination       TEXT    NOT NULL DEFAULT '',
  data_type         TEXT    NOT NULL DEFAULT '',
  instance          TEXT    NOT NULL DEFAULT '',
  encoding          TEXT    NOT NULL DEFAULT '',
  digest            TEXT    NOT NULL DEFAULT '',
  byte_offset       INTEGER NOT NULL DEFAULT 0,
  snippet           TEXT    NOT NULL DEFAULT '',
  scenarios         TEXT,
  consents          TEXT,
  count             INTEGER NOT NULL DEFAULT 1,
  first_seen_ms     INTEGER NOT NULL DEFAULT 0,
  last_seen_ms      INTEGER NOT NULL DEFAULT 0,
  verdict           TEXT    NOT NULL DEFAULT '',
  statement         TEXT    NOT NULL DEFAULT '',
  statement_version TEXT    NOT NULL DEFAULT '',
  entry             TEXT    NOT NULL DEFAULT '',
  explanation       TEXT    NOT NULL DEFAULT '',
  UNIQUE (agent_id, seq)
);
CREATE INDEX events_device ON events (device_id, last_seen_ms);
CREATE INDEX events_sdk ON events (sdk, last_seen_ms);
CREATE INDEX events_verdict ON events (verdict, last_seen_ms);
CREATE INDEX events_last_seen ON events (last_seen_ms);
)sql",
    // v2: call chains, findings, typed cookie fields and structured consents
    // (JSON object; the v1 `consents` list column is no longer written).
    R"sql(
ALTER TABLE events ADD COLUMN call_chain TEXT NOT NULL DEFAULT '[]';
ALTER TABLE events ADD COLUMN sdk_hint TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN finding TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN cookie_name TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN cookie_direction TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN cookie_domain TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN cookie_max_age INTEGER NOT NULL DEFAULT -1;
ALTER TABLE events ADD COLUMN cookie_session INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN cookie_first_party INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN consents_json TEXT NOT NULL DEFAULT '{}';
UPDATE events SET finding = CASE verdict WHEN 'clear' THEN 'clear' ELSE 'violation' END;
CREATE INDEX events_finding ON events (finding, last_seen_ms);
)sql",
    // v3: agents with their reported drops, and declared sequence gaps.
    R"sql(
CREATE TABLE agents (
  agent_id          TEXT    PRIMARY KEY,
  device_id         TEXT    NOT NULL DEFAULT '',
  device_class      TEXT    NOT NULL DEFAULT '',
  firmware          TEXT    NOT NULL DEFAULT '',
  agent_version     TEXT    NOT NULL DEFAULT '',
  last_seen_ms      INTEGER NOT NULL DEFAULT 0,
  drops_tap         INTEGER NOT NULL DEFAULT 0,
  drops_ingress     INTEGER NOT NULL DEFAULT 0,
  drops_spool       INTEGER NOT NULL DEFAULT 0,
  drops_disk        INTEGER NOT NULL DEFAULT 0,
  drops_dead_letter INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX agents_device ON agents (device_id);
CREATE TABLE gaps (
  agent_id    TEXT    NOT NULL,
  from_seq    INTEGER NOT NULL,
  to_seq      INTEGER NOT NULL,
  cause       TEXT    NOT NULL,
  recorded_ms INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
  PRIMARY KEY (agent_id, from_seq)
);
)sql",
    // v4: the QA run an event belongs to (idflowctl qa / IDFLOW_RUN_ID).
    R"sql(
ALTER TABLE events ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
CREATE INDEX events_run ON events (run_id, last_seen_ms);
)sql",
    // v5 (fleet scale): aggregates maintained at ingest, backfilled from the
    // stored events; per-agent accounting that survives retention; stream
    // claims fencing writes.
    R"sql(
CREATE TABLE streams (
  agent_id      TEXT    PRIMARY KEY,
  last_seq      INTEGER NOT NULL DEFAULT 0,
  events_stored INTEGER NOT NULL DEFAULT 0,
  gap_events    INTEGER NOT NULL DEFAULT 0,
  generation    INTEGER NOT NULL DEFAULT 0,
  collector_id  TEXT    NOT NULL DEFAULT '',
  claimed_ms    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO streams (agent_id, last_seq, events_stored, gap_events)
  SELECT agent_id, MAX(s), SUM(n), SUM(g) FROM (
    SELECT agent_id, MAX(seq) AS s, SUM(count) AS n, 0 AS g FROM events GROUP BY agent_id
    UNION ALL
    SELECT agent_id, MAX(to_seq), 0, SUM(to_seq - from_seq + 1) FROM gaps GROUP BY agent_id)
  GROUP BY agent_id;
CREATE TABLE verdict_groups (
  id                 INTEGER PRIMARY KEY,
  agent_id           TEXT    NOT NULL,
  seq                INTEGER NOT NULL,
  device_id          TEXT    NOT NULL,
  device_class       TEXT    NOT NULL,
  firmware           TEXT    NOT NULL,
  pid                INTEGER NOT NULL,
  exe                TEXT    NOT NULL,
  module             TEXT    NOT NULL,
  module_build_id    TEXT    NOT NULL,
  sdk                TEXT    NOT NULL,
  action             TEXT    NOT NULL,
  channel            TEXT    NOT NULL,
  dest_ip            TEXT    NOT NULL,
  dest_port          INTEGER NOT NULL,
  dest_host          TEXT    NOT NULL,
  dest_peer_exe      TEXT    NOT NULL,
  destination        TEXT    NOT NULL,
  data_type          TEXT    NOT NULL,
  instance           TEXT    NOT NULL,
  encoding           TEXT    NOT NULL,
  digest             TEXT    NOT NULL,
  byte_offset        INTEGER NOT NULL,
  snippet            TEXT    NOT NULL,
  scenarios          TEXT,
  consents           TEXT,
  count              INTEGER NOT NULL,
  first_seen_ms      INTEGER NOT NULL,
  last_seen_ms       INTEGER NOT NULL,
  verdict            TEXT    NOT NULL,
  statement          TEXT    NOT NULL,
  statement_version  TEXT    NOT NULL,
  entry              TEXT    NOT NULL,
  explanation        TEXT    NOT NULL,
  call_chain         TEXT    NOT NULL,
  sdk_hint           TEXT    NOT NULL,
  finding            TEXT    NOT NULL,
  cookie_name        TEXT    NOT NULL,
  cookie_direction   TEXT    NOT NULL,
  cookie_domain      TEXT    NOT NULL,
  cookie_max_age     INTEGER NOT NULL,
  cookie_session     INTEGER NOT NULL,
  cookie_first_party INTEGER NOT NULL,
  consents_json      TEXT    NOT NULL,
  run_id             TEXT    NOT NULL,
  finding_rank       INTEGER NOT NULL,
  total              INTEGER NOT NULL,
  group_first_ms     INTEGER NOT NULL,
  UNIQUE (device_id, device_class, firmware, sdk, module, data_type, encoding, destination,
          cookie_name, cookie_direction, verdict, statement, statement_version, entry)
);
INSERT INTO verdict_groups (agent_id, seq, device_id, device_class, firmware, pid, exe, module,
    module_build_id, sdk, action, channel, dest_ip, dest_port, dest_host, dest_peer_exe,
    destination, data_type, instance, encoding, digest, byte_offset, snippet, scenarios, consents,
    count, first_seen_ms, last_seen_ms, verdict, statement, statement_version, entry, explanation,
    call_chain, sdk_hint, finding, cookie_name, cookie_direction, cookie_domain, cookie_max_age,
    cookie_session, cookie_first_party, consents_json, run_id, finding_rank, total, group_first_ms)
  SELECT agent_id, seq, device_id, device_class, firmware, pid, exe, module,
    module_build_id, sdk, action, channel, dest_ip, dest_port, dest_host, dest_peer_exe,
    destination, data_type, instance, encoding, digest, byte_offset, snippet, scenarios, consents,
    count, first_seen_ms, last_seen_ms, verdict, statement, statement_version, entry, explanation,
    call_chain, sdk_hint, finding, cookie_name, cookie_direction, cookie_domain, cookie_max_age,
    cookie_session, cookie_first_party, consents_json, run_id,
    CASE finding WHEN 'violation' THEN 0 WHEN 'observation' THEN 1 ELSE 2 END, total, fs
  FROM (SELECT *,
          ROW_NUMBER() OVER (g ORDER BY last_seen_ms DESC, id DESC) AS rn,
          SUM(count) OVER g AS total, MIN(first_seen_ms) OVER g AS fs
        FROM events
        WINDOW g AS (PARTITION BY device_id, device_class, firmware, sdk, module, data_type,
                     encoding, destination, cookie_name, cookie_direction, verdict, statement,
                     statement_version, entry))
  WHERE rn = 1 ORDER BY id;
CREATE INDEX groups_order ON verdict_groups (finding_rank, last_seen_ms DESC);
CREATE INDEX groups_class ON verdict_groups (device_class);
CREATE INDEX groups_firmware ON verdict_groups (firmware);
CREATE INDEX groups_sdk ON verdict_groups (sdk, finding_rank, last_seen_ms DESC);
CREATE INDEX groups_data_type ON verdict_groups (data_type);
CREATE INDEX groups_verdict ON verdict_groups (verdict);
CREATE TABLE verdict_matrix (
  sdk           TEXT    NOT NULL,
  data_type     TEXT    NOT NULL,
  verdict       TEXT    NOT NULL,
  finding       TEXT    NOT NULL,
  total         INTEGER NOT NULL,
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL,
  PRIMARY KEY (sdk, data_type, verdict)
) WITHOUT ROWID;
INSERT INTO verdict_matrix
  SELECT sdk, data_type, verdict, MIN(finding), SUM(count), MIN(first_seen_ms), MAX(last_seen_ms)
  FROM events GROUP BY sdk, data_type, verdict;
CREATE TABLE verdict_hourly (
  hour_ms   INTEGER NOT NULL,
  device_id TEXT    NOT NULL,
  sdk       TEXT    NOT NULL,
  data_type TEXT    NOT NULL,
  verdict   TEXT    NOT NULL,
  finding   TEXT    NOT NULL,
  total     INTEGER NOT NULL,
  PRIMARY KEY (hour_ms, device_id, sdk, data_type, verdict)
) WITHOUT ROWID;
INSERT INTO verdict_hourly
  SELECT last_seen_ms - (((last_seen_ms % 3600000) + 3600000) % 3600000) AS h, device_id, sdk,
         data_type, verdict, MIN(finding), SUM(count)
  FROM events GROUP BY h, device_id, sdk, data_type, verdict;
)sql",
    // v6 (dashboard at 10M events): the overview's histogram across devices
    // from an (hour, SDK, verdict) rollup, ~device x data-type times smaller
    // than verdict_hourly; the list filtered by device walks an index in
    // page order instead of sorting the device's groups.
    R"sql(
CREATE TABLE verdict_hourly_sdk (
  hour_ms   INTEGER NOT NULL,
  sdk       TEXT    NOT NULL,
  verdict   TEXT    NOT NULL,
  finding   TEXT    NOT NULL,
  total     INTEGER NOT NULL,
  PRIMARY KEY (hour_ms, sdk, verdict)
) WITHOUT ROWID;
INSERT INTO verdict_hourly_sdk
  SELECT hour_ms, sdk, verdict, MIN(finding), SUM(total)
  FROM verdict_hourly GROUP BY hour_ms, sdk, verdict;
CREATE INDEX groups_device ON verdict_groups (device_id, finding_rank, last_seen_ms DESC);
)sql",
};
static_assert(std::size(kMigrations) == SqliteStore::kSchemaVersion);

// Column order shared by INSERT and SELECT so the binder and reader agree.
constexpr const char* kColumns =
    "agent_id, seq, device_id, device_class, firmware, pid, exe, module, module_build_id, sdk, "
    "action, channel, dest_ip, dest_port, dest_host, dest_peer_exe, destination, data_type, "
    "instance, encoding, digest, byte_offset, snippet, scenarios, consents, count, "
    "first_seen_ms, last_seen_ms, verdict, statement, statement_version, entry, explanation, "
    "call_chain, sdk_hint, finding, cookie_name, cookie_direction, cookie_domain, "
    "cookie_max_age, cookie_session, cookie_first_party, consents_json, run_id";
constexpr int kNumColumns = 44;

// A verdict group: events with these equal share one verdict_groups row.
constexpr const char* kGroupKey =
    "device_id, device_class, firmware, sdk, module, data_type, encoding, destination, "
    "cookie_name, cookie_direction, verdict, statement, statement_version, entry";
constexpr int kGroupKeySize = 14;

constexpr int64_t kHourMs = 3600000;

// Start of the UTC hour holding `ms` (floor, also before 1970).
int64_t HourOf(int64_t ms) {
  int64_t r = ms % kHourMs;
  return r < 0 ? ms - r - kHourMs : ms - r;
}

int FindingRank(std::string_view finding) {
  if (finding == "violation") return 0;
  if (finding == "observation") return 1;
  return 2;
}

// Violations first, then observations, then clear.
constexpr const char* kFindingOrder =
    "CASE finding WHEN 'violation' THEN 0 WHEN 'observation' THEN 1 ELSE 2 END";

// Appends `s` as a JSON string, exactly as nlohmann::json::dump would (it
// stays the reference for anything beyond ASCII: invalid UTF-8 from the
// device is replaced, never thrown on). Written by hand because serialising
// through a json tree allocated per node on every stored row.
void AppendJsonString(std::string& out, const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80) {
      out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  size_t run = 0;  // start of the bytes not yet appended
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out.append(esc, sizeof(esc));
      }
    }
  }
  out.append(s, run, s.size() - run);
  out += '"';
}

// [{"build_id":...,"path":...}, ...]: keys in nlohmann's (sorted) order.
void ChainToJson(const std::vector<ModuleRef>& chain, std::string& out) {
  out.clear();
  out.push_back('[');
  for (size_t i = 0; i < chain.size(); ++i) {
    out += i == 0 ? "{" : ",{";
    if (!chain[i].build_id.empty()) {
      out += "\"build_id\":";
      AppendJsonString(out, chain[i].build_id);
      out += ',';
    }
    out += "\"path\":";
    AppendJsonString(out, chain[i].path);
    out += '}';
  }
  out += ']';
}

std::vector<ModuleRef> ChainFromJson(const std::string& text) {
  std::vector<ModuleRef> out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return out;
  for (const auto& m : j) {
    if (!m.is_object()) continue;
    ModuleRef r;
    if (auto p = m.find("path"); p != m.end() && p->is_string()) r.path = p->get<std::string>();
    if (auto b = m.find("build_id"); b != m.end() && b->is_string()) {
      r.build_id = b->get<std::string>();
    }
    out.push_back(std::move(r));
  }
  return out;
}

void ConsentsToJson(const std::map<std::string, bool>& consents, std::string& out) {
  out.clear();
  out.push_back('{');
  for (const auto& [k, v] : consents) {
    if (out.size() > 1) out += ',';
    AppendJsonString(out, k);
    out += v ? ":true" : ":false";
  }
  out += '}';
}

std::map<std::string, bool> ConsentsFromJson(const std::string& text) {
  std::map<std::string, bool> out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_boolean()) out[k] = v.get<bool>();
  }
  return out;
}

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kInternal;
  }
}

void BindText(sqlite3_stmt* st, int i, const std::string& s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}

// No copy: the caller keeps `s` alive until the statement is reset and its
// bindings cleared (StmtGuard).
void BindStatic(sqlite3_stmt* st, int i, std::string_view s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
}

std::string ColumnText(sqlite3_stmt* st, int i) {
  const unsigned char* p = sqlite3_column_text(st, i);
  if (p == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(st, i)));
}

// Per-row serialised fields, reused across rows so that binding allocates
// only when a row outgrows the previous ones.
struct RowScratch {
  std::string scenarios;
  std::string call_chain;
  std::string consents;
};

// Binds one record at parameters 1..kNumColumns in kColumns order, without
// copies: `r`, `destination` and `scratch` must outlive the step.
void BindRecord(sqlite3_stmt* st, const EventRecord& r, std::string_view destination,
                RowScratch& scratch) {
  int i = 0;
  BindStatic(st, ++i, r.agent_id);
  // uint64 values are stored bit-for-bit in SQLite's int64.
  sqlite3_bind_int64(st, ++i, static_cast<sqlite3_int64>(r.seq));
  BindStatic(st, ++i, r.device_id);
  BindStatic(st, ++i, r.device_class);
  BindStatic(st, ++i, r.firmware);
  sqlite3_bind_int64(st, ++i, r.pid);
  BindStatic(st, ++i, r.exe);
  BindStatic(st, ++i, r.module);
  BindStatic(st, ++i, r.module_build_id);
  BindStatic(st, ++i, r.sdk);
  BindStatic(st, ++i, r.action);
  BindStatic(st, ++i, r.channel);
  BindStatic(st, ++i, r.dest_ip);
  sqlite3_bind_int64(st, ++i, r.dest_port);
  BindStatic(st, ++i, r.dest_host);
  BindStatic(st, ++i, r.dest_peer_exe);
  BindStatic(st, ++i, destination);
  BindStatic(st, ++i, r.data_type);
  BindStatic(st, ++i, r.instance);
  BindStatic(st, ++i, r.encoding);
  BindStatic(st, ++i, r.digest);
  sqlite3_bind_int64(st, ++i, r.offset);
  BindStatic(st, ++i, r.snippet);
  if (r.scenarios.empty()) {
    sqlite3_bind_null(st, ++i);
  } else {
    EncodeListTo(r.scenarios, scratch.scenarios);
    BindStatic(st, ++i, scratch.scenarios);
  }
  sqlite3_bind_null(st, ++i);  // v1 consents list: superseded by consents_json
  sqlite3_bind_int64(st, ++i, static_cast<sqlite3_int64>(r.count));
  sqlite3_bind_int64(st, ++i, r.first_seen_unix_ms);
  sqlite3_bind_int64(st, ++i, r.last_seen_unix_ms);
  BindStatic(st, ++i, r.verdict);
  BindStatic(st, ++i, r.statement);
  BindStatic(st, ++i, r.statement_version);
  BindStatic(st, ++i, r.entry);
  BindStatic(st, ++i, r.explanation);
  ChainToJson(r.call_chain, scratch.call_chain);
  BindStatic(st, ++i, scratch.call_chain);
  BindStatic(st, ++i, r.sdk_hint);
  BindStatic(st, ++i, r.finding);
  BindStatic(st, ++i, r.has_cookie ? std::string_view(r.cookie.name) : "");
  BindStatic(st, ++i, r.has_cookie ? std::string_view(r.cookie.direction) : "");
  BindStatic(st, ++i, r.has_cookie ? std::string_view(r.cookie.domain) : "");
  sqlite3_bind_int64(st, ++i, r.has_cookie ? r.cookie.max_age_seconds : -1);
  sqlite3_bind_int(st, ++i, r.has_cookie && r.cookie.session ? 1 : 0);
  sqlite3_bind_int(st, ++i, !r.has_cookie || r.cookie.first_party ? 1 : 0);
  ConsentsToJson(r.consents, scratch.consents);
  BindStatic(st, ++i, scratch.consents);
  BindStatic(st, ++i, r.run_id);
}

void BindDrops(sqlite3_stmt* st, int first, const DropCounts& d) {
  int i = first;
  for (uint64_t v : {d.tap, d.ingress, d.spool, d.disk, d.dead_letter}) {
    sqlite3_bind_int64(st, i++, static_cast<sqlite3_int64>(v));
  }
}

std::string Params(int n) {
  std::string params = "?";
  for (int i = 1; i < n; ++i) params += ", ?";
  return params;
}

std::string InsertSql(bool skip_duplicates) {
  return absl::StrCat("INSERT INTO events (", kColumns, ") VALUES (", Params(kNumColumns), ")",
                      skip_duplicates ? " ON CONFLICT (agent_id, seq) DO NOTHING" : "");
}

// Adds a batch's summed group to its row. The sample columns follow the most
// recent event (ties: the later write); the key and the finding rank stay.
std::string GroupUpsertSql() {
  const std::vector<std::string> key = absl::StrSplit(kGroupKey, ", ");
  std::vector<std::string> sets = {"total = total + excluded.total",
                                   "group_first_ms = MIN(group_first_ms, excluded.group_first_ms)"};
  for (const std::string& col : std::vector<std::string>(absl::StrSplit(kColumns, ", "))) {
    if (std::find(key.begin(), key.end(), col) != key.end()) continue;
    sets.push_back(absl::StrCat(col, " = iif(excluded.last_seen_ms >= last_seen_ms, excluded.", col,
                                ", ", col, ")"));
  }
  return absl::StrCat("INSERT INTO verdict_groups (", kColumns,
                      ", finding_rank, total, group_first_ms) VALUES (", Params(kNumColumns + 3),
                      ") ON CONFLICT (", kGroupKey, ") DO UPDATE SET ", absl::StrJoin(sets, ", "));
}

// Reads kColumns starting at result column `c`.
EventRecord ReadRecord(sqlite3_stmt* st, int c) {
  EventRecord r;
  r.agent_id = ColumnText(st, c++);
  r.seq = static_cast<uint64_t>(sqlite3_column_int64(st, c++));
  r.device_id = ColumnText(st, c++);
  r.device_class = ColumnText(st, c++);
  r.firmware = ColumnText(st, c++);
  r.pid = sqlite3_column_int64(st, c++);
  r.exe = ColumnText(st, c++);
  r.module = ColumnText(st, c++);
  r.module_build_id = ColumnText(st, c++);
  r.sdk = ColumnText(st, c++);
  r.action = ColumnText(st, c++);
  r.channel = ColumnText(st, c++);
  r.dest_ip = ColumnText(st, c++);
  r.dest_port = static_cast<uint32_t>(sqlite3_column_int64(st, c++));
  r.dest_host = ColumnText(st, c++);
  r.dest_peer_exe = ColumnText(st, c++);
  c++;  // destination: derived, recomputed by Destination()
  r.data_type = ColumnText(st, c++);
  r.instance = ColumnText(st, c++);
  r.encoding = ColumnText(st, c++);
  r.digest = ColumnText(st, c++);
  r.offset = sqlite3_column_int64(st, c++);
  r.snippet = ColumnText(st, c++);
  if (sqlite3_column_type(st, c) != SQLITE_NULL) r.scenarios = DecodeList(ColumnText(st, c));
  c++;
  c++;  // v1 consents list: superseded by consents_json
  r.count = static_cast<uint64_t>(sqlite3_column_int64(st, c++));
  r.first_seen_unix_ms = sqlite3_column_int64(st, c++);
  r.last_seen_unix_ms = sqlite3_column_int64(st, c++);
  r.verdict = ColumnText(st, c++);
  r.statement = ColumnText(st, c++);
  r.statement_version = ColumnText(st, c++);
  r.entry = ColumnText(st, c++);
  r.explanation = ColumnText(st, c++);
  r.call_chain = ChainFromJson(ColumnText(st, c++));
  r.sdk_hint = ColumnText(st, c++);
  r.finding = ColumnText(st, c++);
  r.cookie.name = ColumnText(st, c++);
  r.cookie.direction = ColumnText(st, c++);
  r.cookie.domain = ColumnText(st, c++);
  r.cookie.max_age_seconds = sqlite3_column_int64(st, c++);
  r.cookie.session = sqlite3_column_int(st, c++) != 0;
  r.cookie.first_party = sqlite3_column_int(st, c++) != 0;
  r.has_cookie = !r.cookie.direction.empty();
  if (!r.has_cookie) r.cookie = CookieRecord{};
  r.consents = ConsentsFromJson(ColumnText(st, c++));
  r.run_id = ColumnText(st, c++);
  return r;
}

// WHERE clause of a filter and its parameters, in order. Building the text
// per filter shape (each prepared once) keeps the indexes usable, unlike
// "(?1 = '' OR col = ?1)". Every table uses the events' column names;
// `time_col` is what since/until compare with.
struct Where {
  std::string sql;  // "" or " WHERE ..."
  std::vector<std::variant<std::string_view, int64_t>> args;

  void Add(std::string_view cond) {
    sql += sql.empty() ? " WHERE " : " AND ";
    sql.append(cond);
  }
  void Add(std::string_view cond, std::string_view v) {
    Add(cond);
    args.emplace_back(v);
  }
  void Add(std::string_view cond, int64_t v) {
    Add(cond);
    args.emplace_back(v);
  }
  // Binds from parameter `first`; returns the last index bound.
  int Bind(sqlite3_stmt* st, int first = 1) const {
    int i = first - 1;
    for (const auto& a : args) {
      if (const auto* s = std::get_if<std::string_view>(&a)) {
        BindStatic(st, ++i, *s);
      } else {
        sqlite3_bind_int64(st, ++i, std::get<int64_t>(a));
      }
    }
    return i;
  }
};

Where BuildWhere(const VerdictFilter& f, const char* time_col = "last_seen_ms",
                 int64_t since = -1) {
  Where w;
  if (!f.device_id.empty()) w.Add("device_id = ?", f.device_id);
  if (!f.device_class.empty()) w.Add("device_class = ?", f.device_class);
  if (!f.firmware.empty()) w.Add("firmware = ?", f.firmware);
  if (!f.sdk.empty()) w.Add("sdk = ?", f.sdk);
  if (!f.data_type.empty()) w.Add("data_type = ?", f.data_type);
  if (!f.verdict.empty()) w.Add("verdict = ?", f.verdict);
  if (!f.agent_id.empty()) w.Add("agent_id = ?", f.agent_id);
  if (!f.finding.empty()) w.Add("finding = ?", f.finding);
  if (!f.run_id.empty()) w.Add("run_id = ?", f.run_id);
  if (f.violations_only) w.Add("finding = 'violation'");
  if (f.since_unix_ms > 0) {
    w.Add(absl::StrCat(time_col, " >= ?"), since >= 0 ? since : f.since_unix_ms);
  }
  if (f.until_unix_ms > 0) w.Add(absl::StrCat(time_col, " < ?"), f.until_unix_ms);
  return w;
}

sqlite3_int64 Limit(const VerdictFilter& f) {
  // limit 0 means "no limit" to SQLite's LIMIT -1.
  if (f.limit == 0) return -1;
  return static_cast<sqlite3_int64>(f.limit);
}

sqlite3_int64 Offset(const VerdictFilter& f) { return static_cast<sqlite3_int64>(f.offset); }

// Resets and clears a cached statement on every exit path.
class StmtGuard {
 public:
  explicit StmtGuard(sqlite3_stmt* st) : st_(st) {}
  ~StmtGuard() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  StmtGuard(const StmtGuard&) = delete;
  StmtGuard& operator=(const StmtGuard&) = delete;

 private:
  sqlite3_stmt* st_;
};

// Steps `st` to its end, turning each row into a Row; returns the last rc
// (SQLITE_DONE when every row was read).
template <typename Row, typename Read>
int ReadRows(sqlite3_stmt* st, std::vector<Row>& out, Read read) {
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(read(st));
  return rc;
}

// Up to N strings (views into the rows of one call) and a number: the key of
// an aggregate row summed in memory.
template <size_t N>
struct ViewKey {
  std::array<std::string_view, N> f;
  int64_t n = 0;
  bool operator==(const ViewKey&) const = default;
};

struct ViewKeyHash {
  template <size_t N>
  size_t operator()(const ViewKey<N>& k) const {
    size_t h = std::hash<int64_t>{}(k.n);
    for (std::string_view v : k.f) h = (h * 1000003) ^ std::hash<std::string_view>{}(v);
    return h;
  }
};

struct GroupSum {
  const EventRecord* sample;  // greatest last_seen; ties: the later row
  uint64_t count;
  int64_t first_seen;
};

struct MatrixSum {
  std::string_view finding;
  uint64_t count;
  int64_t first_seen;
  int64_t last_seen;
};

struct HourSum {
  std::string_view finding;
  uint64_t count;
};

// The destination without a copy when it is a field of the record.
std::string_view DestinationView(const EventRecord& e, std::string& buf) {
  if (!e.dest_host.empty()) return e.dest_host;
  if (e.dest_ip.empty()) return e.dest_peer_exe;
  buf = e.Destination();
  return buf;
}

std::string_view CookieName(const EventRecord& e) {
  return e.has_cookie ? std::string_view(e.cookie.name) : std::string_view();
}
std::string_view CookieDirection(const EventRecord& e) {
  return e.has_cookie ? std::string_view(e.cookie.direction) : std::string_view();
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// What one transaction adds to the aggregates, summed in memory so that each
// aggregate row is written once per transaction. Holds pointers into the
// caller's events: lives within one Write/Append call.
class SqliteStore::Batch {
 public:
  RowScratch scratch;
  std::string destination;  // DestinationView's buffer

  void Add(const EventRecord& e) {
    std::string_view dest = DestinationView(e, destination);
    ViewKey<kGroupKeySize> gk{{e.device_id, e.device_class, e.firmware, e.sdk, e.module,
                               e.data_type, e.encoding, dest, CookieName(e), CookieDirection(e),
                               e.verdict, e.statement, e.statement_version, e.entry}};
    auto g = groups_.find(gk);
    if (g == groups_.end()) {
      // The key must outlive the buffer: keep a formatted destination.
      if (dest.data() == destination.data()) gk.f[7] = kept_.emplace_back(destination);
      groups_.emplace(gk, GroupSum{&e, e.count, e.first_seen_unix_ms});
    } else {
      g->second.count += e.count;
      g->second.first_seen = std::min(g->second.first_seen, e.first_seen_unix_ms);
      if (e.last_seen_unix_ms >= g->second.sample->last_seen_unix_ms) g->second.sample = &e;
    }
    auto [m, m_new] =
        matrix_.try_emplace(ViewKey<3>{{e.sdk, e.data_type, e.verdict}},
                            MatrixSum{e.finding, 0, e.first_seen_unix_ms, e.last_seen_unix_ms});
    m->second.finding = e.finding;
    m->second.count += e.count;
    m->second.first_seen = std::min(m->second.first_seen, e.first_seen_unix_ms);
    m->second.last_seen = std::max(m->second.last_seen, e.last_seen_unix_ms);
    auto [h, h_new] = hours_.try_emplace(
        ViewKey<4>{{e.device_id, e.sdk, e.data_type, e.verdict}, HourOf(e.last_seen_unix_ms)},
        HourSum{e.finding, 0});
    h->second.finding = e.finding;
    h->second.count += e.count;
    auto [r, r_new] = hours_sdk_.try_emplace(
        ViewKey<2>{{e.sdk, e.verdict}, HourOf(e.last_seen_unix_ms)}, HourSum{e.finding, 0});
    r->second.finding = e.finding;
    r->second.count += e.count;
  }

 private:
  friend class SqliteStore;
  std::unordered_map<ViewKey<kGroupKeySize>, GroupSum, ViewKeyHash> groups_;
  std::unordered_map<ViewKey<3>, MatrixSum, ViewKeyHash> matrix_;
  std::unordered_map<ViewKey<4>, HourSum, ViewKeyHash> hours_;
  std::unordered_map<ViewKey<2>, HourSum, ViewKeyHash> hours_sdk_;
  std::deque<std::string> kept_;
};

std::string EncodeList(const std::vector<std::string>& items) {
  std::string out;
  EncodeListTo(items, out);
  return out;
}

void EncodeListTo(const std::vector<std::string>& items, std::string& out) {
  out.clear();
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    for (char ch : items[i]) {
      if (ch == '\\' || ch == ',') out.push_back('\\');
      out.push_back(ch);
    }
  }
}

std::vector<std::string> DecodeList(const std::string& encoded) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < encoded.size(); ++i) {
    char ch = encoded[i];
    if (ch == '\\' && i + 1 < encoded.size()) {
      out.back().push_back(encoded[++i]);
    } else if (ch == ',') {
      out.emplace_back();
    } else {
      out.back().push_back(ch);
    }
  }
  return out;
}

SqliteStore::SqliteStore(std::string path, sqlite3* db)
    : path_(std::move(path)),
      db_(db),
      insert_sql_{InsertSql(/*skip_duplicates=*/false), InsertSql(/*skip_duplicates=*/true)},
      group_upsert_sql_(GroupUpsertSql()) {}

SqliteStore::~SqliteStore() {
  std::scoped_lock lock(mu_, read_mu_);
  for (auto* cache : {&stmts_, &read_stmts_}) {
    for (auto& [sql, st] : *cache) sqlite3_finalize(st);
    cache->clear();
  }
  sqlite3_close_v2(read_db_);
  sqlite3_close_v2(db_);
  // After the close: the next writer may start once the file is released.
  if (lock_fd_ >= 0) close(lock_fd_);
}

namespace {

// The one-writer lock: PATH.lock, never followed through a symlink, a
// regular file, flock'ed exclusively without waiting. flock belongs to the
// open file description, so a second open in the same process conflicts too.
// Released by the kernel when the holder exits, so a crash leaves no stale
// lock (the file and its old pid stay, harmlessly).
absl::StatusOr<int> LockWriter(const std::string& path) {
  const std::string lock_path = path + ".lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP) {
      return absl::FailedPreconditionError(absl::StrCat("sqlite store ", path, ": lock file ",
                                                        lock_path,
                                                        " is a symbolic link; refusing to use it"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "sqlite store ", path, ": cannot open lock file ", lock_path, ": ", strerror(err)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "sqlite store ", path, ": lock file ", lock_path, " is not a regular file; refusing it"));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (err != EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrCat("sqlite store ", path, ": cannot lock ", lock_path, ": ", strerror(err)));
    }
    std::string pid(buf, n > 0 ? static_cast<size_t>(n) : 0);
    pid.erase(std::find_if(pid.begin(), pid.end(), [](char c) { return c < '0' || c > '9'; }),
              pid.end());
    return absl::FailedPreconditionError(absl::StrCat(
        "sqlite store ", path, " is in use by another collector (pid ", pid.empty() ? "?" : pid,
        "); SQLite is the one-collector store: use postgresql://… for several collectors"));
  }
  // Who holds it, for the next one's message; the lock itself is the flock.
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    int err = errno;
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("sqlite store ", path, ": cannot write ", lock_path, ": ", strerror(err)));
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                               const SqliteOpenOptions& options) {
  int lock_fd = -1;
  if (options.exclusive_writer) {
    ASSIGN_OR_RETURN(lock_fd, LockWriter(path));
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    if (lock_fd >= 0) close(lock_fd);
    return absl::Status(CodeFor(rc), absl::StrCat("sqlite store ", path, ": cannot open: ", msg));
  }
  sqlite3_extended_result_codes(db, 1);
  // SQLite silently falls back to read-only for a write-protected file; the
  // collector could then never commit, so refuse up front.
  if (sqlite3_db_readonly(db, "main") == 1) {
    sqlite3_close_v2(db);
    if (lock_fd >= 0) close(lock_fd);
    return absl::PermissionDeniedError(
        absl::StrCat("sqlite store ", path, ": file is not writable"));
  }
  std::unique_ptr<SqliteStore> s(new SqliteStore(path, db));
  s->lock_fd_ = lock_fd;
  {
    std::lock_guard lock(s->mu_);
    RETURN_IF_ERROR(s->Init());
  }
  // Queries get their own connection: in WAL mode it reads the last commit
  // while the writer's transaction goes on, so the dashboard never stalls
  // ingest (and ingest never stalls it beyond one statement).
  rc = sqlite3_open_v2(path.c_str(), &s->read_db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                       nullptr);
  if (rc != SQLITE_OK) {
    return absl::Status(CodeFor(rc), absl::StrCat("sqlite store ", path,
                                                  ": cannot open a reader: ", sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(s->read_db_, 1);
  sqlite3_busy_timeout(s->read_db_, 5000);
  return s;
}

absl::Status SqliteStore::Error(int rc, const std::string& what, sqlite3* db) {
  return absl::Status(CodeFor(rc), absl::StrCat("sqlite store ", path_, ": ", what, ": ",
                                                sqlite3_errmsg(db != nullptr ? db : db_), " (",
                                                sqlite3_errstr(rc), ")"));
}

absl::Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    std::string head(sql, std::min<size_t>(strlen(sql), 60));
    return absl::Status(CodeFor(rc),
                        absl::StrCat("sqlite store ", path_, ": ", msg, " (in: ", head, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3_stmt*> SqliteStore::Prepare(const std::string& sql, bool read) {
  sqlite3* db = read ? read_db_ : db_;
  auto& cache = read ? read_stmts_ : stmts_;
  auto it = cache.find(sql);
  if (it != cache.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &st, nullptr);
  if (rc != SQLITE_OK) {
    return Error(rc, absl::StrCat("prepare \"", sql.substr(0, 60), "\""), db);
  }
  cache.emplace(sql, st);
  return st;
}

absl::Status SqliteStore::Init() {
  // busy_timeout first: the pragmas below may need the lock.
  RETURN_IF_ERROR(Exec("PRAGMA busy_timeout = 5000"));
  // journal_mode is the first statement to read the file: a non-database file
  // fails here with "file is not a database".
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode = WAL", -1, &st, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  std::string mode = rc == SQLITE_ROW ? ColumnText(st, 0) : "";
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return Error(rc, "enable WAL");
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("sqlite store ", path_, ": cannot use WAL journal (got \"", mode, "\")"));
  }
  RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL"));
  // Aggregate upserts and index pages stay in memory across transactions
  // (64 MiB of page cache; the default 2 MiB thrashes on fleet-size indexes).
  RETURN_IF_ERROR(Exec("PRAGMA cache_size = -65536"));
  RETURN_IF_ERROR(Exec("PRAGMA temp_store = MEMORY"));
  // Checkpoint every ~40 MiB of WAL instead of 4 MiB: pages the aggregates
  // rewrite in every commit reach the database file once per checkpoint, and
  // each checkpoint costs an fsync of it. The WAL is cut back to 64 MiB after.
  RETURN_IF_ERROR(Exec("PRAGMA wal_autocheckpoint = 10000"));
  RETURN_IF_ERROR(Exec("PRAGMA journal_size_limit = 67108864"));
  RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON"));
  return Migrate();
}

absl::StatusOr<int> SqliteStore::SchemaVersionLocked() {
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare("SELECT MAX(version) FROM schema_version"));
  StmtGuard guard(st);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) return Error(rc, "read schema_version");
  return sqlite3_column_int(st, 0);
}

absl::StatusOr<int> SqliteStore::SchemaVersion() {
  std::lock_guard lock(mu_);
  return SchemaVersionLocked();
}

absl::Status SqliteStore::Migrate() {
  // IMMEDIATE: two collectors opening one fresh file must not both migrate.
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> absl::Status {
    RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS schema_version ("
             " version INTEGER NOT NULL,"
             " applied_unix_ms INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * "
             "86400000 AS INTEGER)))"));
    ASSIGN_OR_RETURN(int version, SchemaVersionLocked());
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite store ", path_, ": schema version ", version,
          " is newer than this build supports (", kSchemaVersion, "); upgrade idflow-collector"));
    }
    for (int v = version; v < kSchemaVersion; ++v) {
      RETURN_IF_ERROR(Exec(kMigrations[v]));
      RETURN_IF_ERROR(
          Exec(absl::StrCat("INSERT INTO schema_version (version) VALUES (", v + 1, ")").c_str()));
    }
    return absl::OkStatus();
  };
  absl::Status st = body();
  if (!st.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return st;
  }
  return Exec("COMMIT");
}

absl::Status SqliteStore::StepLocked(const char* sql, const char* what) {
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql));
  StmtGuard guard(st);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Error(rc, what);
  return absl::OkStatus();
}

absl::Status SqliteStore::InsertEventsLocked(const std::vector<EventRecord>& events,
                                             bool skip_duplicates, Batch& batch,
                                             std::vector<const EventRecord*>* inserted) {
  ASSIGN_OR_RETURN(sqlite3_stmt * ins, Prepare(skip_duplicates ? insert_sql_[1] : insert_sql_[0]));
  for (const EventRecord& e : events) {
    StmtGuard guard(ins);
    BindRecord(ins, e, DestinationView(e, batch.destination), batch.scratch);
    int rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) return Error(rc, absl::StrCat("insert ", e.agent_id, "/", e.seq));
    if (inserted != nullptr && sqlite3_changes(db_) > 0) inserted->push_back(&e);
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::AdvanceStreamLocked(const std::string& agent_id, uint64_t last_seq,
                                              uint64_t events, uint64_t gap_events) {
  ASSIGN_OR_RETURN(sqlite3_stmt * st,
                   Prepare("INSERT INTO streams (agent_id, last_seq, events_stored, gap_events)"
                           " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (agent_id) DO UPDATE SET"
                           " last_seq = MAX(last_seq, ?2), events_stored = events_stored + ?3,"
                           " gap_events = gap_events + ?4"));
  StmtGuard guard(st);
  BindStatic(st, 1, agent_id);
  sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(last_seq));
  sqlite3_bind_int64(st, 3, static_cast<sqlite3_int64>(events));
  sqlite3_bind_int64(st, 4, static_cast<sqlite3_int64>(gap_events));
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return Error(rc, absl::StrCat("account stream of ", agent_id));
  return absl::OkStatus();
}

absl::Status SqliteStore::FlushAggregatesLocked(Batch& batch) {
  ASSIGN_OR_RETURN(sqlite3_stmt * g, Prepare(group_upsert_sql_));
  for (const auto& [key, sum] : batch.groups_) {
    StmtGuard guard(g);
    BindRecord(g, *sum.sample, key.f[7], batch.scratch);
    sqlite3_bind_int(g, kNumColumns + 1, FindingRank(sum.sample->finding));
    sqlite3_bind_int64(g, kNumColumns + 2, static_cast<sqlite3_int64>(sum.count));
    sqlite3_bind_int64(g, kNumColumns + 3, sum.first_seen);
    int rc = sqlite3_step(g);
    if (rc != SQLITE_DONE) return Error(rc, "update verdict group");
  }
  ASSIGN_OR_RETURN(
      sqlite3_stmt * m,
      Prepare("INSERT INTO verdict_matrix (sdk, data_type, verdict, finding, total,"
              " first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"
              " ON CONFLICT (sdk, data_type, verdict) DO UPDATE SET finding = excluded.finding,"
              " total = total + excluded.total,"
              " first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms),"
              " last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms)"));
  for (const auto& [key, sum] : batch.matrix_) {
    StmtGuard guard(m);
    for (int i = 0; i < 3; ++i) BindStatic(m, i + 1, key.f[i]);
    BindStatic(m, 4, sum.finding);
    sqlite3_bind_int64(m, 5, static_cast<sqlite3_int64>(sum.count));
    sqlite3_bind_int64(m, 6, sum.first_seen);
    sqlite3_bind_int64(m, 7, sum.last_seen);
    int rc = sqlite3_step(m);
    if (rc != SQLITE_DONE) return Error(rc, "update verdict matrix");
  }
  ASSIGN_OR_RETURN(
      sqlite3_stmt * h,
      Prepare("INSERT INTO verdict_hourly (hour_ms, device_id, sdk, data_type, verdict, finding,"
              " total) VALUES (?, ?, ?, ?, ?, ?, ?)"
              " ON CONFLICT (hour_ms, device_id, sdk, data_type, verdict) DO UPDATE SET"
              " finding = excluded.finding, total = total + excluded.total"));
  for (const auto& [key, sum] : batch.hours_) {
    StmtGuard guard(h);
    sqlite3_bind_int64(h, 1, key.n);
    for (int i = 0; i < 4; ++i) BindStatic(h, i + 2, key.f[i]);
    BindStatic(h, 6, sum.finding);
    sqlite3_bind_int64(h, 7, static_cast<sqlite3_int64>(sum.count));
    int rc = sqlite3_step(h);
    if (rc != SQLITE_DONE) return Error(rc, "update hourly counts");
  }
  ASSIGN_OR_RETURN(sqlite3_stmt * r,
                   Prepare("INSERT INTO verdict_hourly_sdk (hour_ms, sdk, verdict, finding, total)"
                           " VALUES (?, ?, ?, ?, ?) ON CONFLICT (hour_ms, sdk, verdict) DO UPDATE"
                           " SET finding = excluded.finding, total = total + excluded.total"));
  for (const auto& [key, sum] : batch.hours_sdk_) {
    StmtGuard guard(r);
    sqlite3_bind_int64(r, 1, key.n);
    for (int i = 0; i < 2; ++i) BindStatic(r, i + 2, key.f[i]);
    BindStatic(r, 4, sum.finding);
    sqlite3_bind_int64(r, 5, static_cast<sqlite3_int64>(sum.count));
    int rc = sqlite3_step(r);
    if (rc != SQLITE_DONE) return Error(rc, "update hourly SDK counts");
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> SqliteStore::Append(const std::vector<EventRecord>& events) {
  for (const auto& e : events) {
    if (e.agent_id.empty()) return absl::InvalidArgumentError("event without agent_id");
  }
  if (events.empty()) return 0;
  std::lock_guard lock(mu_);
  Batch batch;
  std::vector<const EventRecord*> inserted;
  inserted.reserve(events.size());
  absl::Status status = InTransactionLocked([&]() -> absl::Status {
    RETURN_IF_ERROR(InsertEventsLocked(events, /*skip_duplicates=*/true, batch, &inserted));
    // Per agent: highest seq and events stored, for LastSeq and ListAgents.
    std::map<std::string_view, std::pair<uint64_t, uint64_t>> per_agent;
    for (const EventRecord* e : inserted) {
      auto& [last, count] = per_agent[e->agent_id];
      last = std::max(last, e->seq);
      count += e->count;
      batch.Add(*e);
    }
    for (const auto& [agent, progress] : per_agent) {
      RETURN_IF_ERROR(AdvanceStreamLocked(std::string(agent), progress.first, progress.second, 0));
    }
    return FlushAggregatesLocked(batch);
  });
  if (!status.ok()) return status;
  return static_cast<uint64_t>(inserted.size());
}

absl::StatusOr<uint64_t> SqliteStore::LastSeq(const std::string& agent_id) {
  std::lock_guard lock(mu_);
  return LastSeqLocked(agent_id);
}

absl::StatusOr<uint64_t> SqliteStore::StreamFieldLocked(const char* sql,
                                                        const std::string& agent_id,
                                                        const char* what) {
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql));
  StmtGuard guard(st);
  BindStatic(st, 1, agent_id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return 0;  // an agent never seen
  if (rc != SQLITE_ROW) return Error(rc, absl::StrCat(what, " of ", agent_id));
  return static_cast<uint64_t>(sqlite3_column_int64(st, 0));
}

absl::StatusOr<uint64_t> SqliteStore::LastSeqLocked(const std::string& agent_id) {
  // Stored events and declared gaps alike; kept through retention.
  return StreamFieldLocked("SELECT last_seq FROM streams WHERE agent_id = ?", agent_id, "last seq");
}

absl::StatusOr<uint64_t> SqliteStore::GenerationLocked(const std::string& agent_id) {
  return StreamFieldLocked("SELECT generation FROM streams WHERE agent_id = ?", agent_id,
                           "stream generation");
}

absl::Status SqliteStore::InTransactionLocked(const std::function<absl::Status()>& body) {
  RETURN_IF_ERROR(StepLocked("BEGIN IMMEDIATE", "begin"));
  absl::Status st = body();
  if (!st.ok()) {
    if (!sqlite3_get_autocommit(db_)) StepLocked("ROLLBACK", "rollback").IgnoreError();
    return st;
  }
  ASSIGN_OR_RETURN(sqlite3_stmt * commit, Prepare("COMMIT"));
  int rc;
  {
    StmtGuard guard(commit);
    rc = sqlite3_step(commit);
  }
  if (rc != SQLITE_DONE) {
    absl::Status err = Error(rc, "commit");
    // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY).
    if (!sqlite3_get_autocommit(db_)) StepLocked("ROLLBACK", "rollback").IgnoreError();
    return err;
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::CheckFollowsLocked(const std::string& agent_id, uint64_t first) {
  ASSIGN_OR_RETURN(uint64_t last, LastSeqLocked(agent_id));
  if (first != last + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("agent ", agent_id, ": seq ", first, " does not follow stored_up_to ", last,
                     first <= last ? " (already accounted for)" : " (a gap)"));
  }
  return absl::OkStatus();
}

namespace {

// What can be refused without reading the database.
absl::Status CheckOp(const WriteOp& op) {
  if (op.agent_id.empty()) return absl::InvalidArgumentError("write op without agent_id");
  if (op.events.empty()) {
    if (op.gap_from == 0 || op.gap_to < op.gap_from) {
      return absl::InvalidArgumentError(absl::StrCat("write op of agent ", op.agent_id,
                                                     " with no events and a bad gap ", op.gap_from,
                                                     "..", op.gap_to));
    }
    return absl::OkStatus();
  }
  for (size_t i = 0; i < op.events.size(); ++i) {
    const EventRecord& e = op.events[i];
    if (e.agent_id != op.agent_id) {
      return absl::InvalidArgumentError(
          absl::StrCat("event of agent ", e.agent_id, " in a batch of ", op.agent_id));
    }
    if (e.seq != op.events[0].seq + i) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch not contiguous: seq ", e.seq, " after ", op.events[0].seq + i - 1));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SqliteStore::WriteOpLocked(const WriteOp& op, Batch& batch) {
  if (op.generation != 0) {
    ASSIGN_OR_RETURN(uint64_t current, GenerationLocked(op.agent_id));
    if (current != op.generation) {
      return absl::AbortedError(absl::StrCat("agent ", op.agent_id, ": stream generation ",
                                             op.generation, " is superseded (current ", current,
                                             "): a newer stream owns the agent"));
    }
  }
  if (op.events.empty()) {
    RETURN_IF_ERROR(CheckFollowsLocked(op.agent_id, op.gap_from));
    ASSIGN_OR_RETURN(
        sqlite3_stmt * ins,
        Prepare("INSERT INTO gaps (agent_id, from_seq, to_seq, cause) VALUES (?, ?, ?, ?)"));
    StmtGuard guard(ins);
    BindStatic(ins, 1, op.agent_id);
    sqlite3_bind_int64(ins, 2, static_cast<sqlite3_int64>(op.gap_from));
    sqlite3_bind_int64(ins, 3, static_cast<sqlite3_int64>(op.gap_to));
    BindStatic(ins, 4, op.gap_cause);
    int rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) return Error(rc, "insert gap");
    return AdvanceStreamLocked(op.agent_id, op.gap_to, 0, op.gap_to - op.gap_from + 1);
  }
  RETURN_IF_ERROR(CheckFollowsLocked(op.agent_id, op.events.front().seq));
  RETURN_IF_ERROR(InsertEventsLocked(op.events, /*skip_duplicates=*/false, batch, nullptr));
  uint64_t stored = 0;
  for (const EventRecord& e : op.events) stored += e.count;
  return AdvanceStreamLocked(op.agent_id, op.events.back().seq, stored, 0);
}

absl::StatusOr<std::vector<absl::Status>> SqliteStore::WriteLocked(
    const std::vector<WriteOp>& ops) {
  std::vector<absl::Status> out;
  out.reserve(ops.size());
  for (const WriteOp& op : ops) out.push_back(CheckOp(op));
  Batch batch;
  absl::Status status = InTransactionLocked([&]() -> absl::Status {
    for (size_t i = 0; i < ops.size(); ++i) {
      if (!out[i].ok()) continue;
      // A savepoint per op: a refused op leaves the others of the call intact.
      RETURN_IF_ERROR(StepLocked("SAVEPOINT op", "savepoint"));
      out[i] = WriteOpLocked(ops[i], batch);
      if (!out[i].ok()) RETURN_IF_ERROR(StepLocked("ROLLBACK TO op", "rollback to savepoint"));
      RETURN_IF_ERROR(StepLocked("RELEASE op", "release savepoint"));
      if (out[i].ok()) {
        for (const EventRecord& e : ops[i].events) batch.Add(e);
      }
    }
    return FlushAggregatesLocked(batch);
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::vector<absl::Status>> SqliteStore::Write(const std::vector<WriteOp>& ops) {
  std::lock_guard lock(mu_);
  return WriteLocked(ops);
}

absl::Status SqliteStore::AppendContiguous(const std::string& agent_id,
                                           const std::vector<EventRecord>& events) {
  if (events.empty()) return absl::OkStatus();
  WriteOp op;
  op.agent_id = agent_id;
  // The op only borrows the batch for the call; a copy is what Write's
  // signature costs this older entry point.
  op.events = events;
  ASSIGN_OR_RETURN(std::vector<absl::Status> st, Write({std::move(op)}));
  return st[0];
}

absl::Status SqliteStore::RecordGap(const std::string& agent_id, uint64_t from, uint64_t to,
                                    const std::string& cause) {
  if (from == 0 || to < from) {
    return absl::InvalidArgumentError(absl::StrCat("bad gap ", from, "..", to));
  }
  WriteOp op;
  op.agent_id = agent_id;
  op.gap_from = from;
  op.gap_to = to;
  op.gap_cause = cause;
  ASSIGN_OR_RETURN(std::vector<absl::Status> st, Write({std::move(op)}));
  return st[0];
}

absl::StatusOr<uint64_t> SqliteStore::ClaimStream(const std::string& agent_id,
                                                  const std::string& collector_id) {
  if (agent_id.empty()) return absl::InvalidArgumentError("stream claim without agent_id");
  std::lock_guard lock(mu_);
  // One statement: atomic against every other connection to the file.
  ASSIGN_OR_RETURN(sqlite3_stmt * st,
                   Prepare("INSERT INTO streams (agent_id, generation, collector_id, claimed_ms)"
                           " VALUES (?1, 1, ?2, ?3) ON CONFLICT (agent_id) DO UPDATE SET"
                           " generation = generation + 1, collector_id = ?2, claimed_ms = ?3"
                           " RETURNING generation"));
  StmtGuard guard(st);
  BindStatic(st, 1, agent_id);
  BindStatic(st, 2, collector_id);
  sqlite3_bind_int64(st, 3, NowUnixMs());
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) return Error(rc, absl::StrCat("claim stream of ", agent_id));
  uint64_t generation = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
  rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return Error(rc, absl::StrCat("claim stream of ", agent_id));
  return generation;
}

absl::StatusOr<uint64_t> SqliteStore::StreamGeneration(const std::string& agent_id) {
  std::lock_guard lock(mu_);
  return GenerationLocked(agent_id);
}

absl::StatusOr<uint64_t> SqliteStore::PruneBefore(int64_t before_unix_ms) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare("DELETE FROM events WHERE last_seen_ms < ?"));
  uint64_t deleted = 0;
  absl::Status status = InTransactionLocked([&]() -> absl::Status {
    StmtGuard guard(st);
    sqlite3_bind_int64(st, 1, before_unix_ms);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return Error(rc, "prune events");
    deleted = static_cast<uint64_t>(sqlite3_changes(db_));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return deleted;
}

absl::Status SqliteStore::UpsertAgent(const AgentRecord& a) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      sqlite3_stmt * st,
      Prepare("INSERT INTO agents (agent_id, device_id, device_class, firmware, agent_version,"
              " last_seen_ms, drops_tap, drops_ingress, drops_spool, drops_disk, drops_dead_letter)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
              " ON CONFLICT (agent_id) DO UPDATE SET device_id = ?2, device_class = ?3,"
              " firmware = ?4, agent_version = ?5, last_seen_ms = MAX(last_seen_ms, ?6),"
              " drops_tap = MAX(drops_tap, ?7), drops_ingress = MAX(drops_ingress, ?8),"
              " drops_spool = MAX(drops_spool, ?9), drops_disk = MAX(drops_disk, ?10),"
              " drops_dead_letter = MAX(drops_dead_letter, ?11)"));
  StmtGuard guard(st);
  BindText(st, 1, a.agent_id);
  BindText(st, 2, a.device_id);
  BindText(st, 3, a.device_class);
  BindText(st, 4, a.firmware);
  BindText(st, 5, a.agent_version);
  sqlite3_bind_int64(st, 6, a.last_seen_unix_ms);
  BindDrops(st, 7, a.drops);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return Error(rc, "upsert agent");
  return absl::OkStatus();
}

absl::Status SqliteStore::UpdateDrops(const std::string& agent_id, const DropCounts& d,
                                      int64_t seen_unix_ms) {
  std::lock_guard lock(mu_);
  // Counters are cumulative on the agent: never let a late or replayed
  // report move them backwards.
  ASSIGN_OR_RETURN(
      sqlite3_stmt * st,
      Prepare("UPDATE agents SET last_seen_ms = MAX(last_seen_ms, ?6),"
              " drops_tap = MAX(drops_tap, ?1), drops_ingress = MAX(drops_ingress, ?2),"
              " drops_spool = MAX(drops_spool, ?3), drops_disk = MAX(drops_disk, ?4),"
              " drops_dead_letter = MAX(drops_dead_letter, ?5) WHERE agent_id = ?7"));
  StmtGuard guard(st);
  BindDrops(st, 1, d);
  sqlite3_bind_int64(st, 6, seen_unix_ms);
  BindText(st, 7, agent_id);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return Error(rc, "update drops");
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError("drops for an agent never seen");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AgentRecord>> SqliteStore::ListAgents(const std::string& device_id,
                                                                 size_t limit, size_t offset) {
  std::lock_guard lock(read_mu_);
  ASSIGN_OR_RETURN(
      sqlite3_stmt * st,
      Prepare("SELECT a.agent_id, a.device_id, a.device_class, a.firmware, a.agent_version,"
              " a.last_seen_ms, a.drops_tap, a.drops_ingress, a.drops_spool, a.drops_disk,"
              " a.drops_dead_letter, COALESCE(s.events_stored, 0), COALESCE(s.gap_events, 0),"
              " COALESCE(s.last_seq, 0)"
              " FROM agents a LEFT JOIN streams s ON s.agent_id = a.agent_id"
              " WHERE (?1 = '' OR a.device_id = ?1)"
              " ORDER BY a.agent_id LIMIT ?2 OFFSET ?3",
              /*read=*/true));
  StmtGuard guard(st);
  BindStatic(st, 1, device_id);
  sqlite3_bind_int64(st, 2, limit == 0 ? -1 : static_cast<sqlite3_int64>(limit));
  sqlite3_bind_int64(st, 3, static_cast<sqlite3_int64>(offset));
  std::vector<AgentRecord> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    AgentRecord a;
    int c = 0;
    a.agent_id = ColumnText(st, c++);
    a.device_id = ColumnText(st, c++);
    a.device_class = ColumnText(st, c++);
    a.firmware = ColumnText(st, c++);
    a.agent_version = ColumnText(st, c++);
    a.last_seen_unix_ms = sqlite3_column_int64(st, c++);
    for (uint64_t* d :
         {&a.drops.tap, &a.drops.ingress, &a.drops.spool, &a.drops.disk, &a.drops.dead_letter}) {
      *d = static_cast<uint64_t>(sqlite3_column_int64(st, c++));
    }
    a.events_stored = static_cast<uint64_t>(sqlite3_column_int64(st, c++));
    a.gap_events = static_cast<uint64_t>(sqlite3_column_int64(st, c++));
    a.stored_up_to = static_cast<uint64_t>(sqlite3_column_int64(st, c++));
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return Error(rc, "list agents", read_db_);
  return out;
}

absl::StatusOr<std::vector<VerdictGroup>> SqliteStore::QueryVerdicts(const VerdictFilter& f) {
  std::lock_guard lock(read_mu_);
  const Where where = BuildWhere(f);
  std::string sql;
  if (f.agent_id.empty() && f.run_id.empty()) {
    // The groups maintained at ingest; the sample's columns are the row's.
    sql = absl::StrCat("SELECT total, group_first_ms, last_seen_ms, ", kColumns,
                       " FROM verdict_groups", where.sql,
                       " ORDER BY finding_rank, last_seen_ms DESC, id LIMIT ? OFFSET ?");
  } else {
    // Groups do not keep agents or runs: computed from that agent's or run's
    // events (indexed). Window aggregates give per-group totals on every
    // row; rn = 1 picks the most recent row (by last_seen, then insertion).
    sql = absl::StrCat("SELECT total, fs, ls, ", kColumns,
                       " FROM (SELECT *, ROW_NUMBER() OVER (g ORDER BY last_seen_ms DESC, id DESC)"
                       " AS rn, SUM(count) OVER g AS total, MIN(first_seen_ms) OVER g AS fs,"
                       " MAX(last_seen_ms) OVER g AS ls FROM events",
                       where.sql, " WINDOW g AS (PARTITION BY ", kGroupKey,
                       ")) WHERE rn = 1 ORDER BY ", kFindingOrder, ", ls DESC, ", kGroupKey,
                       " LIMIT ? OFFSET ?");
  }
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql, /*read=*/true));
  StmtGuard guard(st);
  int n = where.Bind(st);
  sqlite3_bind_int64(st, n + 1, Limit(f));
  sqlite3_bind_int64(st, n + 2, Offset(f));
  std::vector<VerdictGroup> out;
  int rc = ReadRows(st, out, [](sqlite3_stmt* row) {
    VerdictGroup g;
    g.count = static_cast<uint64_t>(sqlite3_column_int64(row, 0));
    g.first_seen_unix_ms = sqlite3_column_int64(row, 1);
    g.last_seen_unix_ms = sqlite3_column_int64(row, 2);
    g.sample = ReadRecord(row, 3);
    return g;
  });
  if (rc != SQLITE_DONE) return Error(rc, "query verdicts", read_db_);
  return out;
}

absl::StatusOr<std::vector<MatrixRow>> SqliteStore::QueryMatrix(const VerdictFilter& f) {
  if (!f.agent_id.empty() || !f.run_id.empty()) {
    return absl::InvalidArgumentError(
        "the verdict matrix keeps no agent or run: filter by device, SDK, data type, verdict, "
        "finding or time");
  }
  std::lock_guard lock(read_mu_);
  const Where where = BuildWhere(f);
  std::string sql;
  if (f.device_id.empty() && f.device_class.empty() && f.firmware.empty() && f.since_unix_ms <= 0 &&
      f.until_unix_ms <= 0) {
    // Only columns the small (sdk, data_type, verdict) table has.
    sql = absl::StrCat(
        "SELECT sdk, data_type, verdict, total, first_seen_ms, last_seen_ms FROM verdict_matrix",
        where.sql, " ORDER BY sdk, data_type, verdict");
  } else {
    sql = absl::StrCat(
        "SELECT sdk, data_type, verdict, SUM(total), MIN(group_first_ms), MAX(last_seen_ms)"
        " FROM verdict_groups",
        where.sql, " GROUP BY sdk, data_type, verdict ORDER BY sdk, data_type, verdict");
  }
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql, /*read=*/true));
  StmtGuard guard(st);
  where.Bind(st);
  std::vector<MatrixRow> out;
  int rc = ReadRows(st, out, [](sqlite3_stmt* row) {
    MatrixRow r;
    r.sdk = ColumnText(row, 0);
    r.data_type = ColumnText(row, 1);
    r.verdict = ColumnText(row, 2);
    r.finding = FindingName(FindingOfName(r.verdict));
    r.count = static_cast<uint64_t>(sqlite3_column_int64(row, 3));
    r.first_seen_unix_ms = sqlite3_column_int64(row, 4);
    r.last_seen_unix_ms = sqlite3_column_int64(row, 5);
    return r;
  });
  if (rc != SQLITE_DONE) return Error(rc, "query matrix", read_db_);
  return out;
}

absl::StatusOr<std::vector<HistogramRow>> SqliteStore::QueryHistogram(const VerdictFilter& f,
                                                                      int64_t bucket_ms) {
  if (bucket_ms <= 0 || bucket_ms % kHourMs != 0) {
    return absl::InvalidArgumentError(absl::StrCat("histogram bucket of ", bucket_ms,
                                                   " ms: must be a positive multiple of one "
                                                   "hour (3600000 ms)"));
  }
  if (!f.device_class.empty() || !f.firmware.empty() || !f.agent_id.empty() || !f.run_id.empty()) {
    return absl::InvalidArgumentError(
        "the histogram keeps device, SDK, data type, verdict and hour only: device class, "
        "firmware, agent and run filters are not supported");
  }
  std::lock_guard lock(read_mu_);
  // Since is compared with hour starts: the hour holding it is included.
  const Where where = BuildWhere(f, "hour_ms", HourOf(f.since_unix_ms));
  // Without a device or data-type filter the rollup answers (same columns
  // otherwise: hour, SDK, verdict, finding).
  const bool rollup = f.device_id.empty() && f.data_type.empty();
  const std::string sql = absl::StrCat(
      "SELECT hour_ms - (((hour_ms % ?1) + ?1) % ?1) AS bucket, sdk, verdict, SUM(total)"
      " FROM ",
      rollup ? "verdict_hourly_sdk" : "verdict_hourly", where.sql,
      " GROUP BY bucket, sdk, verdict ORDER BY bucket, sdk, verdict");
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql, /*read=*/true));
  StmtGuard guard(st);
  sqlite3_bind_int64(st, 1, bucket_ms);
  where.Bind(st, 2);
  std::vector<HistogramRow> out;
  int rc = ReadRows(st, out, [](sqlite3_stmt* row) {
    HistogramRow r;
    r.bucket_start_unix_ms = sqlite3_column_int64(row, 0);
    r.sdk = ColumnText(row, 1);
    r.verdict = ColumnText(row, 2);
    r.finding = FindingName(FindingOfName(r.verdict));
    r.count = static_cast<uint64_t>(sqlite3_column_int64(row, 3));
    return r;
  });
  if (rc != SQLITE_DONE) return Error(rc, "query histogram", read_db_);
  return out;
}

absl::StatusOr<std::vector<EventRecord>> SqliteStore::QueryEvents(const VerdictFilter& f) {
  std::lock_guard lock(read_mu_);
  const Where where = BuildWhere(f);
  const std::string sql = absl::StrCat("SELECT ", kColumns, " FROM events", where.sql,
                                       " ORDER BY last_seen_ms DESC, id DESC LIMIT ? OFFSET ?");
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql, /*read=*/true));
  StmtGuard guard(st);
  int n = where.Bind(st);
  sqlite3_bind_int64(st, n + 1, Limit(f));
  sqlite3_bind_int64(st, n + 2, Offset(f));
  std::vector<EventRecord> out;
  int rc = ReadRows(st, out, [](sqlite3_stmt* row) { return ReadRecord(row, 0); });
  if (rc != SQLITE_DONE) return Error(rc, "query events", read_db_);
  return out;
}

absl::StatusOr<uint64_t> SqliteStore::CountEvents(const VerdictFilter& f) {
  std::lock_guard lock(read_mu_);
  // Stored rows, one per (agent_id, seq); `limit` does not apply to a count.
  const Where where = BuildWhere(f);
  ASSIGN_OR_RETURN(sqlite3_stmt * st,
                   Prepare(absl::StrCat("SELECT COUNT(*) FROM events", where.sql), /*read=*/true));
  StmtGuard guard(st);
  where.Bind(st);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) return Error(rc, "count events", read_db_);
  return static_cast<uint64_t>(sqlite3_column_int64(st, 0));
}

}  // namespace idflow::store

#include "collector/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
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

constexpr const char* kGroupKey =
    "device_id, sdk, module, data_type, encoding, destination, cookie_name, cookie_direction, "
    "verdict, statement, statement_version, entry";

// Violations first, then observations, then clear.
constexpr const char* kFindingOrder =
    "CASE finding WHEN 'violation' THEN 0 WHEN 'observation' THEN 1 ELSE 2 END";

std::string ChainToJson(const std::vector<ModuleRef>& chain) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& m : chain) {
    j.push_back(m.build_id.empty() ? nlohmann::json{{"path", m.path}}
                                   : nlohmann::json{{"path", m.path}, {"build_id", m.build_id}});
  }
  // Module paths are bytes from the device: never throw on invalid UTF-8.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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

std::string ConsentsToJson(const std::map<std::string, bool>& consents) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : consents) j[k] = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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

std::string ColumnText(sqlite3_stmt* st, int i) {
  const unsigned char* p = sqlite3_column_text(st, i);
  if (p == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(st, i)));
}

// Binds one record at parameters 1..kNumColumns in kColumns order.
void BindRecord(sqlite3_stmt* st, const EventRecord& r) {
  int i = 0;
  BindText(st, ++i, r.agent_id);
  // uint64 values are stored bit-for-bit in SQLite's int64.
  sqlite3_bind_int64(st, ++i, static_cast<sqlite3_int64>(r.seq));
  BindText(st, ++i, r.device_id);
  BindText(st, ++i, r.device_class);
  BindText(st, ++i, r.firmware);
  sqlite3_bind_int64(st, ++i, r.pid);
  BindText(st, ++i, r.exe);
  BindText(st, ++i, r.module);
  BindText(st, ++i, r.module_build_id);
  BindText(st, ++i, r.sdk);
  BindText(st, ++i, r.action);
  BindText(st, ++i, r.channel);
  BindText(st, ++i, r.dest_ip);
  sqlite3_bind_int64(st, ++i, r.dest_port);
  BindText(st, ++i, r.dest_host);
  BindText(st, ++i, r.dest_peer_exe);
  BindText(st, ++i, r.Destination());
  BindText(st, ++i, r.data_type);
  BindText(st, ++i, r.instance);
  BindText(st, ++i, r.encoding);
  BindText(st, ++i, r.digest);
  sqlite3_bind_int64(st, ++i, r.offset);
  BindText(st, ++i, r.snippet);
  if (r.scenarios.empty()) {
    sqlite3_bind_null(st, ++i);
  } else {
    BindText(st, ++i, EncodeList(r.scenarios));
  }
  sqlite3_bind_null(st, ++i);  // v1 consents list: superseded by consents_json
  sqlite3_bind_int64(st, ++i, static_cast<sqlite3_int64>(r.count));
  sqlite3_bind_int64(st, ++i, r.first_seen_unix_ms);
  sqlite3_bind_int64(st, ++i, r.last_seen_unix_ms);
  BindText(st, ++i, r.verdict);
  BindText(st, ++i, r.statement);
  BindText(st, ++i, r.statement_version);
  BindText(st, ++i, r.entry);
  BindText(st, ++i, r.explanation);
  BindText(st, ++i, ChainToJson(r.call_chain));
  BindText(st, ++i, r.sdk_hint);
  BindText(st, ++i, r.finding);
  BindText(st, ++i, r.has_cookie ? r.cookie.name : "");
  BindText(st, ++i, r.has_cookie ? r.cookie.direction : "");
  BindText(st, ++i, r.has_cookie ? r.cookie.domain : "");
  sqlite3_bind_int64(st, ++i, r.has_cookie ? r.cookie.max_age_seconds : -1);
  sqlite3_bind_int(st, ++i, r.has_cookie && r.cookie.session ? 1 : 0);
  sqlite3_bind_int(st, ++i, !r.has_cookie || r.cookie.first_party ? 1 : 0);
  BindText(st, ++i, ConsentsToJson(r.consents));
  BindText(st, ++i, r.run_id);
}

void BindDrops(sqlite3_stmt* st, int first, const DropCounts& d) {
  int i = first;
  for (uint64_t v : {d.tap, d.ingress, d.spool, d.disk, d.dead_letter}) {
    sqlite3_bind_int64(st, i++, static_cast<sqlite3_int64>(v));
  }
}

std::string InsertSql(bool skip_duplicates) {
  std::string params = "?";
  for (int i = 1; i < kNumColumns; ++i) params += ", ?";
  return absl::StrCat("INSERT INTO events (", kColumns, ") VALUES (", params, ")",
                      skip_duplicates ? " ON CONFLICT (agent_id, seq) DO NOTHING" : "");
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

// WHERE clause for a filter; parameters are bound in the same order by
// BindFilter. Building the text per filter shape (at most 2^8 shapes, each
// prepared once) keeps the indexes usable, unlike "(?1 = '' OR col = ?1)".
std::string FilterSql(const VerdictFilter& f) {
  std::vector<std::string> conds;
  if (!f.device_id.empty()) conds.push_back("device_id = ?");
  if (!f.sdk.empty()) conds.push_back("sdk = ?");
  if (!f.verdict.empty()) conds.push_back("verdict = ?");
  if (!f.agent_id.empty()) conds.push_back("agent_id = ?");
  if (!f.finding.empty()) conds.push_back("finding = ?");
  if (!f.run_id.empty()) conds.push_back("run_id = ?");
  if (f.since_unix_ms > 0) conds.push_back("last_seen_ms >= ?");
  if (f.violations_only) conds.push_back("finding = 'violation'");
  if (conds.empty()) return "";
  return absl::StrCat(" WHERE ", absl::StrJoin(conds, " AND "));
}

int BindFilter(sqlite3_stmt* st, const VerdictFilter& f) {
  int i = 0;
  if (!f.device_id.empty()) BindText(st, ++i, f.device_id);
  if (!f.sdk.empty()) BindText(st, ++i, f.sdk);
  if (!f.verdict.empty()) BindText(st, ++i, f.verdict);
  if (!f.agent_id.empty()) BindText(st, ++i, f.agent_id);
  if (!f.finding.empty()) BindText(st, ++i, f.finding);
  if (!f.run_id.empty()) BindText(st, ++i, f.run_id);
  if (f.since_unix_ms > 0) sqlite3_bind_int64(st, ++i, f.since_unix_ms);
  return i;
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

}  // namespace

std::string EncodeList(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    for (char ch : items[i]) {
      if (ch == '\\' || ch == ',') out.push_back('\\');
      out.push_back(ch);
    }
  }
  return out;
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

SqliteStore::SqliteStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

SqliteStore::~SqliteStore() {
  std::lock_guard lock(mu_);
  for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
  stmts_.clear();
  sqlite3_close_v2(db_);
}

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::Status(CodeFor(rc), absl::StrCat("sqlite store ", path, ": cannot open: ", msg));
  }
  sqlite3_extended_result_codes(db, 1);
  // SQLite silently falls back to read-only for a write-protected file; the
  // collector could then never commit, so refuse up front.
  if (sqlite3_db_readonly(db, "main") == 1) {
    sqlite3_close_v2(db);
    return absl::PermissionDeniedError(
        absl::StrCat("sqlite store ", path, ": file is not writable"));
  }
  std::unique_ptr<SqliteStore> s(new SqliteStore(path, db));
  {
    std::lock_guard lock(s->mu_);
    RETURN_IF_ERROR(s->Init());
  }
  return s;
}

absl::Status SqliteStore::Error(int rc, const std::string& what) {
  return absl::Status(
      CodeFor(rc), absl::StrCat("sqlite store ", path_, ": ", what, ": ", sqlite3_errmsg(db_), " (",
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

absl::StatusOr<sqlite3_stmt*> SqliteStore::Prepare(const std::string& sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &st, nullptr);
  if (rc != SQLITE_OK) return Error(rc, absl::StrCat("prepare \"", sql.substr(0, 60), "\""));
  stmts_.emplace(sql, st);
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

absl::StatusOr<uint64_t> SqliteStore::Append(const std::vector<EventRecord>& events) {
  for (const auto& e : events) {
    if (e.agent_id.empty()) return absl::InvalidArgumentError("event without agent_id");
  }
  if (events.empty()) return 0;
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(sqlite3_stmt * ins, Prepare(InsertSql(/*skip_duplicates=*/true)));
  uint64_t inserted = 0;
  RETURN_IF_ERROR(InTransactionLocked([&]() -> absl::Status {
    for (const auto& e : events) {
      StmtGuard guard(ins);
      BindRecord(ins, e);
      int rc = sqlite3_step(ins);
      if (rc != SQLITE_DONE) return Error(rc, absl::StrCat("insert ", e.agent_id, "/", e.seq));
      inserted += static_cast<uint64_t>(sqlite3_changes(db_));
    }
    return absl::OkStatus();
  }));
  return inserted;
}

absl::StatusOr<uint64_t> SqliteStore::LastSeq(const std::string& agent_id) {
  std::lock_guard lock(mu_);
  return LastSeqLocked(agent_id);
}

absl::StatusOr<uint64_t> SqliteStore::LastSeqLocked(const std::string& agent_id) {
  // Events and gaps together: a declared gap accounts for its seqs.
  ASSIGN_OR_RETURN(
      sqlite3_stmt * st,
      Prepare("SELECT MAX((SELECT COALESCE(MAX(seq), 0) FROM events WHERE agent_id = ?1),"
              " (SELECT COALESCE(MAX(to_seq), 0) FROM gaps WHERE agent_id = ?1))"));
  StmtGuard guard(st);
  BindText(st, 1, agent_id);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) return Error(rc, "last seq");
  return static_cast<uint64_t>(sqlite3_column_int64(st, 0));
}

absl::Status SqliteStore::InTransactionLocked(const std::function<absl::Status()>& body) {
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status st = body();
  if (!st.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return st;
  }
  int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status err = Error(rc, "commit");
    // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY).
    if (!sqlite3_get_autocommit(db_)) Exec("ROLLBACK").IgnoreError();
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

absl::Status SqliteStore::AppendContiguous(const std::string& agent_id,
                                           const std::vector<EventRecord>& events) {
  if (events.empty()) return absl::OkStatus();
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].agent_id != agent_id) {
      return absl::InvalidArgumentError(
          absl::StrCat("event of agent ", events[i].agent_id, " in a batch of ", agent_id));
    }
    if (events[i].seq != events[0].seq + i) {
      return absl::InvalidArgumentError(absl::StrCat("batch not contiguous: seq ", events[i].seq,
                                                     " after ", events[0].seq + i - 1));
    }
  }
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(sqlite3_stmt * ins, Prepare(InsertSql(/*skip_duplicates=*/false)));
  return InTransactionLocked([&]() -> absl::Status {
    RETURN_IF_ERROR(CheckFollowsLocked(agent_id, events[0].seq));
    for (const auto& e : events) {
      StmtGuard guard(ins);
      BindRecord(ins, e);
      int rc = sqlite3_step(ins);
      if (rc != SQLITE_DONE) return Error(rc, absl::StrCat("insert ", e.agent_id, "/", e.seq));
    }
    return absl::OkStatus();
  });
}

absl::Status SqliteStore::RecordGap(const std::string& agent_id, uint64_t from, uint64_t to,
                                    const std::string& cause) {
  if (from == 0 || to < from) {
    return absl::InvalidArgumentError(absl::StrCat("bad gap ", from, "..", to));
  }
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      sqlite3_stmt * ins,
      Prepare("INSERT INTO gaps (agent_id, from_seq, to_seq, cause) VALUES (?, ?, ?, ?)"));
  return InTransactionLocked([&]() -> absl::Status {
    RETURN_IF_ERROR(CheckFollowsLocked(agent_id, from));
    StmtGuard guard(ins);
    BindText(ins, 1, agent_id);
    sqlite3_bind_int64(ins, 2, static_cast<sqlite3_int64>(from));
    sqlite3_bind_int64(ins, 3, static_cast<sqlite3_int64>(to));
    BindText(ins, 4, cause);
    int rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) return Error(rc, "insert gap");
    return absl::OkStatus();
  });
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
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      sqlite3_stmt * st,
      Prepare("SELECT a.agent_id, a.device_id, a.device_class, a.firmware, a.agent_version,"
              " a.last_seen_ms, a.drops_tap, a.drops_ingress, a.drops_spool, a.drops_disk,"
              " a.drops_dead_letter,"
              " (SELECT COALESCE(SUM(count), 0) FROM events e WHERE e.agent_id = a.agent_id),"
              " (SELECT COALESCE(SUM(to_seq - from_seq + 1), 0) FROM gaps g"
              "   WHERE g.agent_id = a.agent_id),"
              " MAX((SELECT COALESCE(MAX(seq), 0) FROM events e WHERE e.agent_id = a.agent_id),"
              "     (SELECT COALESCE(MAX(to_seq), 0) FROM gaps g WHERE g.agent_id = a.agent_id))"
              " FROM agents a WHERE (?1 = '' OR a.device_id = ?1)"
              " ORDER BY a.agent_id LIMIT ?2 OFFSET ?3"));
  StmtGuard guard(st);
  BindText(st, 1, device_id);
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
  if (rc != SQLITE_DONE) return Error(rc, "list agents");
  return out;
}

absl::StatusOr<std::vector<VerdictGroup>> SqliteStore::QueryVerdicts(const VerdictFilter& f) {
  std::lock_guard lock(mu_);
  // Window aggregates give per-group totals on every row; rn = 1 picks the
  // group's most recent row (by last_seen, then insertion) as the sample.
  const std::string sql =
      absl::StrCat("SELECT total, fs, ls, ", kColumns,
                   " FROM (SELECT *,"
                   " ROW_NUMBER() OVER (PARTITION BY ",
                   kGroupKey,
                   " ORDER BY last_seen_ms DESC, id DESC) AS rn,"
                   " SUM(count) OVER g AS total, MIN(first_seen_ms) OVER g AS fs,"
                   " MAX(last_seen_ms) OVER g AS ls"
                   " FROM events",
                   FilterSql(f), " WINDOW g AS (PARTITION BY ", kGroupKey,
                   "))"
                   " WHERE rn = 1 ORDER BY ",
                   kFindingOrder, ", ls DESC, ", kGroupKey, " LIMIT ? OFFSET ?");
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql));
  StmtGuard guard(st);
  int n = BindFilter(st, f);
  sqlite3_bind_int64(st, n + 1, Limit(f));
  sqlite3_bind_int64(st, n + 2, Offset(f));
  std::vector<VerdictGroup> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    VerdictGroup g;
    g.count = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    g.first_seen_unix_ms = sqlite3_column_int64(st, 1);
    g.last_seen_unix_ms = sqlite3_column_int64(st, 2);
    g.sample = ReadRecord(st, 3);
    out.push_back(std::move(g));
  }
  if (rc != SQLITE_DONE) return Error(rc, "query verdicts");
  return out;
}

absl::StatusOr<std::vector<EventRecord>> SqliteStore::QueryEvents(const VerdictFilter& f) {
  std::lock_guard lock(mu_);
  const std::string sql = absl::StrCat("SELECT ", kColumns, " FROM events", FilterSql(f),
                                       " ORDER BY last_seen_ms DESC, id DESC LIMIT ? OFFSET ?");
  ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql));
  StmtGuard guard(st);
  int n = BindFilter(st, f);
  sqlite3_bind_int64(st, n + 1, Limit(f));
  sqlite3_bind_int64(st, n + 2, Offset(f));
  std::vector<EventRecord> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(ReadRecord(st, 0));
  if (rc != SQLITE_DONE) return Error(rc, "query events");
  return out;
}

absl::StatusOr<uint64_t> SqliteStore::CountEvents(const VerdictFilter& f) {
  std::lock_guard lock(mu_);
  // Stored rows, one per (agent_id, seq); `limit` does not apply to a count.
  ASSIGN_OR_RETURN(sqlite3_stmt * st,
                   Prepare(absl::StrCat("SELECT COUNT(*) FROM events", FilterSql(f))));
  StmtGuard guard(st);
  BindFilter(st, f);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) return Error(rc, "count events");
  return static_cast<uint64_t>(sqlite3_column_int64(st, 0));
}

}  // namespace idflow::store

#include "collector/store/postgres_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <unordered_set>
#include <utility>
#include "absl/strings/string_view.h"

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "collector/store/aggregate_rules.h"
#include "common/status_macros.h"
#include "common/verdict_categories.h"
#include "nlohmann/json.hpp"

namespace idflow::store {
namespace {

// Forward migrations, index i takes the schema from version i to i + 1. Never
// edit a shipped entry: append one and bump kSchemaVersion.
constexpr const char* kMigrations[] = {
    // v1: events partitioned by day of last_seen_ms, per-agent stream state,
    // gaps, agents and the aggregates maintained at ingest.
    R"sql(
CREATE SEQUENCE events_id_seq;
CREATE TABLE events (
  id                 bigint  NOT NULL DEFAULT nextval('events_id_seq'),
  agent_id           text    NOT NULL,
  seq                bigint  NOT NULL,
  device_id          text    NOT NULL,
  device_class       text    NOT NULL,
  firmware           text    NOT NULL,
  pid                bigint  NOT NULL,
  exe                text    NOT NULL,
  module             text    NOT NULL,
  module_build_id    text    NOT NULL,
  sdk                text    NOT NULL,
  sdk_hint           text    NOT NULL,
  action             text    NOT NULL,
  channel            text    NOT NULL,
  dest_ip            text    NOT NULL,
  dest_port          bigint  NOT NULL,
  dest_host          text    NOT NULL,
  dest_peer_exe      text    NOT NULL,
  destination        text    NOT NULL,
  data_type          text    NOT NULL,
  instance           text    NOT NULL,
  encoding           text    NOT NULL,
  digest             text    NOT NULL,
  byte_offset        bigint  NOT NULL,
  snippet            text    NOT NULL,
  has_cookie         boolean NOT NULL,
  cookie_name        text    NOT NULL,
  cookie_direction   text    NOT NULL,
  cookie_domain      text    NOT NULL,
  cookie_max_age     bigint  NOT NULL,
  cookie_session     boolean NOT NULL,
  cookie_first_party boolean NOT NULL,
  scenarios          text[]  NOT NULL,
  consent_names      text[]  NOT NULL,
  consent_values     boolean[] NOT NULL,
  chain_paths        text[]  NOT NULL,
  chain_build_ids    text[]  NOT NULL,
  run_id             text    NOT NULL,
  count              bigint  NOT NULL,
  first_seen_ms      bigint  NOT NULL,
  last_seen_ms       bigint  NOT NULL,
  verdict            text    NOT NULL,
  finding            text    NOT NULL,
  statement          text    NOT NULL,
  statement_version  text    NOT NULL,
  entry              text    NOT NULL,
  explanation        text    NOT NULL
) PARTITION BY RANGE (last_seen_ms);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_device ON events (device_id, last_seen_ms);
CREATE INDEX events_sdk ON events (sdk, last_seen_ms);
CREATE INDEX events_verdict ON events (verdict, last_seen_ms);
CREATE INDEX events_run ON events (run_id, last_seen_ms);
CREATE INDEX events_agent_seq ON events (agent_id, seq);
CREATE TABLE streams (
  agent_id      text   PRIMARY KEY,
  last_seq      bigint NOT NULL DEFAULT 0,
  events_stored bigint NOT NULL DEFAULT 0,
  gap_events    bigint NOT NULL DEFAULT 0,
  generation    bigint NOT NULL DEFAULT 0,
  collector_id  text   NOT NULL DEFAULT '',
  claimed_ms    bigint NOT NULL DEFAULT 0
);
CREATE TABLE gaps (
  agent_id    text   NOT NULL,
  from_seq    bigint NOT NULL,
  to_seq      bigint NOT NULL,
  cause       text   NOT NULL,
  recorded_ms bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
  PRIMARY KEY (agent_id, from_seq)
);
CREATE TABLE agents (
  agent_id          text   PRIMARY KEY,
  device_id         text   NOT NULL DEFAULT '',
  device_class      text   NOT NULL DEFAULT '',
  firmware          text   NOT NULL DEFAULT '',
  agent_version     text   NOT NULL DEFAULT '',
  last_seen_ms      bigint NOT NULL DEFAULT 0,
  drops_tap         bigint NOT NULL DEFAULT 0,
  drops_ingress     bigint NOT NULL DEFAULT 0,
  drops_spool       bigint NOT NULL DEFAULT 0,
  drops_disk        bigint NOT NULL DEFAULT 0,
  drops_dead_letter bigint NOT NULL DEFAULT 0
);
CREATE INDEX agents_device ON agents (device_id, agent_id);
CREATE TABLE verdict_groups (
  LIKE events,
  finding_rank   integer NOT NULL,
  total          bigint  NOT NULL,
  group_first_ms bigint  NOT NULL,
  UNIQUE (device_id, device_class, firmware, sdk, module, data_type, encoding, destination,
          cookie_name, cookie_direction, verdict, statement, statement_version, entry)
);
ALTER TABLE verdict_groups ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY,
  ADD PRIMARY KEY (id);
-- Groups change last_seen on nearly every write (no HOT update), so each
-- index costs an entry per group per transaction: the page order only; the
-- unique key serves device filters, other filters ride the order index.
CREATE INDEX groups_order ON verdict_groups (finding_rank, last_seen_ms DESC, id);
CREATE TABLE verdict_matrix (
  sdk           text   NOT NULL,
  data_type     text   NOT NULL,
  verdict       text   NOT NULL,
  finding       text   NOT NULL,
  total         bigint NOT NULL,
  first_seen_ms bigint NOT NULL,
  last_seen_ms  bigint NOT NULL,
  PRIMARY KEY (sdk, data_type, verdict)
);
CREATE TABLE verdict_hourly (
  hour_ms   bigint NOT NULL,
  device_id text   NOT NULL,
  sdk       text   NOT NULL,
  data_type text   NOT NULL,
  verdict   text   NOT NULL,
  finding   text   NOT NULL,
  total     bigint NOT NULL,
  PRIMARY KEY (hour_ms, device_id, sdk, data_type, verdict)
);
)sql",
    // v2: the overview's histogram across devices from an (hour, SDK,
    // verdict) rollup (sqlite_store.cc v6).
    R"sql(
CREATE TABLE verdict_hourly_sdk (
  hour_ms bigint NOT NULL,
  sdk     text   NOT NULL,
  verdict text   NOT NULL,
  finding text   NOT NULL,
  total   bigint NOT NULL,
  PRIMARY KEY (hour_ms, sdk, verdict)
);
INSERT INTO verdict_hourly_sdk
  SELECT hour_ms, sdk, verdict, MIN(finding), SUM(total)
  FROM verdict_hourly GROUP BY hour_ms, sdk, verdict;
)sql",
};
static_assert(std::size(kMigrations) == PostgresStore::kSchemaVersion);

// Event columns in the order the COPY rows are written (AppendEventRow).
constexpr const char* kColumns =
    "agent_id, seq, device_id, device_class, firmware, pid, exe, module, module_build_id, sdk, "
    "sdk_hint, action, channel, dest_ip, dest_port, dest_host, dest_peer_exe, destination, "
    "data_type, instance, encoding, digest, byte_offset, snippet, has_cookie, cookie_name, "
    "cookie_direction, cookie_domain, cookie_max_age, cookie_session, cookie_first_party, "
    "scenarios, consent_names, consent_values, chain_paths, chain_build_ids, run_id, count, "
    "first_seen_ms, last_seen_ms, verdict, finding, statement, statement_version, entry, "
    "explanation";

// A verdict group: events with these equal share one verdict_groups row.
constexpr const char* kGroupKey =
    "device_id, device_class, firmware, sdk, module, data_type, encoding, destination, "
    "cookie_name, cookie_direction, verdict, statement, statement_version, entry";

constexpr const char* kFindingRank =
    "CASE finding WHEN 'violation' THEN 0 WHEN 'observation' THEN 1 ELSE 2 END";

constexpr int64_t kHourMs = 3600000;
constexpr int64_t kDayMs = 24 * kHourMs;
// Day partitions for 1970-01-01 .. 9999-12-31; other times go to the default.
constexpr int64_t kMaxPartitionedMs = 253402300800000;
constexpr int kRetries = 4;  // attempts for a serialization failure/deadlock

// Advisory lock namespaces (first key of the two-key form).
constexpr int kMigrationLock = 0x1DF1;
constexpr int kPartitionLock = 0x1DF2;

std::vector<std::string> ColumnList() { return absl::StrSplit(kColumns, ", "); }

bool IsArrayColumn(absl::string_view col) {
  return col == "scenarios" || col == "consent_names" || col == "consent_values" ||
         col == "chain_paths" || col == "chain_build_ids";
}

// kColumns for SELECT: arrays come back as JSON, which nlohmann parses.
const std::string& SelectColumns() {
  static const std::string* s = [] {
    std::vector<std::string> out;
    for (const std::string& c : ColumnList()) {
      out.push_back(IsArrayColumn(c) ? absl::StrCat("to_json(", c, ")") : c);
    }
    return new std::string(absl::StrJoin(out, ", "));
  }();
  return *s;
}

int64_t FloorDiv(int64_t ms, int64_t unit) {
  int64_t r = ms % unit;
  return r < 0 ? ms / unit - 1 : ms / unit;
}

std::optional<int64_t> DayOf(int64_t ms) {
  if (ms < 0 || ms >= kMaxPartitionedMs) return std::nullopt;
  return ms / kDayMs;
}

std::string PartitionName(int64_t day) {
  absl::CivilDay d = absl::CivilDay(1970, 1, 1) + day;
  return absl::StrFormat("events_p%04d%02d%02d", d.year(), d.month(), d.day());
}

// The day of a partition name, or nullopt for another table.
std::optional<int64_t> PartitionDay(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "events_p") || name.size() != 8) return std::nullopt;
  int y, m, d;
  if (!absl::SimpleAtoi(name.substr(0, 4), &y) || !absl::SimpleAtoi(name.substr(4, 2), &m) ||
      !absl::SimpleAtoi(name.substr(6, 2), &d)) {
    return std::nullopt;
  }
  return absl::CivilDay(y, m, d) - absl::CivilDay(1970, 1, 1);
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- COPY text format -------------------------------------------------------

// One field of a COPY text row: backslash, tab, newline and CR escaped.
void AppendCopyText(std::string& buf, absl::string_view s) {
  for (char ch : s) {
    switch (ch) {
      case '\\':
        buf += "\\\\";
        break;
      case '\t':
        buf += "\\t";
        break;
      case '\n':
        buf += "\\n";
        break;
      case '\r':
        buf += "\\r";
        break;
      default:
        buf.push_back(ch);
    }
  }
}

// A PostgreSQL array literal of quoted elements: {"a","b\"c"}.
template <typename Range, typename Get>
std::string ArrayLiteral(const Range& items, Get get) {
  std::string out = "{";
  bool first = true;
  for (const auto& item : items) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    for (char ch : absl::string_view(get(item))) {
      if (ch == '"' || ch == '\\') out.push_back('\\');
      out.push_back(ch);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

std::string TextArray(const std::vector<std::string>& v) {
  return ArrayLiteral(v, [](const std::string& s) -> absl::string_view { return s; });
}

// Appends one event as a COPY text row in kColumns order.
// Calls text/num/flag for each field of `e`, in kColumns order.
template <typename Text, typename Num, typename Flag>
void VisitFields(const EventRecord& e, Text text, Num num, Flag flag) {
  const bool c = e.has_cookie;
  text(e.agent_id);
  num(static_cast<int64_t>(e.seq));  // uint64 kept bit-for-bit in bigint
  text(e.device_id);
  text(e.device_class);
  text(e.firmware);
  num(e.pid);
  text(e.exe);
  text(e.module);
  text(e.module_build_id);
  text(e.sdk);
  text(e.sdk_hint);
  text(e.action);
  text(e.channel);
  text(e.dest_ip);
  num(e.dest_port);
  text(e.dest_host);
  text(e.dest_peer_exe);
  text(e.Destination());
  text(e.data_type);
  text(e.instance);
  text(e.encoding);
  text(e.digest);
  num(e.offset);
  text(e.snippet);
  flag(c);
  text(c ? e.cookie.name : "");
  text(c ? e.cookie.direction : "");
  text(c ? e.cookie.domain : "");
  num(c ? e.cookie.max_age_seconds : -1);
  flag(c && e.cookie.session);
  flag(!c || e.cookie.first_party);
  text(TextArray(e.scenarios));
  text(ArrayLiteral(e.consents, [](const auto& kv) -> absl::string_view { return kv.first; }));
  text(ArrayLiteral(e.consents,
                    [](const auto& kv) -> absl::string_view { return kv.second ? "t" : "f"; }));
  text(ArrayLiteral(e.call_chain, [](const ModuleRef& m) -> absl::string_view { return m.path; }));
  text(ArrayLiteral(e.call_chain,
                    [](const ModuleRef& m) -> absl::string_view { return m.build_id; }));
  text(e.run_id);
  num(static_cast<int64_t>(e.count));
  num(e.first_seen_unix_ms);
  num(e.last_seen_unix_ms);
  text(e.verdict);
  text(e.finding);
  text(e.statement);
  text(e.statement_version);
  text(e.entry);
  text(e.explanation);
}

// Appends one event as a COPY text row (no newline).
void AppendEventRow(std::string& buf, const EventRecord& e) {
  bool first = true;
  auto sep = [&] {
    if (!first) buf.push_back('\t');
    first = false;
  };
  VisitFields(
      e,
      [&](absl::string_view s) {
        sep();
        AppendCopyText(buf, s);
      },
      [&](int64_t v) {
        sep();
        absl::StrAppend(&buf, v);
      },
      [&](bool b) {
        sep();
        buf.push_back(b ? 't' : 'f');
      });
}

// --- reading results ----------------------------------------------------------

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::string Text(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}

int64_t Int(const PGresult* r, int row, int col) {
  return strtoll(PQgetvalue(r, row, col), nullptr, 10);
}

bool Bool(const PGresult* r, int row, int col) { return PQgetvalue(r, row, col)[0] == 't'; }

template <typename T>
std::vector<T> JsonArray(const PGresult* r, int row, int col) {
  std::vector<T> out;
  nlohmann::json j = nlohmann::json::parse(PQgetvalue(r, row, col), nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if constexpr (std::is_same_v<T, bool>) {
      out.push_back(v.is_boolean() && v.get<bool>());
    } else {
      out.push_back(v.is_string() ? v.get<std::string>() : std::string());
    }
  }
  return out;
}

// Reads SelectColumns() starting at result column `c`.
EventRecord ReadRecord(const PGresult* r, int row, int c) {
  EventRecord e;
  e.agent_id = Text(r, row, c++);
  e.seq = static_cast<uint64_t>(Int(r, row, c++));
  e.device_id = Text(r, row, c++);
  e.device_class = Text(r, row, c++);
  e.firmware = Text(r, row, c++);
  e.pid = Int(r, row, c++);
  e.exe = Text(r, row, c++);
  e.module = Text(r, row, c++);
  e.module_build_id = Text(r, row, c++);
  e.sdk = Text(r, row, c++);
  e.sdk_hint = Text(r, row, c++);
  e.action = Text(r, row, c++);
  e.channel = Text(r, row, c++);
  e.dest_ip = Text(r, row, c++);
  e.dest_port = static_cast<uint32_t>(Int(r, row, c++));
  e.dest_host = Text(r, row, c++);
  e.dest_peer_exe = Text(r, row, c++);
  c++;  // destination: derived, recomputed by Destination()
  e.data_type = Text(r, row, c++);
  e.instance = Text(r, row, c++);
  e.encoding = Text(r, row, c++);
  e.digest = Text(r, row, c++);
  e.offset = Int(r, row, c++);
  e.snippet = Text(r, row, c++);
  e.has_cookie = Bool(r, row, c++);
  e.cookie.name = Text(r, row, c++);
  e.cookie.direction = Text(r, row, c++);
  e.cookie.domain = Text(r, row, c++);
  e.cookie.max_age_seconds = Int(r, row, c++);
  e.cookie.session = Bool(r, row, c++);
  e.cookie.first_party = Bool(r, row, c++);
  if (!e.has_cookie) e.cookie = CookieRecord{};
  e.scenarios = JsonArray<std::string>(r, row, c++);
  std::vector<std::string> names = JsonArray<std::string>(r, row, c++);
  std::vector<bool> values = JsonArray<bool>(r, row, c++);
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) e.consents[names[i]] = values[i];
  std::vector<std::string> paths = JsonArray<std::string>(r, row, c++);
  std::vector<std::string> ids = JsonArray<std::string>(r, row, c++);
  for (size_t i = 0; i < paths.size(); ++i) {
    e.call_chain.push_back({paths[i], i < ids.size() ? ids[i] : ""});
  }
  e.run_id = Text(r, row, c++);
  e.count = static_cast<uint64_t>(Int(r, row, c++));
  e.first_seen_unix_ms = Int(r, row, c++);
  e.last_seen_unix_ms = Int(r, row, c++);
  e.verdict = Text(r, row, c++);
  e.finding = Text(r, row, c++);
  e.statement = Text(r, row, c++);
  e.statement_version = Text(r, row, c++);
  e.entry = Text(r, row, c++);
  e.explanation = Text(r, row, c++);
  return e;
}

// --- filters --------------------------------------------------------------------

// A WHERE clause with numbered parameters ($1...) and their values.
struct Where {
  std::string sql;
  std::vector<std::string> params;

  // `cond` holds "$" where the parameter goes; nullopt: no parameter.
  void Add(absl::string_view cond, std::optional<std::string> value = std::nullopt) {
    sql += sql.empty() ? " WHERE " : " AND ";
    if (value) {
      params.push_back(std::move(*value));
      sql += absl::StrReplaceAll(cond, {{"$", absl::StrCat("$", params.size())}});
    } else {
      sql.append(cond.data(), cond.size());
    }
  }
  // A parameter outside the clause (LIMIT, bucket width): its placeholder.
  std::string Param(std::string value) {
    params.push_back(std::move(value));
    return absl::StrCat("$", params.size());
  }
};

// Every set field of `f` on a table with the events' column names;
// since/until compare `time_col` (with `since` when given).
Where BuildWhere(const VerdictFilter& f, absl::string_view time_col = "last_seen_ms",
                 std::optional<int64_t> since = std::nullopt) {
  Where w;
  const std::pair<const char*, const std::string*> eq[] = {
      {"device_id", &f.device_id}, {"device_class", &f.device_class},
      {"firmware", &f.firmware},   {"sdk", &f.sdk},
      {"data_type", &f.data_type}, {"verdict", &f.verdict},
      {"agent_id", &f.agent_id},   {"finding", &f.finding},
      {"run_id", &f.run_id}};
  for (const auto& [col, value] : eq) {
    if (!value->empty()) w.Add(absl::StrCat(col, " = $"), *value);
  }
  if (f.violations_only) w.Add("finding = 'violation'");
  if (f.since_unix_ms > 0) {
    w.Add(absl::StrCat(time_col, " >= $"), absl::StrCat(since.value_or(f.since_unix_ms)));
  }
  if (f.until_unix_ms > 0) w.Add(absl::StrCat(time_col, " < $"), absl::StrCat(f.until_unix_ms));
  return w;
}

std::string LimitOffset(Where& w, const VerdictFilter& f) {
  return absl::StrCat(" LIMIT ", f.limit == 0 ? "ALL" : w.Param(absl::StrCat(f.limit)), " OFFSET ",
                      w.Param(absl::StrCat(f.offset)));
}

// Marks a status as worth retrying the whole transaction for.
constexpr absl::string_view kRetryPayload = "idflow.store.pg.retry";

bool IsRetryable(const absl::Status& s) { return s.GetPayload(kRetryPayload).has_value(); }

absl::StatusCode CodeForSqlState(absl::string_view state) {
  if (state == "40001" || state == "40P01") return absl::StatusCode::kAborted;
  if (absl::StartsWith(state, "08") || absl::StartsWith(state, "57P") || state == "55P03") {
    return absl::StatusCode::kUnavailable;
  }
  if (absl::StartsWith(state, "53")) return absl::StatusCode::kResourceExhausted;
  if (absl::StartsWith(state, "22")) return absl::StatusCode::kInvalidArgument;
  if (absl::StartsWith(state, "28")) return absl::StatusCode::kPermissionDenied;
  return absl::StatusCode::kInternal;
}

// What Write can refuse without reading the database.
absl::Status ValidateOp(const WriteOp& op) {
  if (op.agent_id.empty()) return absl::InvalidArgumentError("write op without agent_id");
  if (op.events.empty()) {
    if (op.gap_from != 0 && op.gap_to >= op.gap_from) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("write op of agent ", op.agent_id,
                                                   " has no events and a bad gap ", op.gap_from,
                                                   "..", op.gap_to));
  }
  uint64_t want = op.events.front().seq;
  for (const EventRecord& e : op.events) {
    if (e.agent_id != op.agent_id) {
      return absl::InvalidArgumentError(
          absl::StrCat("event of agent ", e.agent_id, " in a write op of ", op.agent_id));
    }
    if (e.seq != want++) {
      return absl::InvalidArgumentError(absl::StrCat("batch of ", op.agent_id,
                                                     " not contiguous: seq ", e.seq, " where ",
                                                     want - 1, " was due"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// --- connections ------------------------------------------------------------------

class PostgresStore::Conn {
 public:
  explicit Conn(PGconn* p) : pg(p) {}
  ~Conn() { PQfinish(pg); }
  PGconn* pg;
  bool session_ready = false;  // temporary tables of this session created
};

class PostgresStore::Lease {
 public:
  Lease(PostgresStore* s, Conn* c) : s_(s), c_(c) {}
  Lease(Lease&& o) noexcept : s_(o.s_), c_(std::exchange(o.c_, nullptr)) {}
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (c_ != nullptr) s_->Release(c_);
  }
  Conn& operator*() const { return *c_; }

 private:
  PostgresStore* s_;
  Conn* c_;
};

namespace {

// Error reporting shared by every statement: SQLSTATE and message, the
// connection's own message when there is no result, never credentials.
class Errors {
 public:
  static absl::Status Of(const std::string& where, PGconn* pg, const PGresult* res,
                         absl::string_view what) {
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = res ? PQresultErrorMessage(res) : "";
    if (msg.empty()) msg = PQerrorMessage(pg);
    absl::StripTrailingAsciiWhitespace(&msg);
    absl::StatusCode code = absl::StatusCode::kInternal;
    if (state != nullptr) {
      code = CodeForSqlState(state);
    } else if (PQstatus(pg) != CONNECTION_OK) {
      code = absl::StatusCode::kUnavailable;
    }
    absl::Status st(code, absl::StrCat("PostgreSQL store ", where, ": ", what, ": ", msg,
                                       state ? absl::StrCat(" (SQLSTATE ", state, ")") : ""));
    if (code == absl::StatusCode::kAborted) st.SetPayload(kRetryPayload, absl::Cord("1"));
    return st;
  }
};

absl::StatusOr<ResultPtr> Exec(const std::string& where, PGconn* pg, absl::string_view what,
                               const std::string& sql,
                               const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& p : params) values.push_back(p.c_str());
  ResultPtr r(PQexecParams(pg, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                           nullptr, nullptr, 0),
              &PQclear);
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return Errors::Of(where, pg, r.get(), what);
  }
  return r;
}

// Streams `data` (COPY text rows) into `table (columns)`.
absl::Status CopyIn(const std::string& where, PGconn* pg, const std::string& table,
                    absl::string_view columns, const std::string& data) {
  const std::string what = absl::StrCat("copy into ", table);
  {
    ResultPtr r(PQexec(pg, absl::StrCat("COPY ", table, " (", columns, ") FROM STDIN").c_str()),
                &PQclear);
    if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) return Errors::Of(where, pg, r.get(), what);
  }
  constexpr size_t kChunk = 1 << 20;
  bool sent = true;
  for (size_t off = 0; off < data.size() && sent; off += kChunk) {
    size_t n = std::min(kChunk, data.size() - off);
    sent = PQputCopyData(pg, data.data() + off, static_cast<int>(n)) == 1;
  }
  if (PQputCopyEnd(pg, sent ? nullptr : "client failed to send") != 1) {
    return Errors::Of(where, pg, nullptr, what);
  }
  absl::Status st;
  while (PGresult* res = PQgetResult(pg)) {
    if (PQresultStatus(res) != PGRES_COMMAND_OK && st.ok()) st = Errors::Of(where, pg, res, what);
    PQclear(res);
  }
  if (st.ok() && !sent) st = Errors::Of(where, pg, nullptr, what);
  return st;
}

}  // namespace

std::string PostgresStore::CopyRows(const std::vector<EventRecord>& events) {
  std::string rows;
  for (const EventRecord& e : events) {
    AppendEventRow(rows, e);
    rows.push_back('\n');
  }
  return rows;
}

const char* PostgresStore::CopyColumns() { return kColumns; }

std::vector<std::string> PostgresStore::InsertParams(const std::vector<EventRecord>& events) {
  std::vector<std::string> out;
  for (const EventRecord& e : events) {
    VisitFields(
        e, [&](absl::string_view s) { out.emplace_back(s); },
        [&](int64_t v) { out.push_back(absl::StrCat(v)); },
        [&](bool b) { out.emplace_back(b ? "t" : "f"); });
  }
  return out;
}

// --- opening ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& url) {
  std::unique_ptr<PostgresStore> s(new PostgresStore());
  // Split off idflow's own query parameters; libpq gets the rest.
  std::string base = url;
  std::vector<std::string> kept;
  size_t pool = 4;
  if (size_t q = url.find('?'); q != std::string::npos) {
    base = url.substr(0, q);
    for (absl::string_view kv : absl::StrSplit(url.substr(q + 1), '&', absl::SkipEmpty())) {
      std::pair<absl::string_view, absl::string_view> p =
          absl::StrSplit(kv, absl::MaxSplits('=', 1));
      int64_t ms = 0;
      if (p.first == "pool") {
        if (!absl::SimpleAtoi(p.second, &pool) || pool == 0 || pool > 256) {
          return absl::InvalidArgumentError(
              absl::StrCat("PostgreSQL store URL: pool=", p.second, " (want 1..256 connections)"));
        }
      } else if (p.first == "pool_wait_ms") {
        if (!absl::SimpleAtoi(p.second, &ms) || ms < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("PostgreSQL store URL: pool_wait_ms=", p.second));
        }
        s->pool_wait_ = absl::Milliseconds(ms);
      } else {
        kept.emplace_back(kv);
      }
    }
  }
  const std::string libpq_url =
      kept.empty() ? base : absl::StrCat(base, "?", absl::StrJoin(kept, "&"));
  // What messages name: scheme, host, port and database; never user info.
  absl::string_view rest = base;
  size_t scheme = rest.find("://");
  rest = scheme == std::string::npos ? rest : rest.substr(scheme + 3);
  size_t slash = rest.find('/');
  size_t at = rest.substr(0, slash).rfind('@');
  if (at != absl::string_view::npos) rest = rest.substr(at + 1);
  s->where_ = absl::StrCat("postgresql://", rest);
  for (size_t i = 0; i < pool; ++i) {
    PGconn* pg = PQconnectdb(libpq_url.c_str());
    if (pg == nullptr || PQstatus(pg) != CONNECTION_OK) {
      std::string msg = pg ? PQerrorMessage(pg) : "out of memory";
      PQfinish(pg);
      absl::StripTrailingAsciiWhitespace(&msg);
      // libpq names host, port and user, never the password; the URL is not
      // echoed (it may hold one).
      return absl::UnavailableError(
          absl::StrCat("PostgreSQL store ", s->where_, ": cannot connect: ", msg));
    }
    // Only warnings and errors reach the client; notices are noise here.
    PQsetNoticeProcessor(
        pg, [](void*, const char*) {}, nullptr);
    s->conns_.push_back(std::make_unique<Conn>(pg));
  }
  {
    std::lock_guard lock(s->mu_);
    for (auto& c : s->conns_) s->idle_.push_back(c.get());
  }
  RETURN_IF_ERROR(s->WithConn([&](Conn& c) { return s->Migrate(c); }));
  return s;
}

PostgresStore::~PostgresStore() = default;

absl::StatusOr<PostgresStore::Lease> PostgresStore::Acquire() {
  Conn* c = nullptr;
  {
    std::unique_lock lock(mu_);
    if (!idle_cv_.wait_for(lock, absl::ToChronoMilliseconds(pool_wait_),
                           [this] { return !idle_.empty(); })) {
      return absl::UnavailableError(absl::StrCat("PostgreSQL store ", where_, ": all ",
                                                 conns_.size(), " connections busy for ",
                                                 absl::FormatDuration(pool_wait_)));
    }
    c = idle_.back();
    idle_.pop_back();
  }
  Lease lease(this, c);
  if (PQstatus(c->pg) != CONNECTION_OK) {
    // The server restarted or the network dropped: one reconnect per use.
    PQreset(c->pg);
    c->session_ready = false;
    if (PQstatus(c->pg) != CONNECTION_OK) return Errors::Of(where_, c->pg, nullptr, "reconnect");
  }
  return lease;
}

void PostgresStore::Release(Conn* c) {
  {
    std::lock_guard lock(mu_);
    idle_.push_back(c);
  }
  idle_cv_.notify_one();
}

absl::Status PostgresStore::WithConn(const std::function<absl::Status(Conn&)>& body) {
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  return body(*lease);
}

absl::Status PostgresStore::InTransaction(const std::function<absl::Status(Conn&)>& body,
                                          const std::set<int64_t>& days) {
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  Conn& c = *lease;
  // Outside the transaction: a rolled-back CREATE would leave the session
  // believing in a table it does not have.
  RETURN_IF_ERROR(EnsureSession(c));
  RETURN_IF_ERROR(EnsurePartitions(c, days));
  absl::Status st;
  for (int attempt = 0; attempt < kRetries; ++attempt) {
    st = Exec(where_, c.pg, "begin", "BEGIN").status();
    if (st.ok()) st = body(c);
    if (st.ok()) st = Exec(where_, c.pg, "commit", "COMMIT").status();
    if (st.ok()) return st;
    if (PQtransactionStatus(c.pg) != PQTRANS_IDLE) {
      Exec(where_, c.pg, "rollback", "ROLLBACK").status().IgnoreError();
    }
    if (!IsRetryable(st)) return st;
  }
  // Contention that outlived the retries: the caller may try again later.
  return absl::UnavailableError(absl::StrCat(st.message(), " (after ", kRetries, " attempts)"));
}

absl::Status PostgresStore::Migrate(Conn& c) {
  auto exec = [&](absl::string_view what, const std::string& sql) {
    return Exec(where_, c.pg, what, sql).status();
  };
  RETURN_IF_ERROR(exec("begin", "BEGIN"));
  auto body = [&]() -> absl::Status {
    // Collectors starting together: one migrates, the others wait and see
    // the new version.
    RETURN_IF_ERROR(
        exec("lock schema", absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLock, ", 0)")));
    RETURN_IF_ERROR(exec("create schema_version",
                         "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL,"
                         " applied_ms bigint NOT NULL)"));
    ASSIGN_OR_RETURN(ResultPtr r, Exec(where_, c.pg, "read schema_version",
                                       "SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    const int version = static_cast<int>(Int(r.get(), 0, 0));
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "PostgreSQL store ", where_, ": schema version ", version,
          " is newer than this build supports (", kSchemaVersion, "); upgrade idflow-collector"));
    }
    for (int v = version; v < kSchemaVersion; ++v) {
      // PQexec: a migration is several statements.
      ResultPtr m(PQexec(c.pg, kMigrations[v]), &PQclear);
      if (!m || PQresultStatus(m.get()) != PGRES_COMMAND_OK) {
        return Errors::Of(where_, c.pg, m.get(), absl::StrCat("migrate to v", v + 1));
      }
      RETURN_IF_ERROR(
          exec("record schema_version",
               absl::StrCat("INSERT INTO schema_version VALUES (", v + 1, ", ", NowUnixMs(), ")")));
    }
    return absl::OkStatus();
  };
  absl::Status st = body();
  if (!st.ok()) {
    exec("rollback", "ROLLBACK").IgnoreError();
    return st;
  }
  return exec("commit", "COMMIT");
}

absl::StatusOr<int> PostgresStore::SchemaVersion() {
  int version = 0;
  RETURN_IF_ERROR(WithConn([&](Conn& c) -> absl::Status {
    ASSIGN_OR_RETURN(ResultPtr r, Exec(where_, c.pg, "read schema_version",
                                       "SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    version = static_cast<int>(Int(r.get(), 0, 0));
    return absl::OkStatus();
  }));
  return version;
}

absl::Status PostgresStore::EnsurePartitions(Conn& c, const std::set<int64_t>& days) {
  std::vector<int64_t> missing;
  {
    std::lock_guard lock(mu_);
    for (int64_t d : days) {
      if (!known_days_.count(d)) missing.push_back(d);
    }
  }
  for (int64_t day : missing) {
    const std::string name = PartitionName(day);
    // The advisory lock makes creation race-free across collectors.
    absl::Status st = Exec(where_, c.pg, "begin", "BEGIN").status();
    if (st.ok()) {
      st = Exec(where_, c.pg, "lock partition",
                absl::StrCat("SELECT pg_advisory_xact_lock(", kPartitionLock, ", ", day, ")"))
               .status();
    }
    if (st.ok()) {
      st = Exec(where_, c.pg, absl::StrCat("create partition ", name),
                absl::StrCat("CREATE TABLE IF NOT EXISTS ", name,
                             " PARTITION OF events FOR VALUES FROM (", day * kDayMs, ") TO (",
                             (day + 1) * kDayMs, ")"))
               .status();
    }
    if (st.ok()) st = Exec(where_, c.pg, "commit", "COMMIT").status();
    if (!st.ok()) {
      if (PQtransactionStatus(c.pg) != PQTRANS_IDLE) {
        Exec(where_, c.pg, "rollback", "ROLLBACK").status().IgnoreError();
      }
      // The default partition already holds rows of that day (a partition
      // dropped by retention and written again): they stay there.
      if (!absl::StrContains(st.message(), "SQLSTATE 23514")) return st;
    }
    std::lock_guard lock(mu_);
    known_days_.insert(day);
  }
  return absl::OkStatus();
}

// --- writing --------------------------------------------------------------------

// What one transaction adds to the aggregates, summed here so that each
// aggregate row is written once per transaction. Points into the caller's
// events: lives within one Write/Append call.
class PostgresStore::Batch {
 public:
  void Add(const EventRecord& e) {
    const bool c = e.has_cookie;
    auto [g, g_new] = groups_.try_emplace(
        {e.device_id, e.device_class, e.firmware, e.sdk, e.module, e.data_type, e.encoding,
         e.Destination(), c ? e.cookie.name : "", c ? e.cookie.direction : "", e.verdict,
         e.statement, e.statement_version, e.entry},
        Group{&e, 0, e.first_seen_unix_ms});
    g->second.count += e.count;
    g->second.first_seen = std::min(g->second.first_seen, e.first_seen_unix_ms);
    // The most recent event is the sample; ties: the later one.
    if (e.last_seen_unix_ms >= g->second.sample->last_seen_unix_ms) g->second.sample = &e;
    Cell& m = matrix_[{e.sdk, e.data_type, e.verdict}];
    m.Add(e, e.last_seen_unix_ms);
    hours_[{HourStart(e.last_seen_unix_ms), {e.device_id, e.sdk, e.data_type, e.verdict}}].Add(
        e, e.last_seen_unix_ms);
    hours_sdk_[{HourStart(e.last_seen_unix_ms), {e.sdk, e.verdict}}].Add(e, e.last_seen_unix_ms);
  }
  bool empty() const { return groups_.empty(); }

  // COPY rows for staged_groups: the sample's columns, total, first seen.
  std::string GroupRows() const {
    std::string out;
    for (const auto& [key, g] : groups_) {
      AppendEventRow(out, *g.sample);
      absl::StrAppend(&out, "\t", static_cast<int64_t>(g.count), "\t", g.first_seen, "\n");
    }
    return out;
  }
  // Parameters of the matrix upsert: one array per column.
  std::vector<std::string> MatrixParams() const {
    std::vector<std::vector<std::string>> cols(7);
    for (const auto& [k, m] : matrix_) {
      for (int i = 0; i < 3; ++i) cols[i].push_back(k[i]);
      m.Append(cols, 3, /*with_times=*/true);
    }
    return Literals(cols);
  }
  std::vector<std::string> HourParams() const {
    std::vector<std::vector<std::string>> cols(7);
    for (const auto& [k, h] : hours_) {
      cols[0].push_back(absl::StrCat(k.first));
      for (int i = 0; i < 4; ++i) cols[i + 1].push_back(k.second[i]);
      h.Append(cols, 5, /*with_times=*/false);
    }
    return Literals(cols);
  }
  std::vector<std::string> HourSdkParams() const {
    std::vector<std::vector<std::string>> cols(5);
    for (const auto& [k, h] : hours_sdk_) {
      cols[0].push_back(absl::StrCat(k.first));
      for (int i = 0; i < 2; ++i) cols[i + 1].push_back(k.second[i]);
      h.Append(cols, 3, /*with_times=*/false);
    }
    return Literals(cols);
  }

 private:
  struct Group {
    const EventRecord* sample;
    uint64_t count;
    int64_t first_seen;
  };
  struct Cell {
    std::string finding;
    uint64_t count = 0;
    int64_t first = INT64_MAX;
    int64_t last = INT64_MIN;
    void Add(const EventRecord& e, int64_t last_seen) {
      finding = e.finding;
      count += e.count;
      first = std::min(first, e.first_seen_unix_ms);
      last = std::max(last, last_seen);
    }
    void Append(std::vector<std::vector<std::string>>& cols, size_t at, bool with_times) const {
      cols[at].push_back(finding);
      cols[at + 1].push_back(absl::StrCat(static_cast<int64_t>(count)));
      if (with_times) {
        cols[at + 2].push_back(absl::StrCat(first));
        cols[at + 3].push_back(absl::StrCat(last));
      }
    }
  };
  static std::vector<std::string> Literals(const std::vector<std::vector<std::string>>& cols) {
    std::vector<std::string> out;
    for (const auto& c : cols) {
      if (!c.empty()) out.push_back(TextArray(c));
    }
    return out;
  }

  std::map<std::array<std::string, 14>, Group> groups_;
  std::map<std::array<std::string, 3>, Cell> matrix_;
  std::map<std::pair<int64_t, std::array<std::string, 4>>, Cell> hours_;
  std::map<std::pair<int64_t, std::array<std::string, 2>>, Cell> hours_sdk_;
};

namespace {

std::set<int64_t> DaysOf(const std::vector<const EventRecord*>& events) {
  std::set<int64_t> days;
  for (const EventRecord* e : events) {
    if (auto d = DayOf(e->last_seen_unix_ms)) days.insert(*d);
  }
  return days;
}

// Per-agent stream state, locked for the transaction.
struct StreamState {
  uint64_t last_seq = 0;
  uint64_t generation = 0;
  uint64_t added_events = 0;
  uint64_t added_gaps = 0;
  bool changed = false;
};

}  // namespace

namespace {

// Locks the `streams` rows of `agents` (created when missing), in agent
// order so that writers on several collectors cannot deadlock.
absl::StatusOr<std::map<std::string, StreamState>> LockStreams(const std::string& where, PGconn* pg,
                                                               std::set<std::string> agents) {
  std::map<std::string, StreamState> out;
  if (agents.empty()) return out;
  const std::string list = TextArray(std::vector<std::string>(agents.begin(), agents.end()));
  // One statement creates the missing rows and locks the others (the no-op
  // update), in agent order.
  ASSIGN_OR_RETURN(ResultPtr r, Exec(where, pg, "lock streams",
                                     "INSERT INTO streams (agent_id) SELECT a FROM"
                                     " unnest($1::text[]) AS a ORDER BY a ON CONFLICT (agent_id)"
                                     " DO UPDATE SET agent_id = excluded.agent_id"
                                     " RETURNING agent_id, last_seq, generation",
                                     {list}));
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    StreamState& s = out[Text(r.get(), i, 0)];
    s.last_seq = static_cast<uint64_t>(Int(r.get(), i, 1));
    s.generation = static_cast<uint64_t>(Int(r.get(), i, 2));
  }
  return out;
}

absl::Status SaveStreams(const std::string& where, PGconn* pg,
                         const std::map<std::string, StreamState>& streams) {
  std::vector<std::string> agents, last, events, gaps;
  for (const auto& [agent, s] : streams) {
    if (!s.changed) continue;
    agents.push_back(agent);
    last.push_back(absl::StrCat(static_cast<int64_t>(s.last_seq)));
    events.push_back(absl::StrCat(static_cast<int64_t>(s.added_events)));
    gaps.push_back(absl::StrCat(static_cast<int64_t>(s.added_gaps)));
  }
  if (agents.empty()) return absl::OkStatus();
  return Exec(where, pg, "account streams",
              "UPDATE streams s SET last_seq = GREATEST(s.last_seq, u.l),"
              " events_stored = s.events_stored + u.e, gap_events = s.gap_events + u.g"
              " FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(a, l, e, g)"
              " WHERE s.agent_id = u.a",
              {TextArray(agents), TextArray(last), TextArray(events), TextArray(gaps)})
      .status();
}

}  // namespace

absl::Status PostgresStore::EnsureSession(Conn& c) {
  if (c.session_ready) return absl::OkStatus();
  RETURN_IF_ERROR(
      Exec(where_, c.pg, "create staging table",
           absl::StrCat("CREATE TEMP TABLE IF NOT EXISTS staged_groups"
                        " ON COMMIT DELETE ROWS AS SELECT ",
                        kColumns, ", total, group_first_ms FROM verdict_groups", " WITH NO DATA"))
          .status());
  c.session_ready = true;
  return absl::OkStatus();
}

absl::Status PostgresStore::FlushAggregates(Conn& c, Batch& batch) {
  if (batch.empty()) return absl::OkStatus();
  // Groups: the summed rows staged, then merged into the stored ones in key
  // order (the lock order every collector follows). The sample columns follow
  // the most recent event (ties: the later write).
  static const std::string* group_sql = [] {
    std::vector<std::string> sets = {
        "total = verdict_groups.total + excluded.total",
        "group_first_ms = LEAST(verdict_groups.group_first_ms, excluded.group_first_ms)"};
    const std::vector<std::string> key = absl::StrSplit(kGroupKey, ", ");
    for (const std::string& col : ColumnList()) {
      if (std::find(key.begin(), key.end(), col) != key.end()) continue;
      sets.push_back(absl::StrCat(col, " = CASE WHEN excluded.last_seen_ms >= ",
                                  "verdict_groups.last_seen_ms THEN excluded.", col,
                                  " ELSE verdict_groups.", col, " END"));
    }
    return new std::string(absl::StrCat(
        "INSERT INTO verdict_groups (", kColumns, ", finding_rank, total, group_first_ms) SELECT ",
        kColumns, ", ", kFindingRank, ", total, group_first_ms FROM staged_groups ORDER BY ",
        kGroupKey, " ON CONFLICT (", kGroupKey, ") DO UPDATE SET ", absl::StrJoin(sets, ", ")));
  }();
  RETURN_IF_ERROR(CopyIn(where_, c.pg, "staged_groups",
                         absl::StrCat(kColumns, ", total, group_first_ms"), batch.GroupRows()));
  RETURN_IF_ERROR(Exec(where_, c.pg, "update verdict groups", *group_sql).status());
  RETURN_IF_ERROR(
      Exec(where_, c.pg, "update verdict matrix",
           "INSERT INTO verdict_matrix SELECT * FROM unnest($1::text[], $2::text[],"
           " $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])"
           " ORDER BY 1, 2, 3 ON CONFLICT (sdk, data_type, verdict) DO UPDATE SET"
           " finding = excluded.finding, total = verdict_matrix.total + excluded.total,"
           " first_seen_ms = LEAST(verdict_matrix.first_seen_ms, excluded.first_seen_ms),"
           " last_seen_ms = GREATEST(verdict_matrix.last_seen_ms, excluded.last_seen_ms)",
           batch.MatrixParams())
          .status());
  RETURN_IF_ERROR(
      Exec(where_, c.pg, "update hourly counts",
           "INSERT INTO verdict_hourly SELECT * FROM unnest($1::bigint[], $2::text[],"
           " $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])"
           " ORDER BY 1, 2, 3, 4, 5 ON CONFLICT (hour_ms, device_id, sdk, data_type, verdict)"
           " DO UPDATE SET finding = excluded.finding,"
           " total = verdict_hourly.total + excluded.total",
           batch.HourParams())
          .status());
  return Exec(where_, c.pg, "update hourly SDK counts",
              "INSERT INTO verdict_hourly_sdk SELECT * FROM unnest($1::bigint[], $2::text[],"
              " $3::text[], $4::text[], $5::bigint[])"
              " ORDER BY 1, 2, 3 ON CONFLICT (hour_ms, sdk, verdict)"
              " DO UPDATE SET finding = excluded.finding,"
              " total = verdict_hourly_sdk.total + excluded.total",
              batch.HourSdkParams())
      .status();
}

namespace {

// Runs `step` inside a savepoint; a statement error rolls just it back and
// is returned as the op's status. A lost connection fails the call (outer).
absl::StatusOr<absl::Status> InSavepoint(const std::string& where, PGconn* pg,
                                         const std::function<absl::Status()>& step) {
  RETURN_IF_ERROR(Exec(where, pg, "savepoint", "SAVEPOINT op").status());
  absl::Status st = step();
  if (!st.ok()) {
    if (PQstatus(pg) != CONNECTION_OK || IsRetryable(st)) return st;
    RETURN_IF_ERROR(Exec(where, pg, "rollback to savepoint", "ROLLBACK TO SAVEPOINT op").status());
  }
  RETURN_IF_ERROR(Exec(where, pg, "release savepoint", "RELEASE SAVEPOINT op").status());
  return st;
}

absl::Status CopyEvents(const std::string& where, PGconn* pg, const std::string& rows) {
  return CopyIn(where, pg, "events", kColumns, rows);
}

}  // namespace

absl::Status PostgresStore::WriteTx(Conn& c, const std::vector<WriteOp>& ops,
                                    std::vector<absl::Status>& out) {
  out.clear();
  std::set<std::string> agents;
  for (const WriteOp& op : ops) {
    out.push_back(ValidateOp(op));
    if (out.back().ok()) agents.insert(op.agent_id);
  }
  ASSIGN_OR_RETURN(auto streams, LockStreams(where_, c.pg, std::move(agents)));
  Batch batch;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!out[i].ok()) continue;
    const WriteOp& op = ops[i];
    StreamState& s = streams[op.agent_id];
    // The generation read under the row lock: a claim by another collector
    // waits for this transaction, or this one sees it.
    if (op.generation != 0 && op.generation != s.generation) {
      out[i] = absl::AbortedError(absl::StrCat("agent ", op.agent_id, ": stream generation ",
                                               op.generation, " is superseded (current ",
                                               s.generation, "): a newer stream owns the agent"));
      continue;
    }
    const uint64_t first = op.events.empty() ? op.gap_from : op.events.front().seq;
    if (first != s.last_seq + 1) {
      out[i] = absl::FailedPreconditionError(
          absl::StrCat("agent ", op.agent_id, ": seq ", first, " does not follow stored_up_to ",
                       s.last_seq, first <= s.last_seq ? " (already accounted for)" : " (a gap)"));
      continue;
    }
    if (op.events.empty()) {
      ASSIGN_OR_RETURN(out[i], InSavepoint(where_, c.pg, [&] {
                         return Exec(where_, c.pg, "insert gap",
                                     "INSERT INTO gaps (agent_id, from_seq, to_seq, cause)"
                                     " VALUES ($1, $2, $3, $4)",
                                     {op.agent_id, absl::StrCat(op.gap_from),
                                      absl::StrCat(op.gap_to), op.gap_cause})
                             .status();
                       }));
      if (!out[i].ok()) continue;
      s.last_seq = op.gap_to;
      s.added_gaps += op.gap_to - op.gap_from + 1;
    } else {
      std::string rows;
      uint64_t count = 0;
      for (const EventRecord& e : op.events) {
        AppendEventRow(rows, e);
        rows.push_back('\n');
        count += e.count;
      }
      ASSIGN_OR_RETURN(out[i],
                       InSavepoint(where_, c.pg, [&] { return CopyEvents(where_, c.pg, rows); }));
      if (!out[i].ok()) continue;
      for (const EventRecord& e : op.events) batch.Add(e);
      s.last_seq = op.events.back().seq;
      s.added_events += count;
    }
    s.changed = true;
  }
  RETURN_IF_ERROR(SaveStreams(where_, c.pg, streams));
  return FlushAggregates(c, batch);
}

absl::StatusOr<std::vector<absl::Status>> PostgresStore::Write(const std::vector<WriteOp>& ops) {
  std::vector<const EventRecord*> all;
  for (const WriteOp& op : ops) {
    for (const EventRecord& e : op.events) all.push_back(&e);
  }
  std::vector<absl::Status> out;
  RETURN_IF_ERROR(InTransaction([&](Conn& c) { return WriteTx(c, ops, out); }, DaysOf(all)));
  return out;
}

absl::Status PostgresStore::AppendContiguous(const std::string& agent_id,
                                             const std::vector<EventRecord>& events) {
  if (events.empty()) return absl::OkStatus();
  WriteOp op;
  op.agent_id = agent_id;
  op.events = events;  // Write's signature costs this older entry point a copy
  ASSIGN_OR_RETURN(std::vector<absl::Status> st, Write({std::move(op)}));
  return st[0];
}

absl::Status PostgresStore::RecordGap(const std::string& agent_id, uint64_t from, uint64_t to,
                                      const std::string& cause) {
  if (from == 0 || to < from)
    return absl::InvalidArgumentError(absl::StrCat("bad gap ", from, "..", to));
  WriteOp op;
  op.agent_id = agent_id;
  op.gap_from = from;
  op.gap_to = to;
  op.gap_cause = cause;
  ASSIGN_OR_RETURN(std::vector<absl::Status> st, Write({std::move(op)}));
  return st[0];
}

absl::StatusOr<uint64_t> PostgresStore::Append(const std::vector<EventRecord>& events) {
  std::set<std::string> agents;
  std::vector<const EventRecord*> all;
  for (const EventRecord& e : events) {
    if (e.agent_id.empty()) return absl::InvalidArgumentError("event without agent_id");
    agents.insert(e.agent_id);
    all.push_back(&e);
  }
  if (events.empty()) return 0;
  uint64_t inserted = 0;
  auto body = [&](Conn& c) -> absl::Status {
    inserted = 0;
    // The agents' rows locked: no other Append or Write of theirs can store
    // the same seqs between the look-up and the insert.
    ASSIGN_OR_RETURN(auto streams, LockStreams(where_, c.pg, agents));
    std::vector<std::string> seqs;
    for (const EventRecord& e : events) seqs.push_back(absl::StrCat(static_cast<int64_t>(e.seq)));
    ASSIGN_OR_RETURN(
        ResultPtr r,
        Exec(where_, c.pg, "look up stored seqs",
             "SELECT agent_id, seq FROM events WHERE agent_id = ANY($1::text[])"
             " AND seq = ANY($2::bigint[])",
             {TextArray(std::vector<std::string>(agents.begin(), agents.end())), TextArray(seqs)}));
    std::set<std::pair<std::string, uint64_t>> stored;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      stored.emplace(Text(r.get(), i, 0), static_cast<uint64_t>(Int(r.get(), i, 1)));
    }
    Batch batch;
    std::string rows;
    for (const EventRecord& e : events) {
      // Skips what is stored and repeats within the call (first copy wins).
      if (!stored.emplace(e.agent_id, e.seq).second) continue;
      AppendEventRow(rows, e);
      rows.push_back('\n');
      batch.Add(e);
      StreamState& s = streams[e.agent_id];
      s.last_seq = std::max(s.last_seq, e.seq);
      s.added_events += e.count;
      s.changed = true;
      ++inserted;
    }
    if (inserted == 0) return absl::OkStatus();
    RETURN_IF_ERROR(CopyEvents(where_, c.pg, rows));
    RETURN_IF_ERROR(SaveStreams(where_, c.pg, streams));
    return FlushAggregates(c, batch);
  };
  RETURN_IF_ERROR(InTransaction(body, DaysOf(all)));
  return inserted;
}

absl::StatusOr<uint64_t> PostgresStore::ClaimStream(const std::string& agent_id,
                                                    const std::string& collector_id) {
  if (agent_id.empty()) return absl::InvalidArgumentError("stream claim without agent_id");
  uint64_t generation = 0;
  RETURN_IF_ERROR(WithConn([&](Conn& c) -> absl::Status {
    // One statement: atomic against every collector sharing the database.
    ASSIGN_OR_RETURN(
        ResultPtr r,
        Exec(where_, c.pg, absl::StrCat("claim stream of ", agent_id),
             "INSERT INTO streams (agent_id, generation, collector_id, claimed_ms)"
             " VALUES ($1, 1, $2, $3) ON CONFLICT (agent_id) DO UPDATE SET"
             " generation = streams.generation + 1, collector_id = excluded.collector_id,"
             " claimed_ms = excluded.claimed_ms RETURNING generation",
             {agent_id, collector_id, absl::StrCat(NowUnixMs())}));
    generation = static_cast<uint64_t>(Int(r.get(), 0, 0));
    return absl::OkStatus();
  }));
  return generation;
}

namespace {

absl::StatusOr<uint64_t> StreamField(const std::string& where, PGconn* pg, const char* col,
                                     const std::string& agent_id) {
  ASSIGN_OR_RETURN(
      ResultPtr r,
      Exec(where, pg, absl::StrCat(col, " of ", agent_id),
           absl::StrCat("SELECT ", col, " FROM streams WHERE agent_id = $1"), {agent_id}));
  if (PQntuples(r.get()) == 0) return 0;  // an agent never seen
  return static_cast<uint64_t>(Int(r.get(), 0, 0));
}

}  // namespace

absl::StatusOr<uint64_t> PostgresStore::StreamGeneration(const std::string& agent_id) {
  uint64_t v = 0;
  RETURN_IF_ERROR(WithConn([&](Conn& c) -> absl::Status {
    ASSIGN_OR_RETURN(v, StreamField(where_, c.pg, "generation", agent_id));
    return absl::OkStatus();
  }));
  return v;
}

absl::StatusOr<uint64_t> PostgresStore::LastSeq(const std::string& agent_id) {
  uint64_t v = 0;
  RETURN_IF_ERROR(WithConn([&](Conn& c) -> absl::Status {
    // Stored events and declared gaps alike; kept through retention.
    ASSIGN_OR_RETURN(v, StreamField(where_, c.pg, "last_seq", agent_id));
    return absl::OkStatus();
  }));
  return v;
}

absl::StatusOr<uint64_t> PostgresStore::PruneBefore(int64_t before_unix_ms) {
  uint64_t deleted = 0;
  std::vector<int64_t> dropped;
  absl::Status status = InTransaction([&](Conn& c) -> absl::Status {
    deleted = 0;
    dropped.clear();
    ASSIGN_OR_RETURN(
        ResultPtr parts,
        Exec(where_, c.pg, "list partitions",
             "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
             " WHERE i.inhparent = 'events'::regclass ORDER BY 1"));
    // Whole days before the cut-off's day go at once.
    const int64_t cut_day = FloorDiv(before_unix_ms, kDayMs);
    for (int i = 0; i < PQntuples(parts.get()); ++i) {
      const std::string name = Text(parts.get(), i, 0);
      std::optional<int64_t> day = PartitionDay(name);
      if (!day || *day >= cut_day) continue;
      ASSIGN_OR_RETURN(ResultPtr n, Exec(where_, c.pg, absl::StrCat("count ", name),
                                         absl::StrCat("SELECT count(*) FROM ", name)));
      deleted += static_cast<uint64_t>(Int(n.get(), 0, 0));
      RETURN_IF_ERROR(
          Exec(where_, c.pg, absl::StrCat("drop ", name), absl::StrCat("DROP TABLE ", name))
              .status());
      dropped.push_back(*day);
    }
    ASSIGN_OR_RETURN(ResultPtr r, Exec(where_, c.pg, "prune events",
                                       "DELETE FROM events WHERE last_seen_ms < $1",
                                       {absl::StrCat(before_unix_ms)}));
    deleted += strtoull(PQcmdTuples(r.get()), nullptr, 10);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  std::lock_guard lock(mu_);
  for (int64_t d : dropped) known_days_.erase(d);
  return deleted;
}

// --- agents ---------------------------------------------------------------------

namespace {

std::vector<std::string> DropParams(const DropCounts& d) {
  std::vector<std::string> out;
  for (uint64_t v : {d.tap, d.ingress, d.spool, d.disk, d.dead_letter}) {
    out.push_back(absl::StrCat(static_cast<int64_t>(v)));
  }
  return out;
}

}  // namespace

absl::Status PostgresStore::UpsertAgent(const AgentRecord& a) {
  std::vector<std::string> params = {a.agent_id,      a.device_id,
                                     a.device_class,  a.firmware,
                                     a.agent_version, absl::StrCat(a.last_seen_unix_ms)};
  for (std::string& d : DropParams(a.drops)) params.push_back(std::move(d));
  return WithConn([&](Conn& c) {
    return Exec(where_, c.pg, "upsert agent",
                "INSERT INTO agents (agent_id, device_id, device_class, firmware, agent_version,"
                " last_seen_ms, drops_tap, drops_ingress, drops_spool, drops_disk,"
                " drops_dead_letter) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                " ON CONFLICT (agent_id) DO UPDATE SET device_id = $2, device_class = $3,"
                " firmware = $4, agent_version = $5,"
                " last_seen_ms = GREATEST(agents.last_seen_ms, $6),"
                " drops_tap = GREATEST(agents.drops_tap, $7),"
                " drops_ingress = GREATEST(agents.drops_ingress, $8),"
                " drops_spool = GREATEST(agents.drops_spool, $9),"
                " drops_disk = GREATEST(agents.drops_disk, $10),"
                " drops_dead_letter = GREATEST(agents.drops_dead_letter, $11)",
                params)
        .status();
  });
}

absl::Status PostgresStore::UpdateDrops(const std::string& agent_id, const DropCounts& d,
                                        int64_t seen_unix_ms) {
  std::vector<std::string> params = DropParams(d);
  params.push_back(absl::StrCat(seen_unix_ms));
  params.push_back(agent_id);
  return WithConn([&](Conn& c) -> absl::Status {
    // Counters are cumulative on the agent: a late or replayed report never
    // moves them backwards.
    ASSIGN_OR_RETURN(ResultPtr r,
                     Exec(where_, c.pg, "update drops",
                          "UPDATE agents SET last_seen_ms = GREATEST(last_seen_ms, $6),"
                          " drops_tap = GREATEST(drops_tap, $1),"
                          " drops_ingress = GREATEST(drops_ingress, $2),"
                          " drops_spool = GREATEST(drops_spool, $3),"
                          " drops_disk = GREATEST(drops_disk, $4),"
                          " drops_dead_letter = GREATEST(drops_dead_letter, $5)"
                          " WHERE agent_id = $7",
                          params));
    if (absl::string_view(PQcmdTuples(r.get())) == "0") {
      return absl::NotFoundError(absl::StrCat("drops for agent ", agent_id, ", never seen"));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<AgentRecord>> PostgresStore::ListAgents(const std::string& device_id,
                                                                   size_t limit, size_t offset) {
  std::vector<AgentRecord> out;
  RETURN_IF_ERROR(WithConn([&](Conn& c) -> absl::Status {
    ASSIGN_OR_RETURN(
        ResultPtr r,
        Exec(where_, c.pg, "list agents",
             "SELECT a.agent_id, a.device_id, a.device_class, a.firmware, a.agent_version,"
             " a.last_seen_ms, a.drops_tap, a.drops_ingress, a.drops_spool, a.drops_disk,"
             " a.drops_dead_letter, COALESCE(s.events_stored, 0), COALESCE(s.gap_events, 0),"
             " COALESCE(s.last_seq, 0)"
             " FROM agents a LEFT JOIN streams s ON s.agent_id = a.agent_id"
             " WHERE ($1 = '' OR a.device_id = $1) ORDER BY a.agent_id LIMIT $2 OFFSET $3",
             {device_id, absl::StrCat(limit == 0 ? INT64_MAX : static_cast<int64_t>(limit)),
              absl::StrCat(offset)}));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      AgentRecord a;
      int col = 0;
      auto next = [&] { return Int(r.get(), i, col++); };
      a.agent_id = Text(r.get(), i, col++);
      a.device_id = Text(r.get(), i, col++);
      a.device_class = Text(r.get(), i, col++);
      a.firmware = Text(r.get(), i, col++);
      a.agent_version = Text(r.get(), i, col++);
      a.last_seen_unix_ms = next();
      for (uint64_t* d :
           {&a.drops.tap, &a.drops.ingress, &a.drops.spool, &a.drops.disk, &a.drops.dead_letter}) {
        *d = static_cast<uint64_t>(next());
      }
      a.events_stored = static_cast<uint64_t>(next());
      a.gap_events = static_cast<uint64_t>(next());
      a.stored_up_to = static_cast<uint64_t>(next());
      out.push_back(std::move(a));
    }
    return absl::OkStatus();
  }));
  return out;
}

// --- queries --------------------------------------------------------------------

namespace {

template <typename Row, typename Read>
absl::Status Collect(const std::string& where, PGconn* pg, absl::string_view what,
                     const std::string& sql, const std::vector<std::string>& params,
                     std::vector<Row>& out, Read read) {
  ASSIGN_OR_RETURN(ResultPtr r, Exec(where, pg, what, sql, params));
  for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(read(r.get(), i));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<VerdictGroup>> PostgresStore::QueryVerdicts(const VerdictFilter& f) {
  Where w = BuildWhere(f);
  std::string sql;
  if (f.agent_id.empty() && f.run_id.empty()) {
    // The groups maintained at ingest; the sample's columns are the row's.
    sql = absl::StrCat("SELECT total, group_first_ms, last_seen_ms, ", SelectColumns(),
                       " FROM verdict_groups", w.sql,
                       " ORDER BY finding_rank, last_seen_ms DESC, id", LimitOffset(w, f));
  } else {
    // Groups keep no agent or run: computed from that agent's or run's
    // events (indexed); rn = 1 is the most recent row (then the later one).
    sql = absl::StrCat("SELECT total, fs, ls, ", SelectColumns(),
                       " FROM (SELECT *, ROW_NUMBER() OVER (", "PARTITION BY ", kGroupKey,
                       " ORDER BY last_seen_ms DESC, id DESC) AS rn,",
                       " SUM(count) OVER g AS total, MIN(first_seen_ms) OVER g AS fs,",
                       " MAX(last_seen_ms) OVER g AS ls FROM events", w.sql,
                       " WINDOW g AS (PARTITION BY ", kGroupKey, ")) s WHERE rn = 1 ORDER BY ",
                       kFindingRank, ", ls DESC, ", kGroupKey, LimitOffset(w, f));
  }
  std::vector<VerdictGroup> out;
  RETURN_IF_ERROR(WithConn([&](Conn& c) {
    return Collect(where_, c.pg, "query verdicts", sql, w.params, out,
                   [](const PGresult* r, int i) {
                     VerdictGroup g;
                     g.count = static_cast<uint64_t>(Int(r, i, 0));
                     g.first_seen_unix_ms = Int(r, i, 1);
                     g.last_seen_unix_ms = Int(r, i, 2);
                     g.sample = ReadRecord(r, i, 3);
                     return g;
                   });
  }));
  return out;
}

absl::StatusOr<std::vector<MatrixRow>> PostgresStore::QueryMatrix(const VerdictFilter& f) {
  RETURN_IF_ERROR(CheckMatrixFilter(f));
  Where w = BuildWhere(f);
  std::string sql;
  if (MatrixFromSummary(f)) {
    sql = absl::StrCat(
        "SELECT sdk, data_type, verdict, total, first_seen_ms, last_seen_ms FROM verdict_matrix",
        w.sql, " ORDER BY sdk, data_type, verdict");
  } else {
    sql = absl::StrCat(
        "SELECT sdk, data_type, verdict, SUM(total), MIN(group_first_ms), MAX(last_seen_ms)"
        " FROM verdict_groups",
        w.sql, " GROUP BY sdk, data_type, verdict ORDER BY sdk, data_type, verdict");
  }
  std::vector<MatrixRow> out;
  RETURN_IF_ERROR(WithConn([&](Conn& c) {
    return Collect(where_, c.pg, "query matrix", sql, w.params, out, [](const PGresult* r, int i) {
      MatrixRow m;
      m.sdk = Text(r, i, 0);
      m.data_type = Text(r, i, 1);
      m.verdict = Text(r, i, 2);
      m.finding = FindingName(FindingOfName(m.verdict));
      m.count = static_cast<uint64_t>(Int(r, i, 3));
      m.first_seen_unix_ms = Int(r, i, 4);
      m.last_seen_unix_ms = Int(r, i, 5);
      return m;
    });
  }));
  return out;
}

absl::StatusOr<std::vector<HistogramRow>> PostgresStore::QueryHistogram(const VerdictFilter& f,
                                                                        int64_t bucket_ms) {
  RETURN_IF_ERROR(CheckHistogramQuery(f, bucket_ms));
  // Since is compared with hour starts: the hour holding it is included.
  Where w = BuildWhere(f, "hour_ms", HourStart(f.since_unix_ms));
  const std::string b = w.Param(absl::StrCat(bucket_ms));
  const std::string sql = absl::StrCat(
      "SELECT hour_ms - ((hour_ms % ", b, ") + ", b, ") % ", b,
      " AS bucket, sdk, verdict, SUM(total) FROM ",
      // Without a device or data-type filter the rollup answers.
      f.device_id.empty() && f.data_type.empty() ? "verdict_hourly_sdk" : "verdict_hourly", w.sql,
      " GROUP BY bucket, sdk, verdict ORDER BY bucket, sdk, verdict");
  std::vector<HistogramRow> out;
  RETURN_IF_ERROR(WithConn([&](Conn& c) {
    return Collect(where_, c.pg, "query histogram", sql, w.params, out,
                   [](const PGresult* r, int i) {
                     HistogramRow h;
                     h.bucket_start_unix_ms = Int(r, i, 0);
                     h.sdk = Text(r, i, 1);
                     h.verdict = Text(r, i, 2);
                     h.finding = FindingName(FindingOfName(h.verdict));
                     h.count = static_cast<uint64_t>(Int(r, i, 3));
                     return h;
                   });
  }));
  return out;
}

absl::StatusOr<std::vector<EventRecord>> PostgresStore::QueryEvents(const VerdictFilter& f) {
  Where w = BuildWhere(f);
  const std::string sql = absl::StrCat("SELECT ", SelectColumns(), " FROM events", w.sql,
                                       " ORDER BY last_seen_ms DESC, id DESC", LimitOffset(w, f));
  std::vector<EventRecord> out;
  RETURN_IF_ERROR(WithConn([&](Conn& c) {
    return Collect(where_, c.pg, "query events", sql, w.params, out,
                   [](const PGresult* r, int i) { return ReadRecord(r, i, 0); });
  }));
  return out;
}

absl::StatusOr<uint64_t> PostgresStore::CountEvents(const VerdictFilter& f) {
  // Stored rows, one per (agent_id, seq); `limit` does not apply to a count.
  Where w = BuildWhere(f);
  uint64_t n = 0;
  RETURN_IF_ERROR(WithConn([&](Conn& c) -> absl::Status {
    ASSIGN_OR_RETURN(ResultPtr r,
                     Exec(where_, c.pg, "count events",
                          absl::StrCat("SELECT count(*) FROM events", w.sql), w.params));
    n = static_cast<uint64_t>(Int(r.get(), 0, 0));
    return absl::OkStatus();
  }));
  return n;
}

}  // namespace idflow::store

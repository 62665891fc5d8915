// SqliteStore::Write against a raw batched SQLite insert of the same rows,
// same durability (WAL, synchronous=FULL, one transaction per batch), same
// events table and indexes. Prints rows/s of each and the ratio.
//
//   build/bin/idflow-bench-sqlite-write [--events N] [--agents A] [--groups G]
//                                       [--batch B] [--ops-per-write K] [--dir DIR] [--keep]
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/store/sqlite_store.h"
#include "collector/store/store.h"

namespace idflow::store {
namespace {

struct Flags {
  size_t events = 200000;
  size_t agents = 16;
  size_t groups = 20;
  size_t batch = 500;
  size_t ops_per_write = 1;
  std::string dir = "/tmp";
  bool keep = false;  // leave the files for inspection (query plans, sizes)
};

// Events as the collector stores them: a call chain, a destination, context,
// a verdict. Batches of `batch` events come from one agent (one device) in
// turn, as streams do; each device's events fall into `groups` verdict
// groups (sdk, data type, verdict, destination, entry).
std::vector<EventRecord> MakeEvents(const Flags& flags) {
  static const char* kSdks[] = {"lebo", "umeng", "onetrack", "yunkong", "mi_fitness"};
  static const char* kTypes[] = {"mac_address", "oaid", "device_id", "bluetooth_address"};
  static const char* kVerdicts[] = {"clear", "omitted", "vague", "no_consent"};
  std::vector<EventRecord> out;
  out.reserve(flags.events);
  const int64_t t0 = 1764460800000;  // 2025-11-30 00:00 UTC
  for (size_t i = 0; i < flags.events; ++i) {
    const size_t b = i / flags.batch;
    const size_t agent = b % flags.agents;
    const size_t g = i % flags.groups;
    EventRecord e;
    e.agent_id = absl::StrCat("agent-", agent);
    e.seq = (b / flags.agents) * flags.batch + i % flags.batch + 1;
    e.device_id = absl::StrCat("hub-", agent);
    e.device_class = "hub";
    e.firmware = "2.3.1";
    e.pid = 4242;
    e.exe = "/opt/app/bin/demo-host";
    e.call_chain = {{"/lib/x86_64-linux-gnu/libc.so.6", "0f3a9c1b"},
                    {"/opt/app/lib/libidm_sdk.so", "77aa01fe"}};
    e.module = "/opt/app/lib/libidm_sdk.so";
    e.module_build_id = "77aa01fe";
    e.sdk = kSdks[g % 5];
    e.sdk_hint = e.sdk;
    e.action = "transmit";
    e.channel = "tls-openssl";
    e.dest_ip = absl::StrCat("10.0.", g % 7, ".", g % 50);
    e.dest_port = 443;
    e.dest_host = absl::StrCat("api", g % 11, ".example.com");
    e.data_type = kTypes[(g / 5) % 4];
    e.instance = "eth0";
    e.encoding = "md5";
    e.digest = absl::StrCat("hmac:", i * 2654435761u % 1000003, "f00dcafe0123456789abcdef");
    e.offset = static_cast<int64_t>(i % 900);
    e.snippet = "POST /v1/report HTTP/1.1\\r\\nmac=<mac_address>&v=2";
    e.scenarios = {"casting"};
    e.consents = {{"user_experience_program", false}};
    e.count = 1 + i % 3;
    e.last_seen_unix_ms = t0 + static_cast<int64_t>(i) * 20;
    e.first_seen_unix_ms = e.last_seen_unix_ms - 1000;
    e.verdict = kVerdicts[(g / 20) % 4];
    e.finding = e.verdict == std::string("clear") ? "clear" : "violation";
    e.statement = "interconnectivity-data-sharing";
    e.statement_version = "v20250508";
    e.entry = absl::StrCat("entry-", g);
    e.explanation = "IDM SDK sent mac_address beyond entry idm-sdk's declared data types.";
    out.push_back(std::move(e));
  }
  return out;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Process CPU seconds (user + system): what a run costs beside waiting for
// fsync.
double CpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// Bytes this process caused to be written to storage (/proc/self/io): the
// I/O side of a run, which a loaded machine does not blur like wall time.
double WrittenBytes() {
  FILE* f = fopen("/proc/self/io", "r");
  if (f == nullptr) return 0;
  char line[128];
  unsigned long long v = 0;
  while (fgets(line, sizeof(line), f) != nullptr) {
    if (sscanf(line, "write_bytes: %llu", &v) == 1) break;
  }
  fclose(f);
  return static_cast<double>(v);
}

struct Timing {
  double wall = 0;
  double cpu = 0;
  double written = 0;
};

void Check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
  }
}

// The baseline: what the rows cost SQLite alone. The schema comes from the
// store (same table, same indexes); values are serialised beforehand, bound
// without copies, one prepared INSERT, one transaction per batch.
Timing RawInsert(const std::string& path, const std::vector<EventRecord>& events, size_t batch) {
  {
    auto s = SqliteStore::Open(path);
    if (!s.ok()) {
      fprintf(stderr, "%s\n", s.status().ToString().c_str());
      exit(1);
    }
  }
  struct Row {
    std::string destination, chain, consents, scenarios;
  };
  std::vector<Row> rows;
  rows.reserve(events.size());
  for (const EventRecord& e : events) {
    std::string chain = "[";
    for (const ModuleRef& m : e.call_chain) {
      absl::StrAppend(&chain, chain.size() > 1 ? "," : "", "{\"build_id\":\"", m.build_id,
                      "\",\"path\":\"", m.path, "\"}");
    }
    chain += "]";
    rows.push_back({e.Destination(), chain, "{\"user_experience_program\":false}", "casting"});
  }
  sqlite3* db = nullptr;
  Check(sqlite3_open(path.c_str(), &db), db, "open");
  Check(sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL", nullptr, nullptr,
                     nullptr),
        db, "pragmas");
  const char* sql =
      "INSERT INTO events (agent_id, seq, device_id, device_class, firmware, pid, exe, module,"
      " module_build_id, sdk, action, channel, dest_ip, dest_port, dest_host, dest_peer_exe,"
      " destination, data_type, instance, encoding, digest, byte_offset, snippet, scenarios,"
      " count, first_seen_ms, last_seen_ms, verdict, statement, statement_version, entry,"
      " explanation, call_chain, sdk_hint, finding, consents_json, run_id) VALUES (?, ?, ?, ?,"
      " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
      " ?, ?, ?)";
  sqlite3_stmt* st = nullptr;
  Check(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), db, "prepare");
  auto text = [&](int i, const std::string& v) {
    sqlite3_bind_text(st, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  };
  const double cpu = CpuSeconds();
  const double written = WrittenBytes();
  auto start = std::chrono::steady_clock::now();
  for (size_t b = 0; b < events.size(); b += batch) {
    Check(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), db, "begin");
    for (size_t k = b; k < std::min(events.size(), b + batch); ++k) {
      const EventRecord& e = events[k];
      const Row& r = rows[k];
      int i = 0;
      text(++i, e.agent_id);
      sqlite3_bind_int64(st, ++i, static_cast<sqlite3_int64>(e.seq));
      text(++i, e.device_id);
      text(++i, e.device_class);
      text(++i, e.firmware);
      sqlite3_bind_int64(st, ++i, e.pid);
      text(++i, e.exe);
      text(++i, e.module);
      text(++i, e.module_build_id);
      text(++i, e.sdk);
      text(++i, e.action);
      text(++i, e.channel);
      text(++i, e.dest_ip);
      sqlite3_bind_int64(st, ++i, e.dest_port);
      text(++i, e.dest_host);
      text(++i, e.dest_peer_exe);
      text(++i, r.destination);
      text(++i, e.data_type);
      text(++i, e.instance);
      text(++i, e.encoding);
      text(++i, e.digest);
      sqlite3_bind_int64(st, ++i, e.offset);
      text(++i, e.snippet);
      text(++i, r.scenarios);
      sqlite3_bind_int64(st, ++i, static_cast<sqlite3_int64>(e.count));
      sqlite3_bind_int64(st, ++i, e.first_seen_unix_ms);
      sqlite3_bind_int64(st, ++i, e.last_seen_unix_ms);
      text(++i, e.verdict);
      text(++i, e.statement);
      text(++i, e.statement_version);
      text(++i, e.entry);
      text(++i, e.explanation);
      text(++i, r.chain);
      text(++i, e.sdk_hint);
      text(++i, e.finding);
      text(++i, r.consents);
      text(++i, e.run_id);
      Check(sqlite3_step(st), db, "insert");
      sqlite3_reset(st);
    }
    Check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
  }
  Timing t{Seconds(start), CpuSeconds() - cpu, WrittenBytes() - written};
  sqlite3_finalize(st);
  sqlite3_close(db);
  return t;
}

Timing StoreWrite(const std::string& path, const std::vector<EventRecord>& events,
                  const Flags& flags) {
  auto s = SqliteStore::Open(path, {.exclusive_writer = true});
  if (!s.ok()) {
    fprintf(stderr, "%s\n", s.status().ToString().c_str());
    exit(1);
  }
  // Ops built beforehand: the collector hands Write batches it already holds.
  std::vector<std::vector<WriteOp>> calls;
  for (size_t b = 0; b < events.size();) {
    std::vector<WriteOp> ops;
    for (size_t k = 0; k < flags.ops_per_write && b < events.size(); ++k, b += flags.batch) {
      WriteOp op;
      op.agent_id = events[b].agent_id;
      op.events.assign(
          events.begin() + static_cast<ptrdiff_t>(b),
          events.begin() + static_cast<ptrdiff_t>(std::min(events.size(), b + flags.batch)));
      ops.push_back(std::move(op));
    }
    calls.push_back(std::move(ops));
  }
  const double cpu = CpuSeconds();
  const double written = WrittenBytes();
  auto start = std::chrono::steady_clock::now();
  for (const auto& ops : calls) {
    auto st = (*s)->Write(ops);
    if (!st.ok()) {
      fprintf(stderr, "%s\n", st.status().ToString().c_str());
      exit(1);
    }
    for (const auto& one : *st) {
      if (!one.ok()) {
        fprintf(stderr, "%s\n", one.ToString().c_str());
        exit(1);
      }
    }
  }
  return {Seconds(start), CpuSeconds() - cpu, WrittenBytes() - written};
}

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--keep") {
      flags.keep = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "%s needs a value\n", k.c_str());
      return 2;
    }
    if (k == "--events")
      flags.events = strtoull(argv[i + 1], nullptr, 10);
    else if (k == "--agents")
      flags.agents = strtoull(argv[i + 1], nullptr, 10);
    else if (k == "--groups")
      flags.groups = strtoull(argv[i + 1], nullptr, 10);
    else if (k == "--batch")
      flags.batch = strtoull(argv[i + 1], nullptr, 10);
    else if (k == "--ops-per-write")
      flags.ops_per_write = strtoull(argv[i + 1], nullptr, 10);
    else if (k == "--dir")
      flags.dir = argv[i + 1];
    else {
      fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (flags.events == 0 || flags.agents == 0 || flags.groups == 0 || flags.batch == 0 ||
      flags.ops_per_write == 0) {
    fprintf(stderr, "--events, --agents, --groups, --batch and --ops-per-write must be positive\n");
    return 2;
  }
  std::string tmpl = flags.dir + "/idflow-bench-sqlite-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    perror("mkdtemp");
    return 1;
  }
  const std::vector<EventRecord> events = MakeEvents(flags);
  const Timing raw = RawInsert(tmpl + "/raw.db", events, flags.batch);
  const Timing store = StoreWrite(tmpl + "/store.db", events, flags);
  if (flags.keep) {
    printf("files kept in %s\n", tmpl.c_str());
  } else {
    std::filesystem::remove_all(tmpl);
  }
  const double n = static_cast<double>(events.size());
  printf("events %zu, agents %zu, groups per agent %zu, batch %zu, ops per Write %zu, dir %s\n",
         events.size(), flags.agents, flags.groups, flags.batch, flags.ops_per_write,
         flags.dir.c_str());
  printf("raw insert          %10.0f rows/s  (%.2f s, %.2f s CPU, %.0f bytes written/row)\n",
         n / raw.wall, raw.wall, raw.cpu, raw.written / n);
  printf("SqliteStore::Write  %10.0f rows/s  (%.2f s, %.2f s CPU, %.0f bytes written/row)\n",
         n / store.wall, store.wall, store.cpu, store.written / n);
  printf("ratio Write/raw     %10.2f  (CPU per row: %.2f x raw)\n", raw.wall / store.wall,
         store.cpu / raw.cpu);
  return 0;
}

}  // namespace
}  // namespace idflow::store

int main(int argc, char** argv) { return idflow::store::Main(argc, argv); }

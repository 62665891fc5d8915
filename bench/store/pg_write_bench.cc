// PostgresStore::Write against a bare COPY of the same rows into a plain
// table, same server (fsync on), one commit per batch, the two alternating
// batch by batch. See README.md.
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/store/postgres_store.h"
#include "tests/testing/postgres_server.h"

namespace idflow::store {
namespace {

struct Flags {
  size_t events = 200000;
  size_t agents = 16;
  size_t groups = 40;  // verdict groups per device
  size_t batch = 500;
};

// Batches of `batch` contiguous events of one agent in turn, as streams
// deliver them; per device `groups` distinct verdict groups.
std::vector<std::vector<EventRecord>> Batches(const Flags& f) {
  static const char* kSdk[] = {"lebo", "onetrack", "yunkong", "idm", "mi_fitness"};
  static const char* kType[] = {"mac_address", "oaid", "device_id", "bluetooth_address"};
  static const char* kVerdict[] = {"clear", "omitted", "local_acquisition", "no_consent"};
  std::vector<std::vector<EventRecord>> out;
  std::vector<uint64_t> next_seq(f.agents, 1);
  const int64_t t0 = 1796083200000;  // 2026-12-01 00:00 UTC
  for (size_t i = 0; i < f.events; ++i) {
    if (i % f.batch == 0) out.emplace_back();
    const size_t a = (i / f.batch) % f.agents;
    const size_t g = (i * 7919) % f.groups;
    EventRecord e;
    e.agent_id = absl::StrCat("agent-", a);
    e.seq = next_seq[a]++;
    e.device_id = absl::StrCat("tv-", a);
    e.device_class = "tv";
    e.firmware = absl::StrCat("5.", a % 3);
    e.pid = 1000 + static_cast<int64_t>(a);
    e.exe = "/system/app/launcher";
    e.call_chain = {{"/system/lib64/libc.so", "c0ffee01"}, {"/data/app/lib/libsdk.so", "5dk0001"}};
    e.module = "/data/app/lib/libsdk.so";
    e.module_build_id = "5dk0001";
    e.sdk = kSdk[g % 5];
    e.action = "transmit";
    e.channel = "tls-openssl";
    e.dest_host = absl::StrCat("collect", g % 9, ".example.net");
    e.dest_port = 443;
    e.data_type = kType[g % 4];
    e.encoding = g % 2 ? "md5" : "raw";
    e.digest = absl::StrCat("hmac-", i % 100003, "-0123456789abcdef0123456789abcdef");
    e.offset = static_cast<int64_t>(i % 512);
    e.snippet = "GET /t?id=<device_id>&ts=1 HTTP/1.1";
    e.scenarios = {"app_features"};
    e.consents = {{"analytics", g % 3 == 0}};
    e.count = 1;
    e.last_seen_unix_ms = t0 + static_cast<int64_t>(i) * 5;  // 200k rows span ~17 min
    e.first_seen_unix_ms = e.last_seen_unix_ms;
    e.verdict = kVerdict[(g / 5) % 4];
    e.finding = g % 4 == 0 ? "clear" : "violation";
    e.statement = "data-sharing";
    e.statement_version = "v1";
    e.entry = absl::StrCat("entry-", g % 10);
    e.explanation = "declared data types do not include the one observed";
    out.back().push_back(std::move(e));
  }
  return out;
}

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "%s\n", what.c_str());
  exit(1);
}

void Run(PGconn* pg, const std::string& sql) {
  PGresult* r = PQexec(pg, sql.c_str());
  if (PQresultStatus(r) != PGRES_COMMAND_OK) Die(absl::StrCat(sql, ": ", PQerrorMessage(pg)));
  PQclear(r);
}

// The baseline: COPY of one batch into a plain table, one commit.
void RawCopy(PGconn* pg, const std::vector<EventRecord>& batch) {
  static const std::string copy =
      absl::StrCat("COPY raw_events (", PostgresStore::CopyColumns(), ") FROM STDIN");
  const std::string rows = PostgresStore::CopyRows(batch);
  Run(pg, "BEGIN");
  PGresult* r = PQexec(pg, copy.c_str());
  if (PQresultStatus(r) != PGRES_COPY_IN) Die(PQerrorMessage(pg));
  PQclear(r);
  if (PQputCopyData(pg, rows.data(), static_cast<int>(rows.size())) != 1 ||
      PQputCopyEnd(pg, nullptr) != 1) {
    Die(PQerrorMessage(pg));
  }
  while ((r = PQgetResult(pg)) != nullptr) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK) Die(PQerrorMessage(pg));
    PQclear(r);
  }
  Run(pg, "COMMIT");
}

// The alternative bulk path: one multi-row INSERT of the batch (text
// parameters), one commit.
void RawInsert(PGconn* pg, const std::vector<EventRecord>& batch) {
  const std::vector<std::string> params = PostgresStore::InsertParams(batch);
  const size_t per_row = params.size() / batch.size();
  std::string sql =
      absl::StrCat("INSERT INTO raw_inserted (", PostgresStore::CopyColumns(), ") VALUES ");
  for (size_t r = 0; r < batch.size(); ++r) {
    sql += r ? ",(" : "(";
    for (size_t c = 0; c < per_row; ++c) absl::StrAppend(&sql, c ? ",$" : "$", r * per_row + c + 1);
    sql += ")";
  }
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  Run(pg, "BEGIN");
  PGresult* r = PQexecParams(pg, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) Die(PQerrorMessage(pg));
  PQclear(r);
  Run(pg, "COMMIT");
}

void StoreWrite(PostgresStore& store, const std::vector<EventRecord>& batch) {
  WriteOp op;
  op.agent_id = batch.front().agent_id;
  op.events = batch;
  auto st = store.Write({op});
  if (!st.ok()) Die(st.status().ToString());
  if (!(*st)[0].ok()) Die((*st)[0].ToString());
}

int Main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    size_t v = strtoull(argv[i + 1], nullptr, 10);
    if (!strcmp(argv[i], "--events"))
      f.events = v;
    else if (!strcmp(argv[i], "--agents"))
      f.agents = v;
    else if (!strcmp(argv[i], "--groups"))
      f.groups = v;
    else if (!strcmp(argv[i], "--batch"))
      f.batch = v;
    else
      Die(absl::StrCat("unknown flag ", argv[i]));
  }
  if (f.events == 0 || f.agents == 0 || f.groups == 0 || f.batch == 0) Die("flags must be > 0");
  testing::PostgresServerOptions options;
  options.fsync = true;
  auto server = testing::PostgresServer::Start(options);
  if (!server.ok()) Die(server.status().ToString());
  const auto batches = Batches(f);
  // Separate databases: the baseline's table shares nothing with the store.
  for (const char* db : {"raw", "store"}) {
    absl::Status st = (*server)->CreateDatabase(db);
    if (!st.ok()) Die(st.ToString());
  }
  auto raw_store = PostgresStore::Open((*server)->Url("raw"));  // the events schema
  if (!raw_store.ok()) Die(raw_store.status().ToString());
  raw_store->reset();
  PGconn* pg = PQconnectdb(
      absl::StrCat("host=127.0.0.1 port=", (*server)->port(), " user=postgres dbname=raw").c_str());
  if (PQstatus(pg) != CONNECTION_OK) Die(PQerrorMessage(pg));
  Run(pg, "CREATE TABLE raw_events AS SELECT * FROM events WITH NO DATA");
  Run(pg, "CREATE TABLE raw_inserted AS SELECT * FROM events WITH NO DATA");
  auto store = PostgresStore::Open((*server)->Url("store"));
  if (!store.ok()) Die(store.status().ToString());
  // Batches alternate between the two, so that both see the same load on
  // the machine; each side's time is summed.
  double raw = 0, insert = 0, write = 0;
  for (const auto& batch : batches) {
    auto t = std::chrono::steady_clock::now();
    RawCopy(pg, batch);
    raw += Since(t);
    t = std::chrono::steady_clock::now();
    RawInsert(pg, batch);
    insert += Since(t);
    t = std::chrono::steady_clock::now();
    StoreWrite(**store, batch);
    write += Since(t);
  }
  PQfinish(pg);
  const double n = static_cast<double>(f.events);
  printf("events %zu, agents %zu, groups/device %zu, batch %zu, fsync on\n", f.events, f.agents,
         f.groups, f.batch);
  printf("raw COPY:              %9.0f rows/s (%.2f s)\n", n / raw, raw);
  printf("raw multi-row INSERT:  %9.0f rows/s (%.2f s)\n", n / insert, insert);
  printf("PostgresStore::Write:  %9.0f rows/s (%.2f s)\n", n / write, write);
  printf("ratio Write / raw:     %9.2f (target >= 0.30)\n", raw / write);
  return 0;
}

}  // namespace
}  // namespace idflow::store

int main(int argc, char** argv) { return idflow::store::Main(argc, argv); }

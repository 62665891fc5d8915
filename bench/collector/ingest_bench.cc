// End-to-end ingest: sustained events/s from the agent's durable spool and
// sender through the collector into SQLite, the same from an independent
// gRPC client, the raw batched SQLite insert of the same rows, and the
// send -> queryable latency at a steady 1,000 events/s. One process: the
// collector is in-process behind real loopback gRPC, the agent side is the
// real Spool (fdatasync group commit, 200 ms) and Sender fed by a driver
// thread with synthetic events (the tap and ingress are not in this path).
//
//   build/bin/idflow-bench-ingest [--seconds 20] [--dir /tmp] [--streams 4]
//       [--batch 500] [--agent-batch 256] [--raw-rows 1000000] [--rate 1000]
//       [--only raw,agent,grpc,latency] [--postgres 1]
//
// --postgres 1: the collector rows run on the PostgreSQL store instead, a
// private server (fsync on) with a fresh database per row; the raw insert
// stays SQLite's.
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/sender.h"
#include "agent/spool.h"
#include "collector/collector.h"
#include "collector/convert.h"
#include "collector/store/sqlite_store.h"
#include "idflow/v1/ingest.grpc.pb.h"
#include "tests/testing/postgres_server.h"

namespace idflow {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  int seconds = 20;
  std::string dir = "/tmp";
  int streams = 4;
  int batch = 500;        // the independent client's batch
  int agent_batch = 256;  // the agent's default batch_events
  size_t raw_rows = 1000000;
  int rate = 1000;
  std::string only = "raw,agent,grpc,latency";
  bool postgres = false;
};

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "idflow-bench-ingest: %s\n", what.c_str());
  exit(1);
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FreshDir(const Flags& f, const std::string& what) {
  std::string d = absl::StrCat(f.dir, "/idflow-bench-ingest-", what, "-", getpid());
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// Events as agents send them: four SDKs of the shipped policies, three
// identifier kinds, fifty destinations, a fresh digest each, so verdicts
// differ (clear and violations) and verdict groups are many.
idflow::v1::Event SampleEvent(uint64_t i) {
  static const char* kSdks[] = {"libidm_sdk.so", "liblebo_sdk.so", "libonetrack_sdk.so",
                                "libyunkong_sdk.so"};
  static const char* kHosts[] = {"idm.discovery.mi.com", "cast.hpplay.com.cn",
                                 "tracking.xiaomi.net", "collect.adnet.example"};
  static const char* kKinds[] = {"mac_address", "oaid", "device_id"};
  idflow::v1::Event e;
  e.mutable_device()->set_id("hub-0042");
  e.mutable_device()->set_class_("hub");
  e.mutable_device()->set_firmware("2.3.1");
  e.mutable_origin()->set_pid(4242);
  e.mutable_origin()->set_exe("/opt/app/bin/demo-host");
  e.mutable_origin()->add_call_chain()->set_path("/lib/x86_64-linux-gnu/libc.so.6");
  e.mutable_origin()->add_call_chain()->set_path(absl::StrCat("/opt/app/lib/", kSdks[i % 4]));
  e.set_action(idflow::v1::ACTION_TRANSMIT);
  e.set_channel("tcp");
  e.mutable_destination()->set_ip(absl::StrCat("10.0.0.", i % 50));
  e.mutable_destination()->set_port(443);
  e.mutable_destination()->set_hostname(kHosts[(i / 4) % 4]);
  e.mutable_identifier()->set_kind(kKinds[i % 3]);
  e.mutable_identifier()->set_encoding("raw");
  e.mutable_identifier()->set_digest(absl::StrCat(std::string(48, 'd'), 1000000000000000 + i));
  e.mutable_identifier()->set_snippet("mac=[REDACTED:mac_address]&v=1");
  e.mutable_context()->add_scenarios("device_discovery");
  (*e.mutable_context()->mutable_consents())["user_experience_program"] = true;
  e.set_count(1);
  e.set_first_seen_unix_ms(NowMs());
  e.set_last_seen_unix_ms(e.first_seen_unix_ms());
  return e;
}

testing::PostgresServer* postgres = nullptr;  // --postgres: started once

const char* StoreName() { return postgres != nullptr ? "PostgreSQL" : "SQLite"; }

// A collector on `db` (SQLite), or on a fresh PostgreSQL database.
std::unique_ptr<collector::Collector> StartCollector(const std::string& db) {
  collector::CollectorOptions o;
  o.listen = "127.0.0.1:0";
  o.store_url = "sqlite:" + db;
  if (postgres != nullptr) {
    auto url = postgres->CreateFreshDatabase("ingest");
    if (!url.ok()) Die(url.status().ToString());
    o.store_url = *url;
  }
  o.policies_dir = std::string(IDFLOW_SOURCE_DIR) + "/policies";
  auto c = collector::Collector::Start(o);
  if (!c.ok()) Die(c.status().ToString());
  return std::move(*c);
}

std::string Address(collector::Collector& c) { return absl::StrCat("127.0.0.1:", c.grpc_port()); }

struct Row {
  std::string what;
  double events_per_s = 0;
  double cpu_per_event_us = 0;
  std::string note;
};

std::string PipelineNote(collector::Collector& c) {
  auto& n = c.counters();
  uint64_t commits = std::max<uint64_t>(1, n.commits.load());
  const uint64_t events = std::max<uint64_t>(1, n.events.load());
  return absl::StrCat(n.commit_ops.load() / static_cast<double>(commits), " batches/commit, ",
                      n.events.load() / commits, " events/commit, mean commit ",
                      n.commit_us.load() / commits / 1000.0, " ms, store writes busy ",
                      n.commit_us.load() / 1e6, " s (committer CPU ",
                      static_cast<double>(n.commit_cpu_us.load()) / events,
                      " us/event), back-pressure ", n.backpressure_us.load() / 1e6, " stream-s");
}

// (b) The rows the collector stores (converted and judged exactly as it
// does), inserted by plain SQLite into the store's own events table and
// indexes: WAL, synchronous=FULL, one prepared INSERT, one transaction per
// 500 rows. Columns are bound by name, so the baseline follows the schema.
Row RawInsert(const Flags& f) {
  std::string dir = FreshDir(f, "raw");
  const std::string path = dir + "/raw.db";
  {
    auto s = store::SqliteStore::Open(path);
    if (!s.ok()) Die(s.status().ToString());
  }
  auto policy = policy::LoadPolicyDir(std::string(IDFLOW_SOURCE_DIR) + "/policies");
  if (!policy.ok()) Die(policy.status().ToString());
  std::vector<store::EventRecord> rows;
  rows.reserve(f.raw_rows);
  for (size_t i = 0; i < f.raw_rows; ++i) {
    store::EventRecord r = collector::ToRecord(SampleEvent(i));
    r.agent_id = absl::StrCat("agent-", (i / 500) % f.streams);
    r.seq = i + 1;
    collector::JudgeEvent(*policy, &r);
    rows.push_back(std::move(r));
  }
  using Value = std::variant<int64_t, std::string>;
  auto column = [](const store::EventRecord& row, const std::string& name) -> Value {
    static const std::map<std::string, std::function<Value(const store::EventRecord&)>> kColumns = {
        {"agent_id", [](auto& e) { return Value(e.agent_id); }},
        {"seq", [](auto& e) { return Value(static_cast<int64_t>(e.seq)); }},
        {"device_id", [](auto& e) { return Value(e.device_id); }},
        {"device_class", [](auto& e) { return Value(e.device_class); }},
        {"firmware", [](auto& e) { return Value(e.firmware); }},
        {"pid", [](auto& e) { return Value(e.pid); }},
        {"exe", [](auto& e) { return Value(e.exe); }},
        {"module", [](auto& e) { return Value(e.module); }},
        {"module_build_id", [](auto& e) { return Value(e.module_build_id); }},
        {"sdk", [](auto& e) { return Value(e.sdk); }},
        {"sdk_hint", [](auto& e) { return Value(e.sdk_hint); }},
        {"action", [](auto& e) { return Value(e.action); }},
        {"channel", [](auto& e) { return Value(e.channel); }},
        {"dest_ip", [](auto& e) { return Value(e.dest_ip); }},
        {"dest_port", [](auto& e) { return Value(static_cast<int64_t>(e.dest_port)); }},
        {"dest_host", [](auto& e) { return Value(e.dest_host); }},
        {"destination", [](auto& e) { return Value(e.Destination()); }},
        {"data_type", [](auto& e) { return Value(e.data_type); }},
        {"instance", [](auto& e) { return Value(e.instance); }},
        {"encoding", [](auto& e) { return Value(e.encoding); }},
        {"digest", [](auto& e) { return Value(e.digest); }},
        {"byte_offset", [](auto& e) { return Value(e.offset); }},
        {"snippet", [](auto& e) { return Value(e.snippet); }},
        {"scenarios", [](auto& e) { return Value(absl::StrJoin(e.scenarios, ",")); }},
        {"consents_json", [](auto&) { return Value("{\"user_experience_program\":true}"); }},
        {"count", [](auto& e) { return Value(static_cast<int64_t>(e.count)); }},
        {"first_seen_ms", [](auto& e) { return Value(e.first_seen_unix_ms); }},
        {"last_seen_ms", [](auto& e) { return Value(e.last_seen_unix_ms); }},
        {"verdict", [](auto& e) { return Value(e.verdict); }},
        {"finding", [](auto& e) { return Value(e.finding); }},
        {"statement", [](auto& e) { return Value(e.statement); }},
        {"statement_version", [](auto& e) { return Value(e.statement_version); }},
        {"entry", [](auto& e) { return Value(e.entry); }},
        {"explanation", [](auto& e) { return Value(e.explanation); }},
        {"call_chain",
         [](auto& e) {
           std::string out = "[";
           for (const auto& m : e.call_chain) {
             absl::StrAppend(&out, out.size() > 1 ? "," : "", "{\"path\":\"", m.path, "\"}");
           }
           return Value(out + "]");
         }},
        {"run_id", [](auto& e) { return Value(e.run_id); }}};
    auto it = kColumns.find(name);
    return it == kColumns.end() ? Value(int64_t{0}) : it->second(row);
  };
  sqlite3* db = nullptr;
  auto check = [&](int rc, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
      Die(absl::StrCat(what, ": ", sqlite3_errmsg(db)));
    }
  };
  check(sqlite3_open(path.c_str(), &db), "open");
  check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", nullptr, nullptr,
                     nullptr),
        "pragmas");
  // The columns the store writes (those with a value above); the rest keep
  // their defaults.
  std::vector<std::string> names;
  {
    sqlite3_stmt* info = nullptr;
    check(sqlite3_prepare_v2(db, "PRAGMA table_info(events)", -1, &info, nullptr), "table_info");
    while (sqlite3_step(info) == SQLITE_ROW) {
      std::string name = reinterpret_cast<const char*>(sqlite3_column_text(info, 1));
      if (name != "id" && name != "consents" && !absl::StartsWith(name, "cookie_")) {
        names.push_back(name);
      }
    }
    sqlite3_finalize(info);
  }
  std::string sql =
      absl::StrCat("INSERT INTO events (", absl::StrJoin(names, ","), ") VALUES (",
                   absl::StrJoin(std::vector<std::string>(names.size(), "?"), ","), ")");
  // Values are prepared beforehand: the baseline times SQLite alone.
  std::vector<std::vector<Value>> values;
  values.reserve(rows.size());
  for (const auto& r : rows) {
    std::vector<Value> v;
    for (const auto& n : names) v.push_back(column(r, n));
    values.push_back(std::move(v));
  }
  sqlite3_stmt* insert = nullptr;
  check(sqlite3_prepare_v2(db, sql.c_str(), -1, &insert, nullptr), "prepare");
  const double cpu0 = CpuSeconds();
  const auto t0 = Clock::now();
  for (size_t b = 0; b < values.size(); b += 500) {
    check(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), "begin");
    for (size_t k = b; k < std::min(values.size(), b + 500); ++k) {
      for (size_t c = 0; c < names.size(); ++c) {
        const Value& v = values[k][c];
        if (const auto* s = std::get_if<std::string>(&v)) {
          sqlite3_bind_text(insert, c + 1, s->data(), static_cast<int>(s->size()), SQLITE_STATIC);
        } else {
          sqlite3_bind_int64(insert, c + 1, std::get<int64_t>(v));
        }
      }
      check(sqlite3_step(insert), "insert");
      sqlite3_reset(insert);
    }
    check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), "commit");
  }
  const double wall = Seconds(Clock::now() - t0);
  const double cpu = CpuSeconds() - cpu0;
  sqlite3_finalize(insert);
  sqlite3_close(db);
  std::filesystem::remove_all(dir);
  return {"raw SQLite insert, same rows (WAL, synchronous=FULL, 500 rows/txn)", rows.size() / wall,
          cpu / rows.size() * 1e6,
          absl::StrCat(rows.size(), " rows in ", wall, " s, ", names.size(),
                       " columns, the process using ", cpu / wall, " cores")};
}

// The agent side: a real Spool (fdatasync every 200 ms) and Sender, fed by a
// driver thread that appends `chunk` synthetic events at a time.
struct AgentSide {
  std::unique_ptr<agent::Spool> spool;
  std::unique_ptr<agent::Sender> sender;

  AgentSide(const std::string& dir, const std::string& address, int batch_events) {
    agent::SpoolOptions so;
    so.dir = dir + "/spool";
    so.max_bytes = 4ull << 30;
    auto s = agent::Spool::Open(so);
    if (!s.ok()) Die(s.status().ToString());
    spool = std::move(*s);
    agent::SenderOptions o;
    o.collectors = {address};
    o.batch_events = batch_events;
    o.device.set_id("hub-0042");
    sender = std::make_unique<agent::Sender>(o, spool.get());
    sender->Start();
  }
  ~AgentSide() { sender->Stop(); }

  uint64_t Append(uint64_t first_index, int n) {
    std::vector<idflow::v1::Event> events;
    events.reserve(n);
    for (int i = 0; i < n; ++i) events.push_back(SampleEvent(first_index + i));
    if (absl::Status st = spool->Append(&events); !st.ok()) Die(st.ToString());
    uint64_t last = spool->last_seq();
    sender->Notify(last);
    return last;
  }
};

// Runs `feed` on its own thread while measuring what the collector commits:
// events/s over `seconds` after a 2 s warm-up.
Row Sustained(const Flags& f, const std::string& what, collector::Collector& c,
              const std::function<void(const std::atomic<bool>& stop)>& feed) {
  std::atomic<bool> stop{false};
  std::thread feeder([&] { feed(stop); });
  std::this_thread::sleep_for(std::chrono::seconds(2));  // warm-up, not correctness
  const uint64_t e0 = c.counters().events.load();
  const double cpu0 = CpuSeconds();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(f.seconds));
  const uint64_t e1 = c.counters().events.load();
  const double wall = Seconds(Clock::now() - t0);
  const double cpu = CpuSeconds() - cpu0;
  stop = true;
  feeder.join();
  return {what, (e1 - e0) / wall, cpu / std::max<uint64_t>(1, e1 - e0) * 1e6,
          absl::StrCat(e1 - e0, " events committed in ", wall, " s, the process using ", cpu / wall,
                       " cores; ", PipelineNote(c))};
}

// (a) agent -> collector -> SQLite.
Row AgentPath(const Flags& f) {
  std::string dir = FreshDir(f, "agent");
  auto c = StartCollector(dir + "/idflow.db");
  Row row;
  {
    AgentSide agent(dir, Address(*c), f.agent_batch);
    row = Sustained(f,
                    absl::StrCat("agent spool (fdatasync 200 ms) + sender -> collector -> ",
                                 StoreName(), ", batch ", f.agent_batch),
                    *c, [&](const std::atomic<bool>& stop) {
                      uint64_t i = 0;
                      while (!stop) {
                        // Keep the spool at most 100k events ahead of the collector.
                        if (agent.spool->last_seq() > agent.sender->stats().acked + 100000) {
                          std::this_thread::sleep_for(std::chrono::milliseconds(1));
                          continue;
                        }
                        agent.Append(i, 256);
                        i += 256;
                      }
                    });
  }
  c.reset();
  std::filesystem::remove_all(dir);
  return row;
}

// (a') An independent gRPC client: `streams` agents, each writing batches as
// fast as flow control lets it, acks read on a thread of their own.
Row GrpcClient(const Flags& f) {
  std::string dir = FreshDir(f, "grpc");
  auto c = StartCollector(dir + "/idflow.db");
  const std::string address = Address(*c);
  Row row = Sustained(f,
                      absl::StrCat("independent gRPC client -> collector -> ", StoreName(), ", ",
                                   f.streams, " streams, batch ", f.batch),
                      *c, [&](const std::atomic<bool>& stop) {
                        std::vector<std::thread> streams;
                        for (int s = 0; s < f.streams; ++s) {
                          streams.emplace_back([&, s] {
                            auto stub = idflow::v1::Ingest::NewStub(
                                grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
                            grpc::ClientContext ctx;
                            auto stream = stub->Stream(&ctx);
                            const std::string agent = absl::StrCat("bench-agent-", s);
                            idflow::v1::AgentMessage hello;
                            hello.mutable_hello()->set_agent_id(agent);
                            hello.mutable_hello()->mutable_device()->set_id("hub-0042");
                            stream->Write(hello);
                            idflow::v1::CollectorMessage reply;
                            if (!stream->Read(&reply)) Die("no hello ack");
                            std::thread reader([&] {
                              idflow::v1::CollectorMessage m;
                              while (stream->Read(&m)) {
                              }
                            });
                            idflow::v1::AgentMessage batch;
                            for (int i = 0; i < f.batch; ++i) {
                              *batch.mutable_batch()->add_events() = SampleEvent(s * 7919 + i);
                            }
                            uint64_t seq = 0;
                            while (!stop) {
                              for (auto& e : *batch.mutable_batch()->mutable_events())
                                e.set_seq(++seq);
                              if (!stream->Write(batch)) break;
                            }
                            stream->WritesDone();
                            reader.join();
                            stream->Finish();
                          });
                        }
                        for (auto& t : streams) t.join();
                      });
  c.reset();
  std::filesystem::remove_all(dir);
  return row;
}

// (c) Send -> queryable: events handed to the agent's spool at `rate`/s, one
// at a time; each is timed until the store's LastSeq for the agent covers it
// (what Query.Count and the dashboard then see), polled every 1 ms.
std::string Latency(const Flags& f) {
  std::string dir = FreshDir(f, "latency");
  auto c = StartCollector(dir + "/idflow.db");
  std::vector<double> ms;
  uint64_t longest_commit_us = 0;  // sampled every poll
  {
    AgentSide agent(dir, Address(*c), f.agent_batch);
    const std::string agent_id = agent.spool->agent_id();
    const size_t total = static_cast<size_t>(f.rate) * f.seconds;
    std::vector<Clock::time_point> handed(total + 1);
    std::atomic<uint64_t> appended{0};
    std::thread feeder([&] {
      const auto period = std::chrono::nanoseconds(1000000000LL / f.rate);
      auto next = Clock::now();
      for (size_t i = 1; i <= total; ++i) {
        std::this_thread::sleep_until(next);
        next += period;
        handed[i] = Clock::now();
        uint64_t seq = agent.Append(i, 1);
        if (seq != i) Die("unexpected seq");
        appended = i;
      }
    });
    uint64_t visible = 0;
    while (visible < total) {
      longest_commit_us = std::max<uint64_t>(longest_commit_us, c->counters().last_commit_us);
      auto last = c->store().LastSeq(agent_id);
      if (!last.ok()) Die(last.status().ToString());
      const auto now = Clock::now();
      for (uint64_t s = visible + 1; s <= std::min<uint64_t>(*last, appended.load()); ++s) {
        ms.push_back(Seconds(now - handed[s]) * 1000);
      }
      visible = std::max(visible, std::min<uint64_t>(*last, appended.load()));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    feeder.join();
  }
  c.reset();
  std::filesystem::remove_all(dir);
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * ms.size()))]; };
  return absl::StrCat("| send -> queryable at ", f.rate, " events/s for ", f.seconds, " s (",
                      ms.size(), " events) | p50 ", pct(0.50), " ms | p99 ", pct(0.99),
                      " ms | max ", ms.back(), " ms | longest commit seen ",
                      longest_commit_us / 1000.0,
                      " ms | target p99 <= 250 ms: ", pct(0.99) <= 250 ? "met" : "missed", " |");
}

Flags Parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    bool ok = true;
    if (k == "--seconds")
      ok = absl::SimpleAtoi(v, &f.seconds);
    else if (k == "--dir")
      f.dir = v;
    else if (k == "--streams")
      ok = absl::SimpleAtoi(v, &f.streams);
    else if (k == "--batch")
      ok = absl::SimpleAtoi(v, &f.batch);
    else if (k == "--agent-batch")
      ok = absl::SimpleAtoi(v, &f.agent_batch);
    else if (k == "--raw-rows")
      ok = absl::SimpleAtoi(v, &f.raw_rows);
    else if (k == "--rate")
      ok = absl::SimpleAtoi(v, &f.rate);
    else if (k == "--only")
      f.only = v;
    else if (k == "--postgres")
      f.postgres = v == "1";
    else
      ok = false;
    if (!ok) Die(absl::StrCat("bad flag ", k, " ", v));
  }
  if ((argc - 1) % 2 != 0) Die("flags come in pairs: --name value");
  return f;
}

}  // namespace
}  // namespace idflow

int main(int argc, char** argv) {
  using namespace idflow;
  Flags f = Parse(argc, argv);
  std::unique_ptr<testing::PostgresServer> server;
  if (f.postgres) {
    testing::PostgresServerOptions po;
    po.fsync = true;  // real durability, as the SQLite rows have
    auto s = testing::PostgresServer::Start(po);
    if (!s.ok()) Die(s.status().ToString());
    server = std::move(*s);
    postgres = server.get();
  }
  auto wanted = [&](const char* what) { return absl::StrContains(f.only, what); };
  std::vector<Row> rows;
  if (wanted("raw")) rows.push_back(RawInsert(f));
  if (wanted("agent")) rows.push_back(AgentPath(f));
  if (wanted("grpc")) rows.push_back(GrpcClient(f));
  printf("| path | events/s | CPU us/event (whole process) | notes |\n|---|---|---|---|\n");
  for (const Row& r : rows) {
    printf("| %s | %.0f | %.1f | %s |\n", r.what.c_str(), r.events_per_s, r.cpu_per_event_us,
           r.note.c_str());
  }
  if (!rows.empty() && wanted("raw")) {
    for (size_t i = 1; i < rows.size(); ++i) {
      printf("\n%s: %.2fx the raw insert (target >= 0.5x: %s); target >= 200k events/s: %s\n",
             rows[i].what.c_str(), rows[i].events_per_s / rows[0].events_per_s,
             rows[i].events_per_s >= 0.5 * rows[0].events_per_s ? "met" : "missed",
             rows[i].events_per_s >= 200000 ? "met" : "missed");
    }
  }
  if (wanted("latency")) printf("\n%s\n", Latency(f).c_str());
  postgres = nullptr;
  return 0;
}

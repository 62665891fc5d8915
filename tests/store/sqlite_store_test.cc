// Component tests of the SQLite store on real files in a temporary directory.
#include "collector/store/sqlite_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/store/store.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::store {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// status_matchers.h has no IsOkAndHolds yet; local until it does.
MATCHER_P(IsOkAndHolds, m, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status: " << arg.status().ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(m, *arg, result_listener);
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "idflow_store_XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

EventRecord MakeEvent(const std::string& agent, uint64_t seq) {
  EventRecord e;
  e.agent_id = agent;
  e.seq = seq;
  e.device_id = "dev-1";
  e.device_class = "tv";
  e.firmware = "1.2.3";
  e.pid = 4242;
  e.exe = "/system/app/video";
  e.call_chain = {{"/lib/libc.so.6", ""}, {"/system/lib/libhpplay.so", "abcdef"}};
  e.module = "/system/lib/libhpplay.so";
  e.module_build_id = "abcdef";
  e.sdk = "lebo";
  e.sdk_hint = "claimed-by-agent";
  e.action = "transmit";
  e.channel = "tcp";
  e.dest_ip = "203.0.113.7";
  e.dest_port = 443;
  e.dest_host = "api.hpplay.com.cn";
  e.data_type = "mac_address";
  e.instance = "eth0";
  e.encoding = "md5";
  e.digest = absl::StrCat("d", seq);
  e.offset = 17;
  e.snippet = "mac=<mac_address>";
  e.scenarios = {"screen_cast"};
  e.consents = {{"privacy", true}, {"ux", false}};
  e.count = 1;
  e.first_seen_unix_ms = 1000 + static_cast<int64_t>(seq);
  e.last_seen_unix_ms = 2000 + static_cast<int64_t>(seq);
  e.verdict = "clear";
  e.finding = "clear";
  e.statement = "lebo-sdk";
  e.statement_version = "2024-01";
  e.entry = "lebo-1";
  e.explanation = absl::StrCat("declared (", seq, ")");
  e.run_id = seq % 2 == 0 ? "run-even" : "";
  return e;
}

std::unique_ptr<SqliteStore> OpenOrDie(const std::string& path) {
  auto s = SqliteStore::Open(path);
  EXPECT_THAT(s, IsOk());
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(DestinationTest, PrefersHostThenAddressThenPeer) {
  EventRecord e;
  EXPECT_EQ(e.Destination(), "");
  e.dest_peer_exe = "/usr/bin/peer";
  EXPECT_EQ(e.Destination(), "/usr/bin/peer");
  e.dest_ip = "10.0.0.1";
  e.dest_port = 80;
  EXPECT_EQ(e.Destination(), "10.0.0.1:80");
  e.dest_ip = "2001:db8::1";
  EXPECT_EQ(e.Destination(), "[2001:db8::1]:80");
  e.dest_host = "example.com";
  EXPECT_EQ(e.Destination(), "example.com");
}

TEST(ListEncodingTest, RoundTripsExactly) {
  const std::vector<std::vector<std::string>> cases = {
      {}, {""}, {"", ""}, {"a"}, {"a,b", "c\\"}, {"\\,", ",", "\\"}, {"x=true", "y=false"}};
  for (const auto& c : cases) {
    if (c.empty()) continue;  // empty lists are stored as NULL, not encoded
    EXPECT_EQ(DecodeList(EncodeList(c)), c) << EncodeList(c);
  }
}

TEST(OpenStoreTest, Urls) {
  TempDir dir;
  EXPECT_THAT(OpenStore(absl::StrCat("sqlite:", dir.File("a.db"))), IsOk());
  EXPECT_THAT(OpenStore(dir.File("b.db")), IsOk());
  EXPECT_THAT(OpenStore(absl::StrCat("sqlite://", dir.File("c.db"))), IsOk());
  EXPECT_TRUE(std::filesystem::exists(dir.File("c.db")));
  auto pg = OpenStore("postgresql://user:secret@db/idflow");
  EXPECT_THAT(pg, StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(pg.status().message(), HasSubstr("PostgreSQL"));
  EXPECT_THAT(pg.status().message(), ::testing::Not(HasSubstr("secret")));
  EXPECT_THAT(OpenStore("postgres://db/idflow"), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(OpenStore("mysql://db/idflow"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OpenStore(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OpenStore("sqlite:"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SqliteStoreTest, FreshFileHasSchemaAndWal) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  EXPECT_THAT(s->SchemaVersion(), IsOkAndHolds(SqliteStore::kSchemaVersion));
  // Verify the durability settings through an independent connection.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("s.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// `idflowctl report --run-id` and `--since`: only that run's events, or
// those last seen from then on, in verdicts, events and counts alike.
TEST(SqliteStoreTest, FiltersByRunIdAndSince) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  std::vector<EventRecord> batch;
  for (uint64_t seq = 1; seq <= 6; ++seq) batch.push_back(MakeEvent("agent-a", seq));
  ASSERT_THAT(s->Append(batch), IsOk());
  VerdictFilter run;
  run.run_id = "run-even";
  EXPECT_THAT(s->CountEvents(run), IsOkAndHolds(3u));
  auto events = s->QueryEvents(run);
  ASSERT_THAT(events, IsOk());
  for (const auto& e : *events) EXPECT_EQ(e.seq % 2, 0u);
  auto groups = s->QueryVerdicts(run);
  ASSERT_THAT(groups, IsOk());
  uint64_t counted = 0;
  for (const auto& g : *groups) counted += g.count;
  EXPECT_EQ(counted, 3u);
  VerdictFilter since;
  since.since_unix_ms = 2005;  // last seen 2001..2006
  EXPECT_THAT(s->CountEvents(since), IsOkAndHolds(2u));
  since.run_id = "run-even";
  EXPECT_THAT(s->CountEvents(since), IsOkAndHolds(1u));  // seq 6
  VerdictFilter other;
  other.run_id = "no-such-run";
  EXPECT_THAT(s->CountEvents(other), IsOkAndHolds(0u));
}

TEST(SqliteStoreTest, AppendAndReadBackAllFields) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  EventRecord e = MakeEvent("agent-a", 1);
  e.scenarios = {"a,b", "", "c\\d"};
  e.seq = (1ull << 63) - 1;  // the largest seq the wire contract allows
  e.count = 7;
  e.run_id = "qa-1700000000000-42";
  ASSERT_THAT(s->Append({e}), IsOk());
  auto events = s->QueryEvents({});
  ASSERT_THAT(events, IsOk());
  ASSERT_EQ(events->size(), 1u);
  const EventRecord& r = (*events)[0];
  EXPECT_EQ(r.run_id, e.run_id);
  EXPECT_EQ(r.agent_id, e.agent_id);
  EXPECT_EQ(r.seq, e.seq);
  EXPECT_EQ(r.device_id, e.device_id);
  EXPECT_EQ(r.device_class, e.device_class);
  EXPECT_EQ(r.firmware, e.firmware);
  EXPECT_EQ(r.pid, e.pid);
  EXPECT_EQ(r.exe, e.exe);
  EXPECT_EQ(r.module, e.module);
  EXPECT_EQ(r.module_build_id, e.module_build_id);
  EXPECT_EQ(r.sdk, e.sdk);
  EXPECT_EQ(r.action, e.action);
  EXPECT_EQ(r.channel, e.channel);
  EXPECT_EQ(r.dest_ip, e.dest_ip);
  EXPECT_EQ(r.dest_port, e.dest_port);
  EXPECT_EQ(r.dest_host, e.dest_host);
  EXPECT_EQ(r.dest_peer_exe, e.dest_peer_exe);
  EXPECT_EQ(r.data_type, e.data_type);
  EXPECT_EQ(r.instance, e.instance);
  EXPECT_EQ(r.encoding, e.encoding);
  EXPECT_EQ(r.digest, e.digest);
  EXPECT_EQ(r.offset, e.offset);
  EXPECT_EQ(r.snippet, e.snippet);
  EXPECT_EQ(r.scenarios, e.scenarios);
  EXPECT_EQ(r.consents, e.consents);
  EXPECT_EQ(r.count, e.count);
  EXPECT_EQ(r.first_seen_unix_ms, e.first_seen_unix_ms);
  EXPECT_EQ(r.last_seen_unix_ms, e.last_seen_unix_ms);
  EXPECT_EQ(r.verdict, e.verdict);
  EXPECT_EQ(r.statement, e.statement);
  EXPECT_EQ(r.statement_version, e.statement_version);
  EXPECT_EQ(r.entry, e.entry);
  EXPECT_EQ(r.explanation, e.explanation);
  EXPECT_EQ(r.finding, e.finding);
  EXPECT_EQ(r.call_chain, e.call_chain);
  EXPECT_EQ(r.sdk_hint, e.sdk_hint);
  EXPECT_FALSE(r.has_cookie);
  EXPECT_THAT(s->LastSeq("agent-a"), IsOkAndHolds(e.seq));
}

TEST(SqliteStoreTest, EmptyAndSingleEmptyListsStayDistinct) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  EventRecord a = MakeEvent("a", 1);
  a.scenarios = {};
  a.consents = {{"", false}, {"odd \"key\",=true", true}};
  EventRecord b = MakeEvent("a", 2);
  b.scenarios = {""};
  b.consents = {};
  ASSERT_THAT(s->Append({a, b}), IsOk());
  VerdictFilter f;
  f.agent_id = "a";
  auto ev = s->QueryEvents(f);
  ASSERT_THAT(ev, IsOk());
  ASSERT_EQ(ev->size(), 2u);
  const EventRecord& ra = (*ev)[0].seq == 1 ? (*ev)[0] : (*ev)[1];
  const EventRecord& rb = (*ev)[0].seq == 1 ? (*ev)[1] : (*ev)[0];
  EXPECT_TRUE(ra.scenarios.empty());
  EXPECT_EQ(ra.consents, a.consents);
  EXPECT_THAT(rb.scenarios, ElementsAre(""));
  EXPECT_TRUE(rb.consents.empty());
}

TEST(SqliteStoreTest, CookieEventsKeepTheirOwnFields) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  EventRecord c = MakeEvent("a", 1);
  c.data_type = "cookie";
  c.instance.clear();
  c.encoding.clear();
  c.has_cookie = true;
  c.cookie = {"sid", "set_by_server", "tracker.example", 86400, false, false};
  c.verdict = "third_party_cookie";
  c.finding = "violation";
  EventRecord same_name_sent = MakeEvent("a", 2);
  same_name_sent.data_type = "cookie";
  same_name_sent.has_cookie = true;
  same_name_sent.cookie = {"sid", "sent_by_client", "", -1, false, true};
  same_name_sent.verdict = "third_party_cookie";
  same_name_sent.finding = "violation";
  ASSERT_THAT(s->Append({c, same_name_sent}), IsOk());
  auto ev = s->QueryEvents({});
  ASSERT_THAT(ev, IsOk());
  ASSERT_EQ(ev->size(), 2u);
  for (const auto& r : *ev) {
    ASSERT_TRUE(r.has_cookie);
    EXPECT_EQ(r.cookie, r.seq == 1 ? c.cookie : same_name_sent.cookie);
  }
  // The direction is part of the group: set and sent are two groups.
  auto groups = s->QueryVerdicts({});
  ASSERT_THAT(groups, IsOk());
  EXPECT_EQ(groups->size(), 2u);
}

TEST(SqliteStoreTest, FindingFilterAndOrder) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  std::vector<EventRecord> batch;
  const std::pair<const char*, const char*> kinds[] = {
      {"clear", "clear"}, {"local_acquisition", "observation"}, {"omitted", "violation"}};
  uint64_t seq = 0;
  for (const auto& [verdict, finding] : kinds) {
    EventRecord e = MakeEvent("a", ++seq);
    e.verdict = verdict;
    e.finding = finding;
    e.last_seen_unix_ms = 10000 - static_cast<int64_t>(seq);  // violation oldest
    batch.push_back(e);
  }
  ASSERT_THAT(s->Append(batch), IsOk());
  VerdictFilter v;
  v.violations_only = true;
  EXPECT_THAT(s->CountEvents(v), IsOkAndHolds(1u));
  VerdictFilter o;
  o.finding = "observation";
  EXPECT_THAT(s->CountEvents(o), IsOkAndHolds(1u));
  auto groups = s->QueryVerdicts({});
  ASSERT_THAT(groups, IsOk());
  ASSERT_EQ(groups->size(), 3u);
  // Violations first, then observations, then clear, whatever their age.
  EXPECT_EQ((*groups)[0].sample.finding, "violation");
  EXPECT_EQ((*groups)[1].sample.finding, "observation");
  EXPECT_EQ((*groups)[2].sample.finding, "clear");
}

TEST(SqliteStoreTest, ReAppendIsIdempotent) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  std::vector<EventRecord> batch = {MakeEvent("a", 1), MakeEvent("a", 2), MakeEvent("b", 1)};
  ASSERT_THAT(s->Append(batch), IsOk());
  EXPECT_THAT(s->CountEvents({}), IsOkAndHolds(3u));
  // Re-delivery of the same batch, and an overlapping one with a changed
  // payload: the first stored copy wins, nothing duplicates.
  ASSERT_THAT(s->Append(batch), IsOk());
  EventRecord changed = MakeEvent("a", 2);
  changed.verdict = "omitted";
  ASSERT_THAT(s->Append({changed, MakeEvent("a", 3)}), IsOk());
  EXPECT_THAT(s->CountEvents({}), IsOkAndHolds(4u));
  VerdictFilter only_a;
  only_a.agent_id = "a";
  EXPECT_THAT(s->CountEvents(only_a), IsOkAndHolds(3u));
  EXPECT_THAT(s->LastSeq("a"), IsOkAndHolds(3u));
  EXPECT_THAT(s->LastSeq("b"), IsOkAndHolds(1u));
  EXPECT_THAT(s->LastSeq("nobody"), IsOkAndHolds(0u));
  VerdictFilter omitted;
  omitted.verdict = "omitted";
  EXPECT_THAT(s->CountEvents(omitted), IsOkAndHolds(0u));
}

TEST(SqliteStoreTest, DuplicateWithinOneBatchStoredOnce) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  ASSERT_THAT(s->Append({MakeEvent("a", 1), MakeEvent("a", 1)}), IsOk());
  EXPECT_THAT(s->CountEvents({}), IsOkAndHolds(1u));
}

TEST(SqliteStoreTest, RejectsEventWithoutAgentAndStoresNothing) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  EXPECT_THAT(s->Append({MakeEvent("a", 1), MakeEvent("", 2)}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(s->CountEvents({}), IsOkAndHolds(0u));
  EXPECT_THAT(s->Append({}), IsOk());
}

TEST(SqliteStoreTest, GroupsSumCountsAndPickLatestSample) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  // Three events of one group (different digests, agents and times) ...
  EventRecord g1 = MakeEvent("a", 1);
  g1.count = 2;
  g1.first_seen_unix_ms = 500;
  g1.last_seen_unix_ms = 900;
  EventRecord g2 = MakeEvent("a", 2);
  g2.count = 3;
  g2.first_seen_unix_ms = 100;
  g2.last_seen_unix_ms = 5000;
  g2.explanation = "latest";
  EventRecord g3 = MakeEvent("b", 1);
  g3.count = 4;
  g3.first_seen_unix_ms = 700;
  g3.last_seen_unix_ms = 1000;
  // ... and events differing in one key each.
  EventRecord other_enc = MakeEvent("a", 3);
  other_enc.encoding = "raw";
  EventRecord other_dest = MakeEvent("a", 4);
  other_dest.dest_host = "";
  other_dest.last_seen_unix_ms = 1;
  EventRecord violation = MakeEvent("a", 5);
  violation.verdict = "omitted";
  violation.finding = "violation";
  violation.last_seen_unix_ms = 2;  // oldest, still listed first
  ASSERT_THAT(s->Append({g1, g2, g3, other_enc, other_dest, violation}), IsOk());

  auto groups = s->QueryVerdicts({});
  ASSERT_THAT(groups, IsOk());
  ASSERT_EQ(groups->size(), 4u);
  EXPECT_EQ((*groups)[0].sample.verdict, "omitted");
  const VerdictGroup& big = (*groups)[1];
  EXPECT_EQ(big.count, 9u);
  EXPECT_EQ(big.first_seen_unix_ms, 100);
  EXPECT_EQ(big.last_seen_unix_ms, 5000);
  EXPECT_EQ(big.sample.explanation, "latest");
  EXPECT_EQ(big.sample.seq, 2u);
  EXPECT_EQ(big.sample.encoding, "md5");
  // Remaining clear groups by last_seen descending.
  EXPECT_EQ((*groups)[2].sample.encoding, "raw");
  EXPECT_EQ((*groups)[3].sample.Destination(), "203.0.113.7:443");
  EXPECT_EQ((*groups)[3].count, 1u);

  VerdictFilter lim;
  lim.limit = 2;
  auto limited = s->QueryVerdicts(lim);
  ASSERT_THAT(limited, IsOk());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[1].count, 9u);
}

TEST(SqliteStoreTest, Filters) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  std::vector<EventRecord> batch;
  const char* verdicts[] = {"clear", "vague", "omitted", "wrong_recipient"};
  uint64_t seq = 0;
  for (const char* dev : {"dev-1", "dev-2"}) {
    for (const char* sdk : {"lebo", "umeng"}) {
      for (const char* v : verdicts) {
        EventRecord e = MakeEvent("a", ++seq);
        e.device_id = dev;
        e.sdk = sdk;
        e.verdict = v;
        e.finding = std::string(v) == "clear" ? "clear" : "violation";
        batch.push_back(e);
      }
    }
  }
  ASSERT_THAT(s->Append(batch), IsOk());
  EXPECT_THAT(s->CountEvents({}), IsOkAndHolds(16u));

  VerdictFilter f;
  f.device_id = "dev-2";
  EXPECT_THAT(s->CountEvents(f), IsOkAndHolds(8u));
  f.sdk = "umeng";
  EXPECT_THAT(s->CountEvents(f), IsOkAndHolds(4u));
  f.violations_only = true;
  EXPECT_THAT(s->CountEvents(f), IsOkAndHolds(3u));
  auto groups = s->QueryVerdicts(f);
  ASSERT_THAT(groups, IsOk());
  ASSERT_EQ(groups->size(), 3u);
  for (const auto& g : *groups) {
    EXPECT_EQ(g.sample.device_id, "dev-2");
    EXPECT_EQ(g.sample.sdk, "umeng");
    EXPECT_NE(g.sample.verdict, "clear");
  }
  f.verdict = "vague";
  auto events = s->QueryEvents(f);
  ASSERT_THAT(events, IsOk());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].verdict, "vague");
  EXPECT_EQ((*events)[0].device_id, "dev-2");

  VerdictFilter only_v;
  only_v.violations_only = true;
  EXPECT_THAT(s->CountEvents(only_v), IsOkAndHolds(12u));
  VerdictFilter none;
  none.device_id = "nope";
  EXPECT_THAT(s->QueryVerdicts(none), IsOkAndHolds(::testing::IsEmpty()));

  // Newest first, and limit honoured.
  VerdictFilter lim;
  lim.limit = 3;
  auto newest = s->QueryEvents(lim);
  ASSERT_THAT(newest, IsOk());
  ASSERT_EQ(newest->size(), 3u);
  EXPECT_EQ((*newest)[0].seq, 16u);
  EXPECT_EQ((*newest)[2].seq, 14u);
}

TEST(SqliteStoreTest, ReopenReadsBack) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  {
    auto s = OpenOrDie(path);
    ASSERT_NE(s, nullptr);
    ASSERT_THAT(s->Append({MakeEvent("a", 1), MakeEvent("a", 2)}), IsOk());
  }
  auto s = OpenStore(absl::StrCat("sqlite:", path));
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT((*s)->CountEvents({}), IsOkAndHolds(2u));
  EXPECT_THAT((*s)->LastSeq("a"), IsOkAndHolds(2u));
  ASSERT_THAT((*s)->Append({MakeEvent("a", 2), MakeEvent("a", 3)}), IsOk());
  EXPECT_THAT((*s)->CountEvents({}), IsOkAndHolds(3u));
}

TEST(SqliteStoreTest, NewerSchemaIsRefused) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  { ASSERT_NE(OpenOrDie(path), nullptr); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_version (version) VALUES (99)", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = SqliteStore::Open(path);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(s.status().message(), HasSubstr("newer"));
}

TEST(SqliteStoreTest, CorruptFileGivesClearError) {
  TempDir dir;
  const std::string path = dir.File("corrupt.db");
  ASSERT_THAT(WriteFileAtomic(path, std::string(8192, 'x')), IsOk());
  auto s = SqliteStore::Open(path);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(s.status().message(), HasSubstr(path));
  EXPECT_THAT(s.status().message(), HasSubstr("not a database"));
}

TEST(SqliteStoreTest, UnopenablePathGivesClearError) {
  TempDir dir;
  const std::string path = dir.File("no/such/dir/s.db");
  auto s = SqliteStore::Open(path);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(path));
  EXPECT_THAT(s.status().message(), HasSubstr("cannot open"));
  // A directory is not a database file either.
  auto d = SqliteStore::Open(dir.File(""));
  EXPECT_FALSE(d.ok());
}

TEST(SqliteStoreTest, ConcurrentWritersAndReader) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  constexpr int kBatches = 20;
  constexpr int kPerBatch = 25;
  std::atomic<bool> done{false};
  std::atomic<int> reader_errors{0};
  auto writer = [&](const std::string& agent) {
    for (int b = 0; b < kBatches; ++b) {
      std::vector<EventRecord> batch;
      for (int i = 0; i < kPerBatch; ++i) {
        batch.push_back(MakeEvent(agent, static_cast<uint64_t>(b * kPerBatch + i + 1)));
      }
      // Every other batch is delivered twice, as after a lost ack.
      ASSERT_THAT(s->Append(batch), IsOk());
      if (b % 2 == 0) {
        ASSERT_THAT(s->Append(batch), IsOk());
      }
    }
  };
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      auto n = s->CountEvents({});
      auto g = s->QueryVerdicts({});
      if (!n.ok() || !g.ok() || *n < last) reader_errors++;
      if (n.ok()) last = *n;
    }
  });
  std::thread w1(writer, "agent-1");
  std::thread w2(writer, "agent-2");
  w1.join();
  w2.join();
  done = true;
  reader.join();
  EXPECT_EQ(reader_errors.load(), 0);
  EXPECT_THAT(s->CountEvents({}), IsOkAndHolds(2u * kBatches * kPerBatch));
  EXPECT_THAT(s->LastSeq("agent-1"), IsOkAndHolds(uint64_t{kBatches * kPerBatch}));
  auto groups = s->QueryVerdicts({});
  ASSERT_THAT(groups, IsOk());
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].count, 2u * kBatches * kPerBatch);
}

}  // namespace
}  // namespace idflow::store

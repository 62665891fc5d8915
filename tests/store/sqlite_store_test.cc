// Component tests of the SQLite store on real files in a temporary directory.
#include "collector/store/sqlite_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/store/store.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
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
  // PostgreSQL URLs go to the PostgreSQL store (no server here): refused,
  // never echoing the password.
  auto pg = OpenStore("postgresql://user:secret@db.invalid/idflow");
  EXPECT_FALSE(pg.ok());
  EXPECT_THAT(pg.status().message(), ::testing::Not(HasSubstr("secret")));
  EXPECT_FALSE(OpenStore("postgres://db.invalid/idflow").ok());
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

// Chains and consents are serialised by hand on the write path; the stored
// text must be what nlohmann::json writes (and reads back) for any bytes.
TEST(SqliteStoreTest, ChainAndConsentsTextIsWhatJsonWrites) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  auto s = OpenOrDie(path);
  ASSERT_NE(s, nullptr);
  const std::string odd = std::string("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f é ") + "\xff\xc3";
  EventRecord e = MakeEvent("a", 1);
  e.call_chain = {{odd, ""}, {"/lib/plain.so", odd}, {"", ""}};
  e.consents = {{odd, true}, {"", false}, {"ux", true}};
  ASSERT_THAT(s->Append({e}), IsOk());
  nlohmann::json chain = nlohmann::json::array();
  for (const auto& m : e.call_chain) {
    chain.push_back(m.build_id.empty()
                        ? nlohmann::json{{"path", m.path}}
                        : nlohmann::json{{"path", m.path}, {"build_id", m.build_id}});
  }
  nlohmann::json consents = nlohmann::json::object();
  for (const auto& [k, v] : e.consents) consents[k] = v;
  const auto dump = [](const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(db, "SELECT call_chain, consents_json FROM events", -1, &st, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), dump(chain));
  EXPECT_EQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)), dump(consents));
  sqlite3_finalize(st);
  sqlite3_close(db);
  // Valid text round-trips exactly.
  EventRecord valid = MakeEvent("a", 2);
  valid.call_chain = {{"q\"b\\s\n\x01 é", "id\t"}};
  valid.consents = {{"k\"\\\x02", false}};
  ASSERT_THAT(s->Append({valid}), IsOk());
  VerdictFilter f;
  f.limit = 1;
  auto back = s->QueryEvents(f);
  ASSERT_THAT(back, IsOk());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].call_chain, valid.call_chain);
  EXPECT_EQ((*back)[0].consents, valid.consents);
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

// ---------------------------------------------------------------------------
// Fleet scale: aggregates maintained at ingest, group commit, stream claims,
// retention, the one-writer lock.

// What a scan of the written events gives, computed independently of the
// store: the reference the aggregate tables must equal.
struct Expected {
  struct Group {
    EventRecord sample;
    uint64_t count = 0;
    int64_t first = 0;
    int64_t last = 0;
  };
  std::map<std::vector<std::string>, Group> groups;
  std::map<std::tuple<std::string, std::string, std::string>, MatrixRow> matrix;
  // (hour, device, sdk, data_type, verdict) -> count
  std::map<std::tuple<int64_t, std::string, std::string, std::string, std::string>, uint64_t>
      hourly;

  static std::vector<std::string> Key(const EventRecord& e) {
    return {e.device_id,
            e.device_class,
            e.firmware,
            e.sdk,
            e.module,
            e.data_type,
            e.encoding,
            e.Destination(),
            e.has_cookie ? e.cookie.name : "",
            e.has_cookie ? e.cookie.direction : "",
            e.verdict,
            e.statement,
            e.statement_version,
            e.entry};
  }

  // `e` was stored, after every event added before it.
  void Add(const EventRecord& e) {
    auto [g, fresh] = groups.try_emplace(Key(e));
    if (fresh || e.last_seen_unix_ms >= g->second.last) g->second.sample = e;
    g->second.first =
        fresh ? e.first_seen_unix_ms : std::min(g->second.first, e.first_seen_unix_ms);
    g->second.last = fresh ? e.last_seen_unix_ms : std::max(g->second.last, e.last_seen_unix_ms);
    g->second.count += e.count;
    auto [m, mfresh] = matrix.try_emplace({e.sdk, e.data_type, e.verdict});
    m->second.sdk = e.sdk;
    m->second.data_type = e.data_type;
    m->second.verdict = e.verdict;
    m->second.finding = e.finding;
    m->second.count += e.count;
    m->second.first_seen_unix_ms =
        mfresh ? e.first_seen_unix_ms
               : std::min(m->second.first_seen_unix_ms, e.first_seen_unix_ms);
    m->second.last_seen_unix_ms =
        mfresh ? e.last_seen_unix_ms : std::max(m->second.last_seen_unix_ms, e.last_seen_unix_ms);
    int64_t hour = e.last_seen_unix_ms - (((e.last_seen_unix_ms % 3600000) + 3600000) % 3600000);
    hourly[{hour, e.device_id, e.sdk, e.data_type, e.verdict}] += e.count;
  }

  static bool Matches(const VerdictFilter& f, const EventRecord& s, int64_t last) {
    return (f.device_id.empty() || s.device_id == f.device_id) &&
           (f.device_class.empty() || s.device_class == f.device_class) &&
           (f.firmware.empty() || s.firmware == f.firmware) && (f.sdk.empty() || s.sdk == f.sdk) &&
           (f.data_type.empty() || s.data_type == f.data_type) &&
           (f.verdict.empty() || s.verdict == f.verdict) &&
           (f.finding.empty() || s.finding == f.finding) &&
           (!f.violations_only || s.finding == "violation") &&
           (f.since_unix_ms <= 0 || last >= f.since_unix_ms) &&
           (f.until_unix_ms <= 0 || last < f.until_unix_ms);
  }

  // Groups as QueryVerdicts must list them: violations, observations, clear,
  // then newest first (ties are left to the store's stable order).
  std::vector<const Group*> Verdicts(const VerdictFilter& f) const {
    std::vector<const Group*> out;
    for (const auto& [k, g] : groups) {
      if (Matches(f, g.sample, g.last)) out.push_back(&g);
    }
    auto rank = [](const Group* g) {
      return g->sample.finding == "violation" ? 0 : g->sample.finding == "observation" ? 1 : 2;
    };
    std::stable_sort(out.begin(), out.end(), [&](const Group* a, const Group* b) {
      if (rank(a) != rank(b)) return rank(a) < rank(b);
      return a->last > b->last;
    });
    return out;
  }

  std::vector<MatrixRow> Matrix(const VerdictFilter& f) const {
    std::map<std::tuple<std::string, std::string, std::string>, MatrixRow> rows;
    for (const auto& [k, g] : groups) {
      if (!Matches(f, g.sample, g.last)) continue;
      auto [r, fresh] = rows.try_emplace({g.sample.sdk, g.sample.data_type, g.sample.verdict});
      r->second.sdk = g.sample.sdk;
      r->second.data_type = g.sample.data_type;
      r->second.verdict = g.sample.verdict;
      r->second.finding = g.sample.finding;
      r->second.count += g.count;
      r->second.first_seen_unix_ms =
          fresh ? g.first : std::min(r->second.first_seen_unix_ms, g.first);
      r->second.last_seen_unix_ms = fresh ? g.last : std::max(r->second.last_seen_unix_ms, g.last);
    }
    std::vector<MatrixRow> out;
    for (auto& [k, r] : rows) out.push_back(r);
    return out;
  }

  std::vector<HistogramRow> Histogram(const VerdictFilter& f, int64_t bucket) const {
    std::map<std::tuple<int64_t, std::string, std::string>, HistogramRow> rows;
    for (const auto& [k, count] : hourly) {
      const auto& [hour, device, sdk, data_type, verdict] = k;
      if ((!f.device_id.empty() && device != f.device_id) || (!f.sdk.empty() && sdk != f.sdk) ||
          (!f.data_type.empty() && data_type != f.data_type) ||
          (!f.verdict.empty() && verdict != f.verdict) ||
          (f.since_unix_ms > 0 && hour + 3600000 <= f.since_unix_ms) ||
          (f.until_unix_ms > 0 && hour >= f.until_unix_ms)) {
        continue;
      }
      const std::string finding = verdict == "clear" ? "clear" : "violation";
      if ((!f.finding.empty() && finding != f.finding) ||
          (f.violations_only && finding != "violation")) {
        continue;
      }
      int64_t b = hour - (((hour % bucket) + bucket) % bucket);
      HistogramRow& r = rows[{b, sdk, verdict}];
      r.bucket_start_unix_ms = b;
      r.sdk = sdk;
      r.verdict = verdict;
      r.finding = finding;
      r.count += count;
    }
    std::vector<HistogramRow> out;
    for (auto& [k, r] : rows) out.push_back(r);
    return out;
  }
};

AgentRecord AgentNamed(const std::string& id) {
  AgentRecord a;
  a.agent_id = id;
  return a;
}

void ExpectVerdictsMatch(Store& s, const Expected& want, const VerdictFilter& f) {
  SCOPED_TRACE(absl::StrCat("filter device=", f.device_id, " class=", f.device_class,
                            " fw=", f.firmware, " sdk=", f.sdk, " type=", f.data_type,
                            " verdict=", f.verdict, " finding=", f.finding,
                            " since=", f.since_unix_ms, " until=", f.until_unix_ms));
  VerdictFilter all = f;
  all.limit = 0;
  auto got = s.QueryVerdicts(all);
  ASSERT_THAT(got, IsOk());
  std::vector<const Expected::Group*> exp = want.Verdicts(f);
  ASSERT_EQ(got->size(), exp.size());
  for (size_t i = 0; i < exp.size(); ++i) {
    const VerdictGroup& g = (*got)[i];
    // Equal-rank, equal-time groups may come in either order: find by key.
    EXPECT_EQ(g.sample.finding, exp[i]->sample.finding) << i;
    EXPECT_EQ(g.last_seen_unix_ms, exp[i]->last) << i;
    auto it = want.groups.find(Expected::Key(g.sample));
    ASSERT_NE(it, want.groups.end()) << i;
    EXPECT_EQ(g.count, it->second.count) << i;
    EXPECT_EQ(g.first_seen_unix_ms, it->second.first) << i;
    EXPECT_EQ(g.last_seen_unix_ms, it->second.last) << i;
    EXPECT_EQ(g.sample.agent_id, it->second.sample.agent_id) << i;
    EXPECT_EQ(g.sample.seq, it->second.sample.seq) << i;
    EXPECT_EQ(g.sample.explanation, it->second.sample.explanation) << i;
    EXPECT_EQ(g.sample.call_chain, it->second.sample.call_chain) << i;
  }
}

void ExpectMatrixMatches(Store& s, const Expected& want, const VerdictFilter& f) {
  auto got = s.QueryMatrix(f);
  ASSERT_THAT(got, IsOk());
  std::vector<MatrixRow> exp = want.Matrix(f);
  ASSERT_EQ(got->size(), exp.size());
  for (size_t i = 0; i < exp.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("matrix row ", i, " ", exp[i].sdk, "/", exp[i].data_type, "/",
                              exp[i].verdict));
    EXPECT_EQ((*got)[i].sdk, exp[i].sdk);
    EXPECT_EQ((*got)[i].data_type, exp[i].data_type);
    EXPECT_EQ((*got)[i].verdict, exp[i].verdict);
    EXPECT_EQ((*got)[i].finding, exp[i].finding);
    EXPECT_EQ((*got)[i].count, exp[i].count);
    EXPECT_EQ((*got)[i].first_seen_unix_ms, exp[i].first_seen_unix_ms);
    EXPECT_EQ((*got)[i].last_seen_unix_ms, exp[i].last_seen_unix_ms);
  }
}

void ExpectHistogramMatches(Store& s, const Expected& want, const VerdictFilter& f,
                            int64_t bucket) {
  auto got = s.QueryHistogram(f, bucket);
  ASSERT_THAT(got, IsOk());
  std::vector<HistogramRow> exp = want.Histogram(f, bucket);
  ASSERT_EQ(got->size(), exp.size());
  for (size_t i = 0; i < exp.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("histogram row ", i));
    EXPECT_EQ((*got)[i].bucket_start_unix_ms, exp[i].bucket_start_unix_ms);
    EXPECT_EQ((*got)[i].sdk, exp[i].sdk);
    EXPECT_EQ((*got)[i].verdict, exp[i].verdict);
    EXPECT_EQ((*got)[i].finding, exp[i].finding);
    EXPECT_EQ((*got)[i].count, exp[i].count);
  }
}

// A varied event of `agent`: a few devices, classes, firmwares, SDKs, data
// types, verdicts, destinations and cookies, over a few hours; equal
// last_seen values on purpose (the later write must win the sample).
EventRecord VariedEvent(std::mt19937& rng, const std::string& agent, uint64_t seq) {
  auto pick = [&](std::initializer_list<const char*> l) {
    return std::string(*(l.begin() + rng() % l.size()));
  };
  EventRecord e = MakeEvent(agent, seq);
  e.device_id = pick({"dev-1", "dev-2", "dev-3"});
  e.device_class = pick({"tv", "phone"});
  e.firmware = pick({"1.0", "2.0"});
  e.sdk = pick({"lebo", "umeng", ""});
  e.data_type = pick({"mac_address", "oaid"});
  e.verdict = pick({"clear", "omitted", "vague"});
  e.finding = e.verdict == "clear" ? "clear" : "violation";
  if (rng() % 4 == 0) e.dest_host.clear();  // ip:port destination
  if (rng() % 5 == 0) {
    e.data_type = "cookie";
    e.has_cookie = true;
    e.cookie = {
        pick({"sid", "uid"}), pick({"set_by_server", "sent_by_client"}), "", -1, true, true};
  }
  e.count = 1 + rng() % 3;
  e.last_seen_unix_ms = 7200000 + static_cast<int64_t>(rng() % 4) * 1800000 + rng() % 3;
  e.first_seen_unix_ms = e.last_seen_unix_ms - static_cast<int64_t>(rng() % 5000);
  e.explanation = absl::StrCat("event ", agent, "/", seq);
  return e;
}

void ExpectAllAggregatesMatch(Store& s, const Expected& want) {
  std::vector<VerdictFilter> filters(1);
  auto with = [&](auto set) {
    VerdictFilter f;
    set(f);
    filters.push_back(f);
  };
  with([](VerdictFilter& f) { f.device_id = "dev-2"; });
  with([](VerdictFilter& f) { f.device_class = "phone"; });
  with([](VerdictFilter& f) { f.firmware = "2.0"; });
  with([](VerdictFilter& f) { f.sdk = "lebo"; });
  with([](VerdictFilter& f) {
    f.sdk = "";
    f.data_type = "cookie";
  });
  with([](VerdictFilter& f) { f.verdict = "vague"; });
  with([](VerdictFilter& f) { f.violations_only = true; });
  with([](VerdictFilter& f) { f.finding = "clear"; });
  with([](VerdictFilter& f) { f.since_unix_ms = 9000000; });
  with([](VerdictFilter& f) { f.until_unix_ms = 9000000; });
  with([](VerdictFilter& f) {
    f.device_id = "dev-1";
    f.firmware = "1.0";
    f.since_unix_ms = 7200001;
    f.until_unix_ms = 12600000;
  });
  for (const VerdictFilter& f : filters) {
    ExpectVerdictsMatch(s, want, f);
    ExpectMatrixMatches(s, want, f);
  }
  for (int64_t bucket : {3600000, 7200000, 86400000}) {
    ExpectHistogramMatches(s, want, {}, bucket);
    VerdictFilter f;
    f.device_id = "dev-3";
    f.verdict = "omitted";
    ExpectHistogramMatches(s, want, f, bucket);
    VerdictFilter t;
    t.sdk = "umeng";
    t.data_type = "oaid";
    t.since_unix_ms = 9000000;  // mid-hour: its whole hour counts
    t.until_unix_ms = 14400000;
    ExpectHistogramMatches(s, want, t, bucket);
    // Without device or data type: the (hour, SDK, verdict) rollup answers.
    VerdictFilter r;
    r.sdk = "lebo";
    r.violations_only = true;
    r.since_unix_ms = 5400000;
    ExpectHistogramMatches(s, want, r, bucket);
    VerdictFilter v;
    v.finding = "clear";
    v.until_unix_ms = 10800000;
    ExpectHistogramMatches(s, want, v, bucket);
  }
}

// Writes a mixed history through every write path: Append (with duplicates),
// Write with accepted and refused ops, AppendContiguous and RecordGap.
void WriteMixedHistory(Store& s, Expected& want, uint32_t seed) {
  std::mt19937 rng(seed);
  // Append: any agents, re-delivery skipped (the first copy stays).
  std::vector<EventRecord> appended;
  for (uint64_t seq = 1; seq <= 40; ++seq) appended.push_back(VariedEvent(rng, "app", seq));
  appended.push_back(appended[3]);
  ASSERT_THAT(s.Append(appended), IsOk());
  for (size_t i = 0; i < 40; ++i) want.Add(appended[i]);
  std::vector<EventRecord> again = {VariedEvent(rng, "app", 5), VariedEvent(rng, "app", 41)};
  ASSERT_THAT(s.Append(again), IsOkAndHolds(1u));
  want.Add(again[1]);
  // Write: several agents in one call, refused ops store nothing.
  uint64_t next_a = 1, next_b = 1;
  for (int round = 0; round < 6; ++round) {
    std::vector<WriteOp> ops;
    std::vector<bool> accepted;
    auto add_events = [&](const std::string& agent, uint64_t first, size_t n, bool ok) {
      WriteOp op;
      op.agent_id = agent;
      for (size_t i = 0; i < n; ++i) op.events.push_back(VariedEvent(rng, agent, first + i));
      ops.push_back(std::move(op));
      accepted.push_back(ok);
    };
    add_events("a", next_a, 30, true);
    next_a += 30;
    add_events("b", next_b + 1, 5, false);  // leaves a hole: refused
    add_events("b", next_b, 20, true);
    next_b += 20;
    add_events("a", next_a, 10, true);  // follows the op before it in this call
    next_a += 10;
    WriteOp gap;
    gap.agent_id = "b";
    gap.gap_from = next_b;
    gap.gap_to = next_b + 2;
    gap.gap_cause = "spool";
    ops.push_back(gap);
    accepted.push_back(true);
    next_b += 3;
    auto statuses = s.Write(ops);
    ASSERT_THAT(statuses, IsOk());
    ASSERT_EQ(statuses->size(), ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
      EXPECT_EQ((*statuses)[i].ok(), accepted[i]) << round << "/" << i << (*statuses)[i];
      if (accepted[i]) {
        for (const auto& e : ops[i].events) want.Add(e);
      }
    }
  }
  // The older entry points share the same code.
  std::vector<EventRecord> contiguous;
  for (uint64_t i = 0; i < 15; ++i) contiguous.push_back(VariedEvent(rng, "a", next_a + i));
  ASSERT_THAT(s.AppendContiguous("a", contiguous), IsOk());
  for (const auto& e : contiguous) want.Add(e);
  next_a += 15;
  EXPECT_THAT(s.AppendContiguous("a", {VariedEvent(rng, "a", next_a + 1)}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(s.RecordGap("a", next_a, next_a + 9, "tap"), IsOk());
}

TEST(SqliteAggregatesTest, EqualAScanOfTheEventsAfterMixedWrites) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  Expected want;
  WriteMixedHistory(*s, want, 7);
  if (HasFatalFailure()) return;
  // Cross-check the reference against what the store holds row by row.
  VerdictFilter all;
  all.limit = 0;
  auto events = s->QueryEvents(all);
  ASSERT_THAT(events, IsOk());
  uint64_t total = 0;
  for (const auto& e : *events) total += e.count;
  uint64_t want_total = 0;
  for (const auto& [k, g] : want.groups) want_total += g.count;
  EXPECT_EQ(total, want_total);
  ExpectAllAggregatesMatch(*s, want);
  EXPECT_THAT(s->LastSeq("a"), IsOkAndHolds(6u * 40 + 15 + 10));
  EXPECT_THAT(s->LastSeq("b"), IsOkAndHolds(6u * 23));
  EXPECT_THAT(s->LastSeq("app"), IsOkAndHolds(41u));
}

TEST(SqliteAggregatesTest, AgentAndRunFiltersGroupThatAgentsEvents) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  EventRecord a1 = MakeEvent("a", 1);
  a1.count = 2;
  EventRecord a2 = MakeEvent("a", 2);
  a2.count = 3;
  EventRecord b1 = MakeEvent("b", 1);
  b1.count = 5;
  b1.last_seen_unix_ms = 99999;
  ASSERT_THAT(s->Append({a1, a2, b1}), IsOk());
  VerdictFilter f;
  f.agent_id = "a";
  auto groups = s->QueryVerdicts(f);
  ASSERT_THAT(groups, IsOk());
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].count, 5u);
  EXPECT_EQ((*groups)[0].sample.seq, 2u);
  auto fleet = s->QueryVerdicts({});
  ASSERT_THAT(fleet, IsOk());
  ASSERT_EQ(fleet->size(), 1u);
  EXPECT_EQ((*fleet)[0].count, 10u);
  EXPECT_EQ((*fleet)[0].sample.agent_id, "b");
  VerdictFilter run;
  run.run_id = "run-even";  // seq 2 of a only
  groups = s->QueryVerdicts(run);
  ASSERT_THAT(groups, IsOk());
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].count, 3u);
}

TEST(SqliteAggregatesTest, PagesInAStableOrder) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  std::vector<EventRecord> batch;
  for (uint64_t seq = 1; seq <= 25; ++seq) {
    EventRecord e = MakeEvent("a", seq);
    e.entry = absl::StrCat("entry-", seq);                       // 25 groups
    e.last_seen_unix_ms = 1000 + static_cast<int64_t>(seq % 3);  // many ties
    batch.push_back(e);
  }
  ASSERT_THAT(s->Append(batch), IsOk());
  VerdictFilter all;
  all.limit = 0;
  auto whole = s->QueryVerdicts(all);
  ASSERT_THAT(whole, IsOk());
  ASSERT_EQ(whole->size(), 25u);
  std::vector<std::string> paged;
  for (size_t off = 0; off < 25; off += 7) {
    VerdictFilter page;
    page.limit = 7;
    page.offset = off;
    auto p = s->QueryVerdicts(page);
    ASSERT_THAT(p, IsOk());
    for (const auto& g : *p) paged.push_back(g.sample.entry);
  }
  ASSERT_EQ(paged.size(), 25u);
  for (size_t i = 0; i < 25; ++i) EXPECT_EQ(paged[i], (*whole)[i].sample.entry) << i;
  for (size_t i = 1; i < 25; ++i) {
    EXPECT_GE((*whole)[i - 1].last_seen_unix_ms, (*whole)[i].last_seen_unix_ms) << i;
  }
}

TEST(SqliteAggregatesTest, MatrixAndHistogramRefuseWhatTheyDoNotKeep) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  VerdictFilter agent;
  agent.agent_id = "a";
  VerdictFilter run;
  run.run_id = "r";
  VerdictFilter cls;
  cls.device_class = "tv";
  VerdictFilter fw;
  fw.firmware = "1";
  EXPECT_THAT(s->QueryMatrix(agent), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(s->QueryMatrix(run), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(s->QueryMatrix(cls), IsOk());
  for (const VerdictFilter& f : {agent, run, cls, fw}) {
    EXPECT_THAT(s->QueryHistogram(f, 3600000), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  for (int64_t bad : {int64_t{0}, int64_t{-3600000}, int64_t{1800000}, int64_t{3600001}}) {
    EXPECT_THAT(s->QueryHistogram({}, bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_THAT(s->QueryHistogram({}, 3600000), IsOkAndHolds(::testing::IsEmpty()));
  EXPECT_THAT(s->QueryMatrix({}), IsOkAndHolds(::testing::IsEmpty()));
}

TEST(SqliteWriteTest, OneStatusPerOpAndRefusedOpsStoreNothing) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  auto batch = [](const std::string& agent, uint64_t first, uint64_t n) {
    WriteOp op;
    op.agent_id = agent;
    for (uint64_t i = 0; i < n; ++i) op.events.push_back(MakeEvent(agent, first + i));
    return op;
  };
  WriteOp not_contiguous = batch("c", 1, 3);
  not_contiguous.events[2].seq = 7;
  WriteOp foreign = batch("c", 1, 2);
  foreign.events[1].agent_id = "d";
  WriteOp empty;
  empty.agent_id = "c";
  WriteOp gap;
  gap.agent_id = "a";
  gap.gap_from = 6;
  gap.gap_to = 9;
  gap.gap_cause = "spool";
  std::vector<WriteOp> ops = {
      batch("a", 1, 3), batch("a", 5, 2), batch("a", 4, 2), gap, not_contiguous, foreign, empty,
      batch("b", 2, 1), batch("a", 10, 1)};
  auto st = s->Write(ops);
  ASSERT_THAT(st, IsOk());
  ASSERT_EQ(st->size(), ops.size());
  EXPECT_THAT((*st)[0], IsOk());
  EXPECT_THAT((*st)[1], StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT((*st)[1].message(), HasSubstr("stored_up_to 3"));
  EXPECT_THAT((*st)[2], IsOk());  // follows op 0 of the same call
  EXPECT_THAT((*st)[3], IsOk());
  EXPECT_THAT((*st)[4], StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((*st)[5], StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((*st)[6], StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((*st)[7], StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT((*st)[8], IsOk());  // after the gap
  EXPECT_THAT(s->LastSeq("a"), IsOkAndHolds(10u));
  EXPECT_THAT(s->LastSeq("b"), IsOkAndHolds(0u));
  EXPECT_THAT(s->LastSeq("c"), IsOkAndHolds(0u));
  EXPECT_THAT(s->CountEvents({}), IsOkAndHolds(6u));
  auto groups = s->QueryVerdicts({});
  ASSERT_THAT(groups, IsOk());
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].count, 6u);
  ASSERT_THAT(s->UpsertAgent(AgentNamed("a")), IsOk());
  auto agents = s->ListAgents("", 0, 0);
  ASSERT_THAT(agents, IsOk());
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].stored_up_to, 10u);
  EXPECT_EQ((*agents)[0].events_stored, 6u);
  EXPECT_EQ((*agents)[0].gap_events, 4u);
  EXPECT_THAT(s->Write({}), IsOkAndHolds(::testing::IsEmpty()));
}

TEST(SqliteWriteTest, ClaimsFenceOlderStreamsAcrossConnections) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  auto first = OpenOrDie(path);
  auto second = OpenOrDie(path);  // as a second collector process would
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_THAT(first->StreamGeneration("a"), IsOkAndHolds(0u));
  EXPECT_THAT(first->ClaimStream("a", "collector-1"), IsOkAndHolds(1u));
  EXPECT_THAT(second->StreamGeneration("a"), IsOkAndHolds(1u));
  WriteOp op;
  op.agent_id = "a";
  op.generation = 1;
  op.events = {MakeEvent("a", 1)};
  auto st = first->Write({op});
  ASSERT_THAT(st, IsOk());
  EXPECT_THAT((*st)[0], IsOk());
  // The agent reconnects to the other collector: the old stream is fenced.
  EXPECT_THAT(second->ClaimStream("a", "collector-2"), IsOkAndHolds(2u));
  op.events = {MakeEvent("a", 2)};
  WriteOp unfenced_b;
  unfenced_b.agent_id = "b";
  unfenced_b.events = {MakeEvent("b", 1)};
  st = first->Write({op, unfenced_b});
  ASSERT_THAT(st, IsOk());
  EXPECT_THAT((*st)[0], StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT((*st)[1], IsOk());
  op.generation = 2;
  st = second->Write({op});
  ASSERT_THAT(st, IsOk());
  EXPECT_THAT((*st)[0], IsOk());
  EXPECT_THAT(first->LastSeq("a"), IsOkAndHolds(2u));
  EXPECT_THAT(first->ClaimStream("", "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SqliteWriteTest, ConcurrentWritesFromSeveralThreads) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  constexpr int kThreads = 4;
  constexpr uint64_t kBatches = 15;
  constexpr uint64_t kPerBatch = 40;
  std::atomic<bool> done{false};
  std::atomic<int> reader_errors{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      const std::string agent = absl::StrCat("agent-", t);
      uint64_t generation = *s->ClaimStream(agent, "c");
      for (uint64_t b = 0; b < kBatches; ++b) {
        // Two in-flight batches of the stream in one call, as the collector
        // groups them.
        std::vector<WriteOp> ops(2);
        for (int k = 0; k < 2; ++k) {
          ops[k].agent_id = agent;
          ops[k].generation = generation;
          for (uint64_t i = 0; i < kPerBatch / 2; ++i) {
            ops[k].events.push_back(
                MakeEvent(agent, b * kPerBatch + static_cast<uint64_t>(k) * kPerBatch / 2 + i + 1));
          }
        }
        auto st = s->Write(ops);
        if (!st.ok() || !(*st)[0].ok() || !(*st)[1].ok()) reader_errors++;
      }
    });
  }
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      auto m = s->QueryMatrix({});
      if (!m.ok()) {
        reader_errors++;
        continue;
      }
      uint64_t n = 0;
      for (const auto& r : *m) n += r.count;
      if (n < last) reader_errors++;
      last = n;
    }
  });
  for (auto& w : writers) w.join();
  done = true;
  reader.join();
  EXPECT_EQ(reader_errors.load(), 0);
  const uint64_t total = kThreads * kBatches * kPerBatch;
  EXPECT_THAT(s->CountEvents({}), IsOkAndHolds(total));
  auto m = s->QueryMatrix({});
  ASSERT_THAT(m, IsOk());
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].count, total);
  auto h = s->QueryHistogram({}, 3600000);
  ASSERT_THAT(h, IsOk());
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0].count, total);
}

TEST(SqliteRetentionTest, PruneKeepsAggregatesAndAccounting) {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.db"));
  ASSERT_NE(s, nullptr);
  std::mt19937 rng(3);
  Expected want;
  WriteOp op;
  op.agent_id = "a";
  for (uint64_t seq = 1; seq <= 60; ++seq) op.events.push_back(VariedEvent(rng, "a", seq));
  for (const auto& e : op.events) want.Add(e);
  auto st = s->Write({op});
  ASSERT_THAT(st, IsOk());
  ASSERT_THAT((*st)[0], IsOk());
  ASSERT_THAT(s->UpsertAgent(AgentNamed("a")), IsOk());
  const int64_t cut = 10800000;
  uint64_t older = 0;
  for (const auto& e : op.events) older += e.last_seen_unix_ms < cut ? 1 : 0;
  ASSERT_GT(older, 0u);
  ASSERT_LT(older, 60u);
  EXPECT_THAT(s->PruneBefore(cut), IsOkAndHolds(older));
  EXPECT_THAT(s->CountEvents({}), IsOkAndHolds(60u - older));
  VerdictFilter before;
  before.until_unix_ms = cut;
  EXPECT_THAT(s->CountEvents(before), IsOkAndHolds(0u));
  EXPECT_THAT(s->LastSeq("a"), IsOkAndHolds(60u));
  auto agents = s->ListAgents("", 0, 0);
  ASSERT_THAT(agents, IsOk());
  ASSERT_EQ(agents->size(), 1u);
  uint64_t stored = 0;
  for (const auto& e : op.events) stored += e.count;
  EXPECT_EQ((*agents)[0].events_stored, stored);
  ExpectAllAggregatesMatch(*s, want);
  EXPECT_THAT(s->PruneBefore(cut), IsOkAndHolds(0u));
  // A pruned seq stays accounted for.
  EXPECT_THAT(s->AppendContiguous("a", {MakeEvent("a", 1)}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// A file an older build left, with events: reopened, it is migrated
// forward and every aggregate equals a scan of what was written.
TEST(SqliteMigrationTest, OlderFilesWithEventsAreBackfilled) {
  struct Older {
    int version;
    const char* rewind;  // what the later migrations added, taken away
  };
  const Older kOlder[] = {
      // v5 and v6 only added tables and an index on them.
      {4,
       "DROP TABLE streams; DROP TABLE verdict_groups; DROP TABLE verdict_matrix;"
       " DROP TABLE verdict_hourly; DROP TABLE verdict_hourly_sdk;"
       " DELETE FROM schema_version WHERE version >= 5"},
      {5,
       "DROP TABLE verdict_hourly_sdk; DROP INDEX groups_device;"
       " DELETE FROM schema_version WHERE version >= 6"},
  };
  for (const Older& older : kOlder) {
    SCOPED_TRACE(absl::StrCat("from v", older.version));
    TempDir dir;
    const std::string path = dir.File("s.db");
    Expected want;
    {
      auto s = OpenOrDie(path);
      ASSERT_NE(s, nullptr);
      WriteMixedHistory(*s, want, 11);
      if (HasFatalFailure()) return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, older.rewind, nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
    auto s = OpenOrDie(path);
    ASSERT_NE(s, nullptr);
    EXPECT_THAT(s->SchemaVersion(), IsOkAndHolds(SqliteStore::kSchemaVersion));
    ExpectAllAggregatesMatch(*s, want);
    EXPECT_THAT(s->LastSeq("a"), IsOkAndHolds(6u * 40 + 15 + 10));
    EXPECT_THAT(s->LastSeq("b"), IsOkAndHolds(6u * 23));
    // And ingest carries on from the backfilled rows.
    ASSERT_THAT(s->AppendContiguous("b", {MakeEvent("b", 6 * 23 + 1)}), IsOk());
    want.Add(MakeEvent("b", 6 * 23 + 1));
    ExpectAllAggregatesMatch(*s, want);
  }
}

TEST(SqliteLockTest, SecondWriterInTheSameProcessIsRefused) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  auto first = SqliteStore::Open(path, {.exclusive_writer = true});
  ASSERT_THAT(first, IsOk());
  // flock belongs to the open file description: a second open conflicts
  // even within one process.
  auto second = SqliteStore::Open(path, {.exclusive_writer = true});
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("in use by another collector (pid ", getpid(), ")")));
  EXPECT_THAT(second.status().message(), HasSubstr("postgresql://"));
  EXPECT_THAT(second.status().message(), HasSubstr(path));
  // The lock file is private and names its holder.
  struct stat st;
  ASSERT_EQ(stat((path + ".lock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto pid = ReadFile(path + ".lock");
  ASSERT_THAT(pid, IsOk());
  EXPECT_EQ(*pid, absl::StrCat(getpid(), "\n"));
  // Readers (idflowctl, a shell) open without the lock and see the data.
  ASSERT_THAT((*first)->Append({MakeEvent("a", 1)}), IsOk());
  auto reader = SqliteStore::Open(path);
  ASSERT_THAT(reader, IsOk());
  EXPECT_THAT((*reader)->CountEvents({}), IsOkAndHolds(1u));
  // Released with the store.
  first->reset();
  EXPECT_THAT(SqliteStore::Open(path, {.exclusive_writer = true}), IsOk());
}

TEST(SqliteLockTest, WriterInAnotherProcessIsNamed) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  int ready[2], quit[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(quit), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto s = SqliteStore::Open(path, {.exclusive_writer = true});
    char c = s.ok() ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    if (read(quit[0], &c, 1) < 0) _exit(3);  // held until the parent is done
    _exit(s.ok() ? 0 : 1);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto refused = SqliteStore::Open(path, {.exclusive_writer = true});
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(refused.status().message(), HasSubstr(absl::StrCat("(pid ", child, ")")));
  ASSERT_EQ(write(quit[1], "q", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (int fd : {ready[0], ready[1], quit[0], quit[1]}) close(fd);
  // The holder is gone (a crash too): the kernel released its lock.
  EXPECT_THAT(SqliteStore::Open(path, {.exclusive_writer = true}), IsOk());
}

TEST(SqliteLockTest, SymlinkedOrNonRegularLockFileIsRefused) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  const std::string victim = dir.File("victim");
  ASSERT_THAT(WriteFileAtomic(victim, "keep"), IsOk());
  ASSERT_EQ(symlink(victim.c_str(), (path + ".lock").c_str()), 0);
  auto linked = SqliteStore::Open(path, {.exclusive_writer = true});
  EXPECT_THAT(linked, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(linked.status().message(), HasSubstr("symbolic link"));
  EXPECT_THAT(ReadFile(victim), IsOkAndHolds(std::string("keep")));
  const std::string other = dir.File("t.db");
  ASSERT_EQ(mkdir((other + ".lock").c_str(), 0700), 0);
  auto directory = SqliteStore::Open(other, {.exclusive_writer = true});
  EXPECT_THAT(directory, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(directory.status().message(), HasSubstr("lock file"));
}

}  // namespace
}  // namespace idflow::store

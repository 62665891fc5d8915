// The Store contract (store.h), run against every back-end: SQLite on a
// temporary file, PostgreSQL on a fresh database of the test server.
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/store/postgres_store.h"
#include "collector/store/sqlite_store.h"
#include "collector/store/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/status_matchers.h"

namespace idflow::store {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::PostgresServer;
using ::idflow::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kHour = 3600000;
// A fixed day (2026-12-01 00:00 UTC) so buckets and partitions are known.
constexpr int64_t kT0 = 1796083200000;

// Opens a fresh, empty store of one back-end; the holder keeps its files.
struct Backend {
  std::string name;
  std::function<absl::StatusOr<std::unique_ptr<Store>>(std::string* cleanup_dir)> open;
};

void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

absl::StatusOr<std::unique_ptr<Store>> OpenSqlite(std::string* dir) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "idflow_conf_XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp");
  *dir = tmpl;
  auto s = SqliteStore::Open(tmpl + "/store.db");
  if (!s.ok()) return s.status();
  return std::unique_ptr<Store>(std::move(*s));
}

absl::StatusOr<std::unique_ptr<Store>> OpenPostgres(std::string*) {
  auto server = PostgresServer::Shared();
  if (!server.ok()) return server.status();
  auto url = (*server)->CreateFreshDatabase("conformance");
  if (!url.ok()) return url.status();
  auto s = PostgresStore::Open(*url);
  if (!s.ok()) return s.status();
  return std::unique_ptr<Store>(std::move(*s));
}

EventRecord Event(const std::string& agent, uint64_t seq) {
  EventRecord e;
  e.agent_id = agent;
  e.seq = seq;
  e.device_id = "dev-1";
  e.device_class = "tv";
  e.firmware = "1.0";
  e.module = "/system/lib/libsdk.so";
  e.sdk = "lebo";
  e.action = "transmit";
  e.channel = "tcp";
  e.dest_host = "api.example.com";
  e.dest_port = 443;
  e.data_type = "mac_address";
  e.encoding = "raw";
  e.digest = absl::StrCat("d", seq);
  e.count = 1;
  e.first_seen_unix_ms = kT0 + static_cast<int64_t>(seq);
  e.last_seen_unix_ms = kT0 + static_cast<int64_t>(seq);
  e.verdict = "clear";
  e.finding = "clear";
  e.statement = "stmt";
  e.statement_version = "v1";
  e.entry = "e1";
  return e;
}

std::vector<EventRecord> Events(const std::string& agent, uint64_t from, uint64_t to) {
  std::vector<EventRecord> out;
  for (uint64_t s = from; s <= to; ++s) out.push_back(Event(agent, s));
  return out;
}

WriteOp Op(const std::string& agent, std::vector<EventRecord> events, uint64_t generation = 0) {
  WriteOp op;
  op.agent_id = agent;
  op.events = std::move(events);
  op.generation = generation;
  return op;
}

WriteOp Gap(const std::string& agent, uint64_t from, uint64_t to) {
  WriteOp op;
  op.agent_id = agent;
  op.gap_from = from;
  op.gap_to = to;
  op.gap_cause = "spool_overflow";
  return op;
}

AgentRecord Agent(const std::string& id, const std::string& device) {
  AgentRecord a;
  a.agent_id = id;
  a.device_id = device;
  return a;
}

void ExpectSameEvent(const EventRecord& a, const EventRecord& b) {
  EXPECT_EQ(a.agent_id, b.agent_id);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.device_id, b.device_id);
  EXPECT_EQ(a.device_class, b.device_class);
  EXPECT_EQ(a.firmware, b.firmware);
  EXPECT_EQ(a.pid, b.pid);
  EXPECT_EQ(a.exe, b.exe);
  EXPECT_EQ(a.call_chain, b.call_chain);
  EXPECT_EQ(a.module, b.module);
  EXPECT_EQ(a.module_build_id, b.module_build_id);
  EXPECT_EQ(a.sdk, b.sdk);
  EXPECT_EQ(a.sdk_hint, b.sdk_hint);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.channel, b.channel);
  EXPECT_EQ(a.dest_ip, b.dest_ip);
  EXPECT_EQ(a.dest_port, b.dest_port);
  EXPECT_EQ(a.dest_host, b.dest_host);
  EXPECT_EQ(a.dest_peer_exe, b.dest_peer_exe);
  EXPECT_EQ(a.data_type, b.data_type);
  EXPECT_EQ(a.instance, b.instance);
  EXPECT_EQ(a.encoding, b.encoding);
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.snippet, b.snippet);
  EXPECT_EQ(a.has_cookie, b.has_cookie);
  EXPECT_EQ(a.cookie, b.cookie);
  EXPECT_EQ(a.scenarios, b.scenarios);
  EXPECT_EQ(a.consents, b.consents);
  EXPECT_EQ(a.run_id, b.run_id);
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.first_seen_unix_ms, b.first_seen_unix_ms);
  EXPECT_EQ(a.last_seen_unix_ms, b.last_seen_unix_ms);
  EXPECT_EQ(a.verdict, b.verdict);
  EXPECT_EQ(a.finding, b.finding);
  EXPECT_EQ(a.statement, b.statement);
  EXPECT_EQ(a.statement_version, b.statement_version);
  EXPECT_EQ(a.entry, b.entry);
  EXPECT_EQ(a.explanation, b.explanation);
}

class StoreConformanceTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto s = GetParam().open(&dir_);
    ASSERT_THAT(s, IsOk()) << GetParam().name;
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Writes `ops` and returns their statuses (the call itself must succeed).
  std::vector<absl::Status> WriteOk(const std::vector<WriteOp>& ops) {
    auto r = store_->Write(ops);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : std::vector<absl::Status>();
  }
  uint64_t LastSeq(const std::string& agent) {
    auto r = store_->LastSeq(agent);
    EXPECT_THAT(r, IsOk());
    return r.value_or(0);
  }
  uint64_t Count(const VerdictFilter& f) {
    auto r = store_->CountEvents(f);
    EXPECT_THAT(r, IsOk());
    return r.value_or(0);
  }
  std::vector<VerdictGroup> Groups(const VerdictFilter& f) {
    auto r = store_->QueryVerdicts(f);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : std::vector<VerdictGroup>();
  }
  // One line per group: "sdk/data_type/verdict xCOUNT".
  std::vector<std::string> GroupNames(const VerdictFilter& f) {
    std::vector<std::string> out;
    for (const VerdictGroup& g : Groups(f)) {
      out.push_back(absl::StrCat(g.sample.sdk, "/", g.sample.data_type, "/", g.sample.verdict, " x",
                                 g.count));
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

std::vector<int> Codes(const std::vector<absl::Status>& st) {
  std::vector<int> out;
  for (const absl::Status& s : st) out.push_back(static_cast<int>(s.code()));
  return out;
}

TEST_P(StoreConformanceTest, EveryFieldRoundTrips) {
  EventRecord full = Event("a", 1);
  full.pid = 4242;
  full.exe = "/system/app/vidéo";
  full.call_chain = {{"/lib/libc.so.6", ""}, {"/system/lib/libsdk.so", "abc\"def"}};
  full.module_build_id = "abcdef";
  full.sdk_hint = "claimed";
  full.dest_ip = "2001:db8::1";
  full.dest_peer_exe = "/usr/bin/peer";
  full.instance = "wlan0";
  full.offset = -3;
  full.snippet = "mac=<mac>\t\"quoted\"\n\\back {brace},comma 设备 🚀";
  full.has_cookie = true;
  full.cookie = {"passToken", "set_by_server", ".example.com", 94608000, true, false};
  full.scenarios = {"casting", "", "a,b", "{x}", "back\\slash"};
  full.consents = {{"privacy", true}, {"ux \"plan\"", false}};
  full.run_id = "run-1";
  full.count = 7;
  full.first_seen_unix_ms = kT0 - 5;
  full.verdict = "omitted";
  full.finding = "violation";
  full.explanation = "Lebo SDK read mac_address; déclaré: non";
  EventRecord empty_lists = Event("a", 2);
  empty_lists.scenarios = {};
  EventRecord one_empty = Event("a", 3);
  one_empty.scenarios = {""};
  one_empty.consents = {{"", false}};
  ASSERT_THAT(store_->AppendContiguous("a", {full, empty_lists, one_empty}), IsOk());
  VerdictFilter f;
  f.limit = 0;
  auto got = store_->QueryEvents(f);
  ASSERT_THAT(got, IsOk());
  ASSERT_EQ(got->size(), 3u);
  // Newest first: seq 3, 2, 1.
  ExpectSameEvent((*got)[2], full);
  ExpectSameEvent((*got)[1], empty_lists);
  ExpectSameEvent((*got)[0], one_empty);
  EXPECT_THAT((*got)[1].scenarios, IsEmpty());
  EXPECT_THAT((*got)[0].scenarios, ElementsAre(""));
  // The group sample carries the same fields.
  f.verdict = "omitted";
  auto groups = Groups(f);
  ASSERT_EQ(groups.size(), 1u);
  ExpectSameEvent(groups[0].sample, full);
}

TEST_P(StoreConformanceTest, AppendSkipsWhatIsStored) {
  auto n = store_->Append(Events("a", 1, 3));
  EXPECT_THAT(n, IsOk());
  EXPECT_EQ(n.value_or(0), 3u);
  // Re-delivery plus one new event and a repeat within the call.
  std::vector<EventRecord> again = Events("a", 2, 4);
  EventRecord dup = Event("a", 4);
  dup.digest = "second copy";
  again.push_back(dup);
  n = store_->Append(again);
  EXPECT_THAT(n, IsOk());
  EXPECT_EQ(n.value_or(0), 1u);
  EXPECT_EQ(Count({}), 4u);
  VerdictFilter f;
  f.limit = 1;
  auto newest = store_->QueryEvents(f);
  ASSERT_THAT(newest, IsOk());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].digest, "d4");  // the first copy wins
  EXPECT_EQ(LastSeq("a"), 4u);
  // Aggregates counted once per stored event.
  EXPECT_THAT(GroupNames({}), ElementsAre("lebo/mac_address/clear x4"));
  EXPECT_THAT(store_->Append({EventRecord{}}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, WriteGivesOneStatusPerOp) {
  auto gen = store_->ClaimStream("a", "collector-1");
  ASSERT_THAT(gen, IsOk());
  std::vector<EventRecord> holey = Events("c", 1, 3);
  holey.erase(holey.begin() + 1);
  std::vector<EventRecord> mixed = Events("d", 1, 2);
  mixed[1].agent_id = "e";
  auto st = WriteOk({
      Op("a", Events("a", 1, 3), *gen),      // OK
      Op("a", Events("a", 4, 5), *gen),      // OK: follows the op before it
      Op("b", Events("b", 2, 3)),            // FAILED_PRECONDITION: LastSeq(b) is 0
      Op("c", holey),                        // INVALID_ARGUMENT: not contiguous
      Op("a", Events("a", 6, 6), *gen + 5),  // ABORTED: not the current generation
      Op("d", mixed),                        // INVALID_ARGUMENT: another agent's event
      Op("f", {}),                           // INVALID_ARGUMENT: neither events nor gap
      Gap("a", 6, 8),                        // OK
      Op("a", Events("a", 8, 9)),            // FAILED_PRECONDITION: 8 is accounted for
      Op("b", Events("b", 1, 1)),            // OK
  });
  using C = absl::StatusCode;
  EXPECT_THAT(
      Codes(st),
      ElementsAre(0, 0, static_cast<int>(C::kFailedPrecondition),
                  static_cast<int>(C::kInvalidArgument), static_cast<int>(C::kAborted),
                  static_cast<int>(C::kInvalidArgument), static_cast<int>(C::kInvalidArgument), 0,
                  static_cast<int>(C::kFailedPrecondition), 0));
  EXPECT_EQ(LastSeq("a"), 8u);
  EXPECT_EQ(LastSeq("b"), 1u);
  EXPECT_EQ(LastSeq("c"), 0u);
  VerdictFilter fa;
  fa.agent_id = "a";
  EXPECT_EQ(Count(fa), 5u);
  EXPECT_EQ(Count({}), 6u);
  EXPECT_THAT(GroupNames({}), ElementsAre("lebo/mac_address/clear x6"));
}

TEST_P(StoreConformanceTest, NewerClaimFencesOlderGeneration) {
  EXPECT_EQ(store_->StreamGeneration("a").value_or(99), 0u);
  auto g1 = store_->ClaimStream("a", "collector-1");
  ASSERT_THAT(g1, IsOk());
  EXPECT_EQ(*g1, 1u);
  auto g2 = store_->ClaimStream("a", "collector-2");
  ASSERT_THAT(g2, IsOk());
  EXPECT_GT(*g2, *g1);
  EXPECT_EQ(store_->StreamGeneration("a").value_or(0), *g2);
  auto st = WriteOk({Op("a", Events("a", 1, 2), *g1)});
  EXPECT_THAT(st, ElementsAre(StatusIs(absl::StatusCode::kAborted)));
  EXPECT_EQ(LastSeq("a"), 0u);
  st = WriteOk({Op("a", Events("a", 1, 2), *g2), Op("a", Events("a", 3, 3))});
  EXPECT_THAT(st, ElementsAre(IsOk(), IsOk()));  // 0 = unfenced
  // Another agent's claim is independent.
  EXPECT_EQ(store_->ClaimStream("b", "collector-1").value_or(0), 1u);
  EXPECT_THAT(store_->ClaimStream("", "collector-1"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, GapsAndContiguity) {
  EXPECT_THAT(store_->RecordGap("a", 1, 5, "tap"), IsOk());
  EXPECT_EQ(LastSeq("a"), 5u);
  EXPECT_THAT(store_->AppendContiguous("a", Events("a", 6, 7)), IsOk());
  EXPECT_THAT(store_->AppendContiguous("a", Events("a", 6, 6)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->AppendContiguous("a", Events("a", 9, 9)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  std::vector<EventRecord> holey = {Event("a", 8), Event("a", 10)};
  EXPECT_THAT(store_->AppendContiguous("a", holey), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->RecordGap("a", 9, 8, "bad"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->RecordGap("a", 9, 9, "late"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->RecordGap("a", 8, 9, "wire"), IsOk());
  EXPECT_EQ(LastSeq("a"), 9u);
  ASSERT_THAT(store_->UpsertAgent(Agent("a", "dev-1")), IsOk());
  auto agents = store_->ListAgents("", 0, 0);
  ASSERT_THAT(agents, IsOk());
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].stored_up_to, 9u);
  EXPECT_EQ((*agents)[0].gap_events, 7u);
  EXPECT_EQ((*agents)[0].events_stored, 2u);
}

TEST_P(StoreConformanceTest, AgentsNeverGoBackwards) {
  AgentRecord a = Agent("a2", "dev-1");
  a.device_class = "tv";
  a.firmware = "1.0";
  a.agent_version = "0.9";
  a.last_seen_unix_ms = 100;
  a.drops.tap = 5;
  ASSERT_THAT(store_->UpsertAgent(a), IsOk());
  ASSERT_THAT(store_->UpsertAgent(Agent("a1", "dev-2")), IsOk());
  ASSERT_THAT(store_->UpsertAgent(Agent("a3", "dev-1")), IsOk());
  DropCounts drops;
  drops.tap = 3;
  drops.ingress = 2;
  drops.dead_letter = 1;
  EXPECT_THAT(store_->UpdateDrops("a2", drops, 50), IsOk());
  a.firmware = "1.1";
  a.drops.tap = 1;
  a.last_seen_unix_ms = 90;
  ASSERT_THAT(store_->UpsertAgent(a), IsOk());
  EXPECT_THAT(store_->UpdateDrops("nobody", {}, 1), StatusIs(absl::StatusCode::kNotFound));
  auto all = store_->ListAgents("", 0, 0);
  ASSERT_THAT(all, IsOk());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].agent_id, "a1");
  const AgentRecord& got = (*all)[1];
  EXPECT_EQ(got.agent_id, "a2");
  EXPECT_EQ(got.firmware, "1.1");
  EXPECT_EQ(got.last_seen_unix_ms, 100);
  drops.tap = 5;
  EXPECT_EQ(got.drops, drops);
  auto dev1 = store_->ListAgents("dev-1", 1, 1);
  ASSERT_THAT(dev1, IsOk());
  ASSERT_EQ(dev1->size(), 1u);
  EXPECT_EQ((*dev1)[0].agent_id, "a3");
  EXPECT_THAT(store_->ListAgents("dev-1", 10, 2).value_or(std::vector<AgentRecord>(1)), IsEmpty());
}

TEST_P(StoreConformanceTest, GroupSumsAndKeepsTheMostRecentSample) {
  std::vector<EventRecord> ev = Events("a", 1, 4);
  ev[0].count = 3;
  ev[0].first_seen_unix_ms = kT0 - 100;
  ev[1].last_seen_unix_ms = kT0 + 50;  // the newest
  ev[1].digest = "newest";
  ev[2].last_seen_unix_ms = kT0 + 50;  // tie, written later: wins
  ev[2].digest = "newest, later";
  ASSERT_THAT(store_->AppendContiguous("a", {ev[0], ev[1], ev[2]}), IsOk());
  auto g = Groups({});
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].count, 5u);
  EXPECT_EQ(g[0].first_seen_unix_ms, kT0 - 100);
  EXPECT_EQ(g[0].last_seen_unix_ms, kT0 + 50);
  EXPECT_EQ(g[0].sample.digest, "newest, later");
  // A later transaction: an older event changes the sums, not the sample.
  ASSERT_THAT(store_->AppendContiguous("a", {ev[3]}), IsOk());
  g = Groups({});
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].count, 6u);
  EXPECT_EQ(g[0].sample.digest, "newest, later");
  // Every key field splits groups; cookie name and direction too.
  std::vector<EventRecord> more;
  uint64_t seq = 5;
  for (auto mutate : std::vector<std::function<void(EventRecord&)>>{
           [](EventRecord& e) { e.device_class = "phone"; },
           [](EventRecord& e) { e.firmware = "2.0"; },
           [](EventRecord& e) { e.module = "/other.so"; },
           [](EventRecord& e) { e.encoding = "md5"; },
           [](EventRecord& e) { e.dest_host = "other.example.com"; },
           [](EventRecord& e) {
             e.has_cookie = true;
             e.cookie.name = "sid";
             e.cookie.direction = "sent_by_client";
           },
           [](EventRecord& e) {
             e.has_cookie = true;
             e.cookie.name = "sid";
             e.cookie.direction = "set_by_server";
           },
           [](EventRecord& e) { e.statement_version = "v2"; },
           [](EventRecord& e) { e.entry = "e2"; },
           [](EventRecord& e) { e.pid = 9; }}) {  // not a key field
    EventRecord e = Event("a", seq++);
    mutate(e);
    more.push_back(e);
  }
  ASSERT_THAT(store_->AppendContiguous("a", more), IsOk());
  EXPECT_EQ(Groups({}).size(), 10u);
}

TEST_P(StoreConformanceTest, GroupsOrderedByFindingThenRecencyAndPaged) {
  std::vector<EventRecord> ev = Events("a", 1, 5);
  ev[0].verdict = "clear";  // newest clear
  ev[0].last_seen_unix_ms = kT0 + 900;
  ev[1].verdict = "omitted";
  ev[1].finding = "violation";
  ev[1].last_seen_unix_ms = kT0 + 100;
  ev[2].verdict = "local_acquisition";
  ev[2].finding = "observation";
  ev[2].last_seen_unix_ms = kT0 + 800;
  ev[3].verdict = "wrong_recipient";
  ev[3].finding = "violation";
  ev[3].last_seen_unix_ms = kT0 + 200;
  ev[4].verdict = "clear";
  ev[4].data_type = "oaid";
  ev[4].last_seen_unix_ms = kT0 + 300;
  ASSERT_THAT(store_->AppendContiguous("a", ev), IsOk());
  const std::vector<std::string> all = {
      "lebo/mac_address/wrong_recipient x1", "lebo/mac_address/omitted x1",
      "lebo/mac_address/local_acquisition x1", "lebo/mac_address/clear x1", "lebo/oaid/clear x1"};
  VerdictFilter f;
  f.limit = 0;
  EXPECT_EQ(GroupNames(f), all);
  f.limit = 2;
  f.offset = 1;
  EXPECT_THAT(GroupNames(f), ElementsAre(all[1], all[2]));
  f.offset = 4;
  EXPECT_THAT(GroupNames(f), ElementsAre(all[4]));
  f.offset = 5;
  EXPECT_THAT(GroupNames(f), IsEmpty());
  // Computed from the events (agent filter): the same order.
  f = {};
  f.agent_id = "a";
  EXPECT_EQ(GroupNames(f), all);
}

TEST_P(StoreConformanceTest, EveryVerdictFilterField) {
  std::vector<EventRecord> ev = Events("a", 1, 6);
  ev[1].device_id = "dev-2";
  ev[2].device_class = "phone";
  ev[3].firmware = "2.0";
  ev[4].sdk = "onetrack";
  ev[4].data_type = "oaid";
  ev[4].verdict = "no_consent";
  ev[4].finding = "violation";
  ev[4].run_id = "run-1";
  ev[5].verdict = "local_acquisition";
  ev[5].finding = "observation";
  ev[5].run_id = "run-1";
  ASSERT_THAT(store_->AppendContiguous("a", ev), IsOk());
  ASSERT_THAT(store_->AppendContiguous("b", {Event("b", 1)}), IsOk());
  auto n = [&](std::function<void(VerdictFilter&)> set) {
    VerdictFilter f;
    f.limit = 0;
    set(f);
    uint64_t events = 0;
    for (const VerdictGroup& g : Groups(f)) events += g.count;
    EXPECT_EQ(events, Count(f)) << "groups and events disagree";
    return events;
  };
  EXPECT_EQ(n([](VerdictFilter&) {}), 7u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.device_id = "dev-2"; }), 1u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.device_class = "phone"; }), 1u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.firmware = "2.0"; }), 1u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.sdk = "onetrack"; }), 1u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.data_type = "mac_address"; }), 6u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.verdict = "clear"; }), 5u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.violations_only = true; }), 1u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.finding = "observation"; }), 1u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.finding = "clear"; }), 5u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.agent_id = "b"; }), 1u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.run_id = "run-1"; }), 2u);
  EXPECT_EQ(n([](VerdictFilter& f) {
              f.run_id = "run-1";
              f.finding = "violation";
            }),
            1u);
  // Nothing of dev-1/tv/1.0 was last seen in [+3, +5): seq 3 is a phone,
  // seq 4 runs firmware 2.0.
  EXPECT_EQ(n([](VerdictFilter& f) {
              f.since_unix_ms = kT0 + 3;
              f.until_unix_ms = kT0 + 5;
              f.device_id = "dev-1";
              f.data_type = "mac_address";
              f.device_class = "tv";
              f.firmware = "1.0";
            }),
            0u);
  EXPECT_EQ(n([](VerdictFilter& f) { f.since_unix_ms = kT0 + 3; }), 4u);  // a/3..a/6
  EXPECT_EQ(n([](VerdictFilter& f) { f.until_unix_ms = kT0 + 2; }), 2u);  // a/1 and b/1
}

TEST_P(StoreConformanceTest, TimeFiltersOnGroupsUseTheGroupsLastSeen) {
  std::vector<EventRecord> ev = Events("a", 1, 3);
  ev[0].last_seen_unix_ms = kT0 + 10;
  ev[1].last_seen_unix_ms = kT0 + 20;
  ev[2].last_seen_unix_ms = kT0 + 30;
  ev[2].sdk = "other";
  ASSERT_THAT(store_->AppendContiguous("a", ev), IsOk());
  VerdictFilter f;
  f.since_unix_ms = kT0 + 15;
  // lebo's group was last seen at +20: all of it (2 events) counts.
  EXPECT_THAT(GroupNames(f),
              ElementsAre("other/mac_address/clear x1", "lebo/mac_address/clear x2"));
  f.until_unix_ms = kT0 + 30;
  EXPECT_THAT(GroupNames(f), ElementsAre("lebo/mac_address/clear x2"));
  f = {};
  f.until_unix_ms = kT0 + 20;
  EXPECT_THAT(GroupNames(f), IsEmpty());
  // Events are filtered one by one.
  f.since_unix_ms = kT0 + 15;
  f.until_unix_ms = kT0 + 25;
  EXPECT_EQ(Count(f), 1u);
}

TEST_P(StoreConformanceTest, MatrixSumsPerSdkDataTypeVerdict) {
  std::vector<EventRecord> ev = Events("a", 1, 5);
  ev[0].count = 4;
  ev[1].device_id = "dev-2";
  ev[1].last_seen_unix_ms = kT0 + 100;
  ev[2].verdict = "omitted";
  ev[2].finding = "violation";
  ev[3].sdk = "";
  ev[3].data_type = "oaid";
  ev[4].sdk = "adnet";
  ev[4].verdict = "local_acquisition";
  ev[4].finding = "observation";
  ASSERT_THAT(store_->AppendContiguous("a", ev), IsOk());
  auto rows = [&](const VerdictFilter& f) {
    std::vector<std::string> out;
    auto m = store_->QueryMatrix(f);
    EXPECT_THAT(m, IsOk());
    for (const MatrixRow& r : m.value_or(std::vector<MatrixRow>())) {
      out.push_back(absl::StrCat(r.sdk, "/", r.data_type, "/", r.verdict, "/", r.finding, " x",
                                 r.count, " ", r.first_seen_unix_ms - kT0, "..",
                                 r.last_seen_unix_ms - kT0));
    }
    return out;
  };
  EXPECT_THAT(rows({}), ElementsAre("/oaid/clear/clear x1 4..4",
                                    "adnet/mac_address/local_acquisition/observation x1 5..5",
                                    "lebo/mac_address/clear/clear x5 1..100",
                                    "lebo/mac_address/omitted/violation x1 3..3"));
  VerdictFilter f;
  f.device_id = "dev-2";
  EXPECT_THAT(rows(f), ElementsAre("lebo/mac_address/clear/clear x1 2..100"));
  f = {};
  f.finding = "violation";
  EXPECT_THAT(rows(f), ElementsAre("lebo/mac_address/omitted/violation x1 3..3"));
  f = {};
  f.sdk = "lebo";
  f.since_unix_ms = kT0 + 3;  // groups last seen at or after: dev-2's and omitted
  EXPECT_THAT(rows(f), ElementsAre("lebo/mac_address/clear/clear x1 2..100",
                                   "lebo/mac_address/omitted/violation x1 3..3"));
  f = {};
  f.agent_id = "a";
  EXPECT_THAT(store_->QueryMatrix(f), StatusIs(absl::StatusCode::kInvalidArgument));
  f = {};
  f.run_id = "r";
  EXPECT_THAT(store_->QueryMatrix(f), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, HistogramBucketsByHourOfLastSeen) {
  std::vector<EventRecord> ev = Events("a", 1, 5);
  ev[0].last_seen_unix_ms = kT0 + 10;
  ev[1].last_seen_unix_ms = kT0 + kHour - 1;
  ev[1].count = 2;
  ev[2].last_seen_unix_ms = kT0 + kHour;
  ev[3].last_seen_unix_ms = kT0 + 3 * kHour + 5;
  ev[3].verdict = "omitted";
  ev[3].finding = "violation";
  ev[4].last_seen_unix_ms = kT0 + 3 * kHour + 6;
  ev[4].device_id = "dev-2";
  ASSERT_THAT(store_->AppendContiguous("a", ev), IsOk());
  auto rows = [&](const VerdictFilter& f, int64_t bucket) {
    std::vector<std::string> out;
    auto h = store_->QueryHistogram(f, bucket);
    EXPECT_THAT(h, IsOk());
    for (const HistogramRow& r : h.value_or(std::vector<HistogramRow>())) {
      out.push_back(absl::StrCat((r.bucket_start_unix_ms - kT0) / kHour, "h ", r.sdk, "/",
                                 r.verdict, "/", r.finding, " x", r.count));
    }
    return out;
  };
  EXPECT_THAT(rows({}, kHour),
              ElementsAre("0h lebo/clear/clear x3", "1h lebo/clear/clear x1",
                          "3h lebo/clear/clear x1", "3h lebo/omitted/violation x1"));
  EXPECT_THAT(rows({}, 2 * kHour), ElementsAre("0h lebo/clear/clear x4", "2h lebo/clear/clear x1",
                                               "2h lebo/omitted/violation x1"));
  VerdictFilter f;
  f.since_unix_ms = kT0 + kHour + 30;  // its hour (1h) is included
  f.until_unix_ms = kT0 + 3 * kHour;   // bucket starts before it
  EXPECT_THAT(rows(f, kHour), ElementsAre("1h lebo/clear/clear x1"));
  f = {};
  f.device_id = "dev-2";
  EXPECT_THAT(rows(f, kHour), ElementsAre("3h lebo/clear/clear x1"));
  f = {};
  f.finding = "violation";
  EXPECT_THAT(rows(f, kHour), ElementsAre("3h lebo/omitted/violation x1"));
  f = {};
  f.data_type = "oaid";
  EXPECT_THAT(rows(f, kHour), IsEmpty());
  for (int64_t bad : {int64_t{0}, -kHour, kHour / 2, kHour + 1}) {
    EXPECT_THAT(store_->QueryHistogram({}, bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  for (auto set : std::vector<std::function<void(VerdictFilter&)>>{
           [](VerdictFilter& x) { x.device_class = "tv"; },
           [](VerdictFilter& x) { x.firmware = "1"; }, [](VerdictFilter& x) { x.agent_id = "a"; },
           [](VerdictFilter& x) { x.run_id = "r"; }}) {
    VerdictFilter bad;
    set(bad);
    EXPECT_THAT(store_->QueryHistogram(bad, kHour), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST_P(StoreConformanceTest, EventsNewestFirstAndPaged) {
  std::vector<EventRecord> ev = Events("a", 1, 5);
  ev[2].last_seen_unix_ms = kT0 + 100;  // seq 3 is the newest
  ASSERT_THAT(store_->AppendContiguous("a", ev), IsOk());
  VerdictFilter f;
  f.limit = 2;
  f.offset = 1;
  auto got = store_->QueryEvents(f);
  ASSERT_THAT(got, IsOk());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].seq, 5u);
  EXPECT_EQ((*got)[1].seq, 4u);
  f.limit = 0;
  f.offset = 0;
  EXPECT_EQ(store_->QueryEvents(f).value_or(std::vector<EventRecord>()).size(), 5u);
  f.limit = 1;
  EXPECT_EQ(Count(f), 5u);  // limit does not apply to a count
}

TEST_P(StoreConformanceTest, PruneKeepsAggregatesAndAccounting) {
  std::vector<EventRecord> ev = Events("a", 1, 4);
  ev[0].last_seen_unix_ms = kT0 - 2 * 24 * kHour;  // two days before
  ev[1].last_seen_unix_ms = kT0 - 1;               // the day before
  ev[2].last_seen_unix_ms = kT0 + 10;
  ev[3].last_seen_unix_ms = kT0 + 20;
  ASSERT_THAT(store_->AppendContiguous("a", ev), IsOk());
  auto pruned = store_->PruneBefore(kT0 + 15);
  ASSERT_THAT(pruned, IsOk());
  EXPECT_EQ(*pruned, 3u);
  EXPECT_EQ(Count({}), 1u);
  EXPECT_EQ(LastSeq("a"), 4u);
  EXPECT_THAT(GroupNames({}), ElementsAre("lebo/mac_address/clear x4"));
  auto m = store_->QueryMatrix({});
  ASSERT_THAT(m, IsOk());
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].count, 4u);
  auto h = store_->QueryHistogram({}, 24 * kHour);
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(h->size(), 3u);
  // Re-delivery of pruned seqs is still refused on the contiguous path, and
  // the day dropped can be written again.
  EXPECT_THAT(store_->AppendContiguous("a", {Event("a", 2)}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EventRecord old = Event("a", 5);
  old.last_seen_unix_ms = kT0 - 2 * 24 * kHour + 1;
  EXPECT_THAT(store_->AppendContiguous("a", {old}), IsOk());
  EXPECT_EQ(Count({}), 2u);
  EXPECT_EQ(store_->PruneBefore(kT0).value_or(0), 1u);
}

std::vector<Backend> Backends() { return {{"sqlite", OpenSqlite}, {"postgresql", OpenPostgres}}; }

INSTANTIATE_TEST_SUITE_P(AllBackends, StoreConformanceTest, ::testing::ValuesIn(Backends()),
                         [](const ::testing::TestParamInfo<Backend>& p) { return p.param.name; });

}  // namespace
}  // namespace idflow::store

// PostgreSQL specifics of PostgresStore on the private test server: schema
// versions, several stores (collectors) on one database, the pool, day
// partitions, errors. The Store contract itself: store_conformance_test.
#include "collector/store/postgres_store.h"

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
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
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kDay = 86400000;
constexpr int64_t kT0 = 1796083200000;  // 2026-12-01 00:00 UTC

EventRecord Event(const std::string& agent, uint64_t seq, int64_t last_seen = kT0) {
  EventRecord e;
  e.agent_id = agent;
  e.seq = seq;
  e.device_id = "dev-1";
  e.sdk = "lebo";
  e.data_type = "oaid";
  e.verdict = "clear";
  e.finding = "clear";
  e.first_seen_unix_ms = last_seen;
  e.last_seen_unix_ms = last_seen;
  return e;
}

WriteOp Op(const std::string& agent, uint64_t from, uint64_t to, uint64_t generation = 0) {
  WriteOp op;
  op.agent_id = agent;
  op.generation = generation;
  for (uint64_t s = from; s <= to; ++s) op.events.push_back(Event(agent, s));
  return op;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = PostgresServer::Shared();
    ASSERT_THAT(server, IsOk());
    server_ = *server;
    db_ = absl::StrCat("pgtest_", counter_++);
    ASSERT_THAT(server_->CreateDatabase(db_), IsOk());
    url_ = server_->Url(db_);
  }
  std::unique_ptr<PostgresStore> Open(const std::string& suffix = "") {
    auto s = PostgresStore::Open(url_ + suffix);
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : nullptr;
  }
  int64_t QueryInt(const std::string& sql) {
    auto v = server_->Query(db_, sql);
    EXPECT_THAT(v, IsOk()) << sql;
    return v.ok() ? std::stoll(*v) : -1;
  }

  static inline int counter_ = 0;
  PostgresServer* server_ = nullptr;
  std::string db_;
  std::string url_;
};

TEST_F(PostgresStoreTest, MigratesAndRefusesANewerSchema) {
  {
    auto s = Open();
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->SchemaVersion().value_or(0), PostgresStore::kSchemaVersion);
  }
  // Reopening applies nothing twice.
  ASSERT_NE(Open(), nullptr);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM schema_version"), PostgresStore::kSchemaVersion);
  ASSERT_THAT(server_->Query(db_, "INSERT INTO schema_version VALUES (99, 0)"), IsOk());
  auto newer = PostgresStore::Open(url_);
  EXPECT_THAT(newer, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(newer.status().message(), HasSubstr("99"));
}

TEST_F(PostgresStoreTest, CollectorsStartingTogetherMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (PostgresStore::Open(url_ + "?pool=1").ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM schema_version"), PostgresStore::kSchemaVersion);
}

TEST_F(PostgresStoreTest, ErrorsNeverEchoThePassword) {
  // Nothing listens on port 1; then a real server, a database that is not.
  for (const std::string& url :
       {std::string("postgresql://idflow:s3cretpw@127.0.0.1:1/idflow"),
        absl::StrCat("postgres://postgres:s3cretpw@127.0.0.1:", server_->port(), "/missing_db")}) {
    auto s = OpenStore(url);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable)) << url;
    EXPECT_THAT(s.status().message(), Not(HasSubstr("s3cretpw")));
    EXPECT_THAT(s.status().message(), HasSubstr("PostgreSQL store"));
  }
}

TEST_F(PostgresStoreTest, PoolParametersAreIdflowsOwn) {
  // libpq's own parameters pass through; ours are stripped and checked.
  EXPECT_NE(Open("?pool=2&application_name=idflow-test&pool_wait_ms=100"), nullptr);
  EXPECT_THAT(PostgresStore::Open(url_ + "?pool=0"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PostgresStore::Open(url_ + "?pool_wait_ms=x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(QueryInt("SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                     " 'idflow-test'"),
            0);  // that store is closed: its connections went with it
}

// A Write waiting on another session's lock of the agent's stream row holds
// the only pooled connection: other callers wait a bounded time, then get
// UNAVAILABLE; the Write completes once the lock goes.
TEST_F(PostgresStoreTest, StreamRowLockSerialisesWritersAndThePoolWaitIsBounded) {
  auto s = Open("?pool=1&pool_wait_ms=200");
  ASSERT_NE(s, nullptr);
  ASSERT_THAT(s->ClaimStream("a", "c1"), IsOk());
  PGconn* other = PQconnectdb(
      absl::StrCat("host=127.0.0.1 port=", server_->port(), " user=postgres dbname=", db_).c_str());
  ASSERT_EQ(PQstatus(other), CONNECTION_OK);
  PQclear(PQexec(other, "BEGIN"));
  PGresult* r = PQexec(other, "SELECT * FROM streams WHERE agent_id = 'a' FOR UPDATE");
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
  absl::StatusOr<std::vector<absl::Status>> written;
  std::thread writer([&] { written = s->Write({Op("a", 1, 3)}); });
  // Wait (with a deadline) until the store's session waits for the lock.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool waiting = false;
  while (!waiting && std::chrono::steady_clock::now() < deadline) {
    waiting = QueryInt(
                  "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                  " AND datname = current_database()") > 0;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(waiting);
  auto busy = s->LastSeq("b");
  EXPECT_THAT(busy, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(busy.status().message(), HasSubstr("busy"));
  PQclear(PQexec(other, "COMMIT"));
  writer.join();
  PQfinish(other);
  ASSERT_THAT(written, IsOk());
  EXPECT_THAT((*written)[0], IsOk());
  EXPECT_EQ(s->LastSeq("a").value_or(0), 3u);
}

// Two collectors on one database deliver the same agent's stream racing
// each other: every seq is stored exactly once, aggregates agree.
TEST_F(PostgresStoreTest, TwoCollectorsNeverStoreASeqTwice) {
  auto c1 = Open("?pool=2");
  auto c2 = Open("?pool=2");
  ASSERT_NE(c1, nullptr);
  ASSERT_NE(c2, nullptr);
  constexpr uint64_t kLast = 300;
  auto deliver = [&](PostgresStore* s, std::atomic<int>* refused) {
    for (;;) {
      auto last = s->LastSeq("a");
      if (!last.ok() || *last >= kLast) return;
      auto st = s->Write({Op("a", *last + 1, std::min(kLast, *last + 10))});
      if (st.ok() && !(*st)[0].ok()) {
        EXPECT_THAT((*st)[0], StatusIs(absl::StatusCode::kFailedPrecondition));
        ++*refused;
      }
    }
  };
  std::atomic<int> refused{0};
  std::thread t1(deliver, c1.get(), &refused);
  std::thread t2(deliver, c2.get(), &refused);
  t1.join();
  t2.join();
  EXPECT_EQ(QueryInt("SELECT count(*) FROM events"), static_cast<int64_t>(kLast));
  EXPECT_EQ(QueryInt("SELECT count(DISTINCT seq) FROM events"), static_cast<int64_t>(kLast));
  EXPECT_EQ(QueryInt("SELECT sum(total) FROM verdict_groups"), static_cast<int64_t>(kLast));
  EXPECT_EQ(QueryInt("SELECT sum(total) FROM verdict_matrix"), static_cast<int64_t>(kLast));
  EXPECT_EQ(QueryInt("SELECT sum(total) FROM verdict_hourly"), static_cast<int64_t>(kLast));
  EXPECT_EQ(QueryInt("SELECT sum(total) FROM verdict_hourly_sdk"), static_cast<int64_t>(kLast));
  EXPECT_EQ(QueryInt("SELECT events_stored FROM streams WHERE agent_id = 'a'"),
            static_cast<int64_t>(kLast));
}

TEST_F(PostgresStoreTest, AClaimOnAnotherCollectorFencesWrites) {
  auto c1 = Open();
  auto c2 = Open();
  ASSERT_NE(c1, nullptr);
  ASSERT_NE(c2, nullptr);
  auto g1 = c1->ClaimStream("a", "c1");
  ASSERT_THAT(g1, IsOk());
  EXPECT_THAT(c1->Write({Op("a", 1, 2, *g1)}).value_or(std::vector<absl::Status>(1)),
              ::testing::ElementsAre(IsOk()));
  auto g2 = c2->ClaimStream("a", "c2");
  ASSERT_THAT(g2, IsOk());
  EXPECT_EQ(*g2, *g1 + 1);
  EXPECT_EQ(c1->StreamGeneration("a").value_or(0), *g2);
  EXPECT_THAT(c1->Write({Op("a", 3, 4, *g1)}).value_or(std::vector<absl::Status>(1)),
              ::testing::ElementsAre(StatusIs(absl::StatusCode::kAborted)));
  EXPECT_THAT(c2->Write({Op("a", 3, 4, *g2)}).value_or(std::vector<absl::Status>(1)),
              ::testing::ElementsAre(IsOk()));
  EXPECT_EQ(
      server_->Query(db_, "SELECT collector_id FROM streams WHERE agent_id = 'a'").value_or(""),
      "c2");
}

TEST_F(PostgresStoreTest, DayPartitionsAreCreatedOnDemandAndDroppedWhole) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  WriteOp op;
  op.agent_id = "a";
  op.events = {Event("a", 1, kT0 - 2 * kDay), Event("a", 2, kT0 - kDay + 5), Event("a", 3, kT0),
               Event("a", 4, -5),  // before 1970: the default partition
               Event("a", 5, kT0 + 7)};
  ASSERT_THAT(s->Write({op}).value_or(std::vector<absl::Status>(1)),
              ::testing::ElementsAre(IsOk()));
  const std::string parts = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass";
  EXPECT_EQ(QueryInt(parts), 4);  // three days and the default
  EXPECT_EQ(QueryInt("SELECT count(*) FROM events_default"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM events_p20261201"), 2);
  // Days wholly before the cut-off's day are dropped; the rest deleted.
  auto pruned = s->PruneBefore(kT0 + 1);
  ASSERT_THAT(pruned, IsOk());
  EXPECT_EQ(*pruned, 4u);
  EXPECT_EQ(QueryInt(parts), 2);
  EXPECT_EQ(s->CountEvents({}).value_or(0), 1u);
  // A second store learns of the dropped day by writing it again.
  auto other = Open();
  ASSERT_NE(other, nullptr);
  op.events = {Event("a", 6, kT0 - 2 * kDay)};
  EXPECT_THAT(other->Write({op}).value_or(std::vector<absl::Status>(1)),
              ::testing::ElementsAre(IsOk()));
  EXPECT_EQ(QueryInt(parts), 3);
}

TEST_F(PostgresStoreTest, AnOpWithBytesPostgreSqlRefusesFailsAlone) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  WriteOp bad = Op("b", 1, 2);
  bad.events[1].snippet = "\xff\xfe not UTF-8";
  auto st = s->Write({Op("a", 1, 2), bad, Op("a", 3, 3)});
  ASSERT_THAT(st, IsOk());
  EXPECT_THAT((*st)[0], IsOk());
  EXPECT_THAT((*st)[1], StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((*st)[1].message(), HasSubstr("SQLSTATE"));
  EXPECT_THAT((*st)[2], IsOk());
  EXPECT_EQ(s->LastSeq("b").value_or(99), 0u);
  EXPECT_EQ(s->LastSeq("a").value_or(0), 3u);
  EXPECT_EQ(QueryInt("SELECT sum(total) FROM verdict_groups"), 3);
}

TEST_F(PostgresStoreTest, ConnectionsLostAreReopened) {
  auto s = Open("?pool=2");
  ASSERT_NE(s, nullptr);
  ASSERT_THAT(s->LastSeq("a"), IsOk());
  ASSERT_THAT(server_->Query(db_,
                             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                             " WHERE datname = current_database() AND pid <> pg_backend_pid()"),
              IsOk());
  // Each pooled connection fails once (UNAVAILABLE), then is reopened.
  int failures = 0;
  absl::StatusOr<uint64_t> last = absl::UnknownError("not tried");
  for (int i = 0; i < 5 && !last.ok(); ++i) {
    last = s->LastSeq("a");
    if (!last.ok()) {
      EXPECT_THAT(last, StatusIs(absl::StatusCode::kUnavailable));
      ++failures;
    }
  }
  EXPECT_THAT(last, IsOk());
  EXPECT_LE(failures, 2);
  EXPECT_THAT(s->Write({Op("a", 1, 1)}).value_or(std::vector<absl::Status>(1)),
              ::testing::ElementsAre(IsOk()));
}

}  // namespace
}  // namespace idflow::store

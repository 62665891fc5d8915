// PostgreSQL back-end of Store, for several collectors sharing one database.
//
// URL: postgresql://[user[:password]@]host[:port]/dbname[?params], libpq's
// own URI with two idflow parameters removed before it reaches libpq:
// `pool` (connections, default 4) and `pool_wait_ms` (how long a caller waits
// for a free connection before UNAVAILABLE, default 10000).
//
// Concurrency: a bounded pool of connections; every method may be called
// from any thread. Between collectors, each agent's `streams` row (last
// accounted seq, claim generation) is locked FOR UPDATE by Write, in agent
// order, so contiguity is checked and extended atomically and no (agent_id,
// seq) is stored twice; aggregate rows are upserted in key order, so
// concurrent writers cannot deadlock (a deadlock or serialization failure is
// retried a few times anyway, then UNAVAILABLE).
//
// Durability: synchronous_commit is left on; Write returns after the commit
// is flushed, which is what the collector's ack promises.
//
// Events are range-partitioned by day of last_seen_ms (partitions created on
// demand, plus a default partition); PruneBefore drops whole days.
#ifndef IDFLOW_COLLECTOR_STORE_POSTGRES_STORE_H_
#define IDFLOW_COLLECTOR_STORE_POSTGRES_STORE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/store/store.h"

struct pg_conn;

namespace idflow::store {

class PostgresStore final : public Store {
 public:
  // The schema version this build writes; older databases are migrated
  // forward, newer ones refused (FAILED_PRECONDITION).
  static constexpr int kSchemaVersion = 2;

  // Connects the pool and migrates the schema. Errors never carry the
  // password.
  static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(const std::string& url);

  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  absl::StatusOr<std::vector<absl::Status>> Write(const std::vector<WriteOp>& ops) override;
  absl::StatusOr<uint64_t> ClaimStream(const std::string& agent_id,
                                       const std::string& collector_id) override;
  absl::StatusOr<uint64_t> StreamGeneration(const std::string& agent_id) override;
  absl::StatusOr<uint64_t> Append(const std::vector<EventRecord>& events) override;
  absl::Status AppendContiguous(const std::string& agent_id,
                                const std::vector<EventRecord>& events) override;
  absl::Status RecordGap(const std::string& agent_id, uint64_t from, uint64_t to,
                         const std::string& cause) override;
  absl::StatusOr<uint64_t> LastSeq(const std::string& agent_id) override;
  absl::Status UpsertAgent(const AgentRecord& agent) override;
  absl::Status UpdateDrops(const std::string& agent_id, const DropCounts& drops,
                           int64_t seen_unix_ms) override;
  absl::StatusOr<std::vector<AgentRecord>> ListAgents(const std::string& device_id, size_t limit,
                                                      size_t offset) override;
  absl::StatusOr<std::vector<VerdictGroup>> QueryVerdicts(const VerdictFilter& f) override;
  absl::StatusOr<std::vector<MatrixRow>> QueryMatrix(const VerdictFilter& f) override;
  absl::StatusOr<std::vector<HistogramRow>> QueryHistogram(const VerdictFilter& f,
                                                           int64_t bucket_ms) override;
  absl::StatusOr<std::vector<EventRecord>> QueryEvents(const VerdictFilter& f) override;
  absl::StatusOr<uint64_t> CountEvents(const VerdictFilter& f) override;
  absl::StatusOr<uint64_t> PruneBefore(int64_t before_unix_ms) override;

  // Schema version recorded in the database (tests and diagnostics).
  absl::StatusOr<int> SchemaVersion();
  // The events' COPY text rows and their column list, as Write sends them
  // (benchmarks compare Write with a bare COPY of the same rows).
  static std::string CopyRows(const std::vector<EventRecord>& events);
  static const char* CopyColumns();
  // The same rows as text parameters, CopyColumns() order, row after row
  // (the multi-row INSERT the benchmark compares COPY with).
  static std::vector<std::string> InsertParams(const std::vector<EventRecord>& events);

  // host:port/dbname, without credentials: what error messages name.
  const std::string& where() const { return where_; }

  class Conn;   // one pooled connection and its per-session state
  class Batch;  // aggregates of one transaction, summed in memory

 private:
  PostgresStore() = default;

  // Borrows a connection for the life of the returned handle.
  class Lease;
  absl::StatusOr<Lease> Acquire();
  void Release(Conn* c);
  // Runs `body` in a transaction on a pooled connection, retrying
  // serialization failures and deadlocks a bounded number of times.
  // `days`: day partitions to create first (short transactions of their own,
  // so the write transaction never waits on the parent's exclusive lock).
  absl::Status InTransaction(const std::function<absl::Status(Conn&)>& body,
                             const std::set<int64_t>& days = {});
  // One statement outside any explicit transaction.
  absl::Status WithConn(const std::function<absl::Status(Conn&)>& body);

  absl::Status Migrate(Conn& c);
  // Creates the session's staging table (per connection, emptied at commit).
  absl::Status EnsureSession(Conn& c);
  // Creates the day partitions `days` needs (its own short transactions, so
  // the write transaction never holds the parent's exclusive lock).
  absl::Status EnsurePartitions(Conn& c, const std::set<int64_t>& days);
  absl::Status FlushAggregates(Conn& c, Batch& batch);
  // Write's body; `out` receives each op's status.
  absl::Status WriteTx(Conn& c, const std::vector<WriteOp>& ops, std::vector<absl::Status>& out);

  std::string where_;
  std::vector<std::unique_ptr<Conn>> conns_;
  absl::Duration pool_wait_ = absl::Seconds(10);
  // std::mutex, not absl::Mutex: Debian's abseil carries no ThreadSanitizer
  // annotations, so TSan could not see the pool's hand-over of a connection.
  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::vector<Conn*> idle_;       // guarded by mu_
  std::set<int64_t> known_days_;  // guarded by mu_: partitions known to exist
};

}  // namespace idflow::store

#endif  // IDFLOW_COLLECTOR_STORE_POSTGRES_STORE_H_

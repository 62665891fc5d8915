// SQLite back-end of Store. One file, WAL journal, synchronous=FULL.
//
// Durability: the collector acks a batch only after Write returns OK for it,
// so a committed transaction must survive power loss. In WAL mode
// synchronous=FULL fsyncs the WAL at every commit (NORMAL would only fsync at
// checkpoints and could lose the last acked batches), which is what that ack
// promises.
//
// Concurrency: a writer connection and a read-only query connection, each
// guarded by its own mutex. Writes (the collector's committer) are
// serialised; queries (query threads, HTTP) are serialised among themselves
// and read the last commit beside a write transaction (WAL). SQLite's own
// locking plus busy_timeout handles other processes (e.g. an operator's
// sqlite3 shell or idflowctl reading the file). Only one collector may write
// a file: it opens with exclusive_writer, which holds a lock on PATH.lock.
//
// Aggregates: verdict groups, the SDK x data-type matrix and hourly counts
// are tables updated in the same transaction as the events, from rows summed
// in memory per transaction, so queries never scan the events (except for
// agent_id / run_id filters, which the aggregates do not keep).
#ifndef IDFLOW_COLLECTOR_STORE_SQLITE_STORE_H_
#define IDFLOW_COLLECTOR_STORE_SQLITE_STORE_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace idflow::store {

struct SqliteOpenOptions {
  // Take a non-blocking exclusive flock on PATH.lock (created 0600, holding
  // this process's pid) for the store's life: a second writer on the file is
  // refused with FAILED_PRECONDITION naming the holder. Readers that open
  // without it (idflowctl) are unaffected.
  bool exclusive_writer = false;
};

class SqliteStore final : public Store {
 public:
  // The schema version this build writes; older files are migrated forward,
  // newer ones are refused.
  static constexpr int kSchemaVersion = 6;

  // Opens (creating if needed) the database file at `path` and migrates it.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                           const SqliteOpenOptions& options = {});

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

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
  absl::StatusOr<std::vector<EventRecord>> QueryEvents(const VerdictFilter& f) override;
  absl::StatusOr<uint64_t> CountEvents(const VerdictFilter& f) override;
  absl::StatusOr<std::vector<MatrixRow>> QueryMatrix(const VerdictFilter& f) override;
  absl::StatusOr<std::vector<HistogramRow>> QueryHistogram(const VerdictFilter& f,
                                                           int64_t bucket_ms) override;
  absl::StatusOr<uint64_t> PruneBefore(int64_t before_unix_ms) override;

  // Schema version recorded in the file (for tests and diagnostics).
  absl::StatusOr<int> SchemaVersion();

  const std::string& path() const { return path_; }

 private:
  class Batch;  // aggregates of one transaction, summed in memory

  SqliteStore(std::string path, sqlite3* db);

  absl::Status Init();
  absl::Status Migrate();
  absl::Status Exec(const char* sql);
  // Prepared once per distinct SQL text and reused; reset before returning.
  // `read`: on the queries' connection (hold read_mu_), else the writer's
  // (hold mu_).
  absl::StatusOr<sqlite3_stmt*> Prepare(const std::string& sql, bool read = false);
  // `db`: the connection that failed (default: the writer's).
  absl::Status Error(int rc, const std::string& what, sqlite3* db = nullptr);
  absl::StatusOr<int> SchemaVersionLocked();
  absl::StatusOr<uint64_t> LastSeqLocked(const std::string& agent_id);
  // FAILED_PRECONDITION unless `first` is LastSeq + 1.
  absl::Status CheckFollowsLocked(const std::string& agent_id, uint64_t first);
  // BEGIN IMMEDIATE, body, COMMIT; ROLLBACK on any error.
  absl::Status InTransactionLocked(const std::function<absl::Status()>& body);
  // Runs `sql` (cached) to completion with no parameters.
  absl::Status StepLocked(const char* sql, const char* what);
  // One op of Write inside its savepoint; the transaction is open.
  absl::Status WriteOpLocked(const WriteOp& op, Batch& batch);
  absl::StatusOr<std::vector<absl::Status>> WriteLocked(const std::vector<WriteOp>& ops);
  absl::StatusOr<uint64_t> GenerationLocked(const std::string& agent_id);
  // One integer column of the agent's streams row (`sql` selects it); 0 when
  // the agent has none.
  absl::StatusOr<uint64_t> StreamFieldLocked(const char* sql, const std::string& agent_id,
                                             const char* what);
  // Inserts the events; with skip_duplicates an (agent_id, seq) already
  // stored is skipped, and `inserted` (if set) lists the rows added.
  absl::Status InsertEventsLocked(const std::vector<EventRecord>& events, bool skip_duplicates,
                                  Batch& batch, std::vector<const EventRecord*>* inserted);
  // Adds to an agent's accounting: last seq, stored events, gap events.
  absl::Status AdvanceStreamLocked(const std::string& agent_id, uint64_t last_seq, uint64_t events,
                                   uint64_t gap_events);
  // Writes the batch's summed aggregates (groups, matrix, hourly).
  absl::Status FlushAggregatesLocked(Batch& batch);

  const std::string path_;
  std::mutex mu_;  // std::mutex: visible to ThreadSanitizer
  sqlite3* db_;
  std::map<std::string, sqlite3_stmt*> stmts_;
  // The queries' own connection (read-only), its lock and statements.
  std::mutex read_mu_;
  sqlite3* read_db_ = nullptr;
  std::map<std::string, sqlite3_stmt*> read_stmts_;
  // Long statement texts built once: [0] plain insert, [1] skipping duplicates.
  const std::string insert_sql_[2];
  const std::string group_upsert_sql_;
  int lock_fd_ = -1;  // PATH.lock, held for the store's life (exclusive_writer)
};

// Exact, human-readable list encoding used for scenarios:
// elements joined by ',', with '\' and ',' escaped by '\'. An empty list is
// stored as SQL NULL so that {""} and {} stay distinct. Exposed for tests.
std::string EncodeList(const std::vector<std::string>& items);
// The same into `out` (replaced), reusing its capacity.
void EncodeListTo(const std::vector<std::string>& items, std::string& out);
std::vector<std::string> DecodeList(const std::string& encoded);

}  // namespace idflow::store

#endif  // IDFLOW_COLLECTOR_STORE_SQLITE_STORE_H_

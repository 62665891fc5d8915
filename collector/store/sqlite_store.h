// SQLite back-end of Store. One file, WAL journal, synchronous=FULL.
//
// Durability: the collector acks a batch only after Append returns OK, so a
// committed transaction must survive power loss. In WAL mode synchronous=FULL
// fsyncs the WAL at every commit (NORMAL would only fsync at checkpoints and
// could lose the last acked batches), which is what that ack promises.
//
// Concurrency: one connection guarded by a mutex. Append (gRPC ingest threads)
// and the queries (query threads, HTTP) are serialised; SQLite's own locking
// plus busy_timeout handles other processes (e.g. an operator's sqlite3 shell).
// A reader connection beside the writer is the obvious next step if queries
// ever need to run concurrently with ingest.
#ifndef IDFLOW_COLLECTOR_STORE_SQLITE_STORE_H_
#define IDFLOW_COLLECTOR_STORE_SQLITE_STORE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <mutex>
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace idflow::store {

class SqliteStore final : public Store {
 public:
  // The schema version this build writes; older files are migrated forward,
  // newer ones are refused.
  static constexpr int kSchemaVersion = 4;

  // Opens (creating if needed) the database file at `path` and migrates it.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

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

  // Schema version recorded in the file (for tests and diagnostics).
  absl::StatusOr<int> SchemaVersion();

  const std::string& path() const { return path_; }

 private:
  SqliteStore(std::string path, sqlite3* db);

  absl::Status Init();
  absl::Status Migrate();
  absl::Status Exec(const char* sql);
  // Prepared once per distinct SQL text and reused; reset before returning.
  absl::StatusOr<sqlite3_stmt*> Prepare(const std::string& sql);
  absl::Status Error(int rc, const std::string& what);
  absl::StatusOr<int> SchemaVersionLocked();
  absl::StatusOr<uint64_t> LastSeqLocked(const std::string& agent_id);
  // FAILED_PRECONDITION unless `first` is LastSeq + 1.
  absl::Status CheckFollowsLocked(const std::string& agent_id, uint64_t first);
  // BEGIN IMMEDIATE, body, COMMIT; ROLLBACK on any error.
  absl::Status InTransactionLocked(const std::function<absl::Status()>& body);

  const std::string path_;
  std::mutex mu_;  // std::mutex: visible to ThreadSanitizer
  sqlite3* db_;
  std::map<std::string, sqlite3_stmt*> stmts_;
};

// Exact, human-readable list encoding used for scenarios:
// elements joined by ',', with '\' and ',' escaped by '\'. An empty list is
// stored as SQL NULL so that {""} and {} stay distinct. Exposed for tests.
std::string EncodeList(const std::vector<std::string>& items);
std::vector<std::string> DecodeList(const std::string& encoded);

}  // namespace idflow::store

#endif  // IDFLOW_COLLECTOR_STORE_SQLITE_STORE_H_

// A private PostgreSQL server for tests and benchmarks: initdb into a fresh
// temporary folder, postgres on 127.0.0.1 (a free port) and a unix socket in
// that folder, trust authentication. Stopped (fast shutdown) and its folder
// removed when destroyed. Running as root, the server runs as the `postgres`
// system user (PostgreSQL refuses root); otherwise as the caller.
#ifndef IDFLOW_TESTS_TESTING_POSTGRES_SERVER_H_
#define IDFLOW_TESTS_TESTING_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"

namespace idflow::testing {

struct PostgresServerOptions {
  // fsync off makes the suite fast; benchmarks keep it on (real durability).
  bool fsync = false;
};

class PostgresServer {
 public:
  // Finds the newest /usr/lib/postgresql/*/bin (or $IDFLOW_PG_BIN), runs
  // initdb and starts the server, waiting (with a deadline) until it accepts
  // connections. FAILED_PRECONDITION when PostgreSQL is not installed.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(
      const PostgresServerOptions& options = {});

  // One server per process for the test suite, started on first use (fsync
  // off) and stopped at exit. The status says why it could not start.
  static absl::StatusOr<PostgresServer*> Shared();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // postgresql://postgres@127.0.0.1:PORT/DBNAME
  std::string Url(const std::string& dbname) const;
  // Creates database `name` (letters, digits, '_').
  absl::Status CreateDatabase(const std::string& name);
  // Creates a database with a name unique in this process, prefix_N, and
  // returns its URL: each test gets its own.
  absl::StatusOr<std::string> CreateFreshDatabase(const std::string& prefix);
  // Runs one SQL command on `dbname` (test set-up and inspection); returns
  // the first column of the first row, or "" when there is none.
  absl::StatusOr<std::string> Query(const std::string& dbname, const std::string& sql);

 private:
  PostgresServer() = default;
  std::string LogTail() const;
  SpawnOptions SpawnOptionsFor(const std::string& log_name) const;

  std::string dir_;  // temporary folder: data/, the socket, logs
  int port_ = 0;
  pid_t pid_ = -1;
  uid_t uid_ = 0;  // the server's user when started as root
  gid_t gid_ = 0;
  bool drop_privileges_ = false;
};

}  // namespace idflow::testing

#endif  // IDFLOW_TESTS_TESTING_POSTGRES_SERVER_H_

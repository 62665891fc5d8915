#include "tests/testing/postgres_server.h"

#include <glob.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/subprocess.h"

namespace idflow::testing {
namespace {

// The newest installed server's bin folder, or $IDFLOW_PG_BIN.
absl::StatusOr<std::string> FindBin() {
  if (const char* env = getenv("IDFLOW_PG_BIN"); env != nullptr && *env != '\0') {
    if (access((std::string(env) + "/postgres").c_str(), X_OK) == 0) return std::string(env);
    return absl::FailedPreconditionError(
        absl::StrCat("IDFLOW_PG_BIN=", env, " holds no executable postgres"));
  }
  glob_t g{};
  std::string best;
  int best_version = -1;
  if (glob("/usr/lib/postgresql/*/bin/postgres", 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      std::string path = g.gl_pathv[i];
      std::string version = path.substr(strlen("/usr/lib/postgresql/"));
      int v = atoi(version.c_str());
      if (v > best_version && access(path.c_str(), X_OK) == 0) {
        best_version = v;
        best = path.substr(0, path.size() - strlen("/postgres"));
      }
    }
  }
  globfree(&g);
  if (best.empty()) {
    return absl::FailedPreconditionError(
        "PostgreSQL server not installed: no /usr/lib/postgresql/*/bin/postgres (install the "
        "postgresql package: scripts/install-deps.sh lists it)");
  }
  return best;
}

std::string ConnInfo(const std::string& dir, int port, const std::string& dbname) {
  // The unix socket in the private folder (named after the port).
  return absl::StrCat("host=", dir, " port=", port, " user=postgres dbname=", dbname,
                      " connect_timeout=5");
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(
    const PostgresServerOptions& options) {
  auto bin = FindBin();
  if (!bin.ok()) return bin.status();
  std::unique_ptr<PostgresServer> s(new PostgresServer());
  auto dir = MakeTempDir("idflow_pg_");
  if (!dir.ok()) return dir.status();
  s->dir_ = *dir;
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "running as root and there is no `postgres` system user to run the test server as");
    }
    s->drop_privileges_ = true;
    s->uid_ = pw->pw_uid;
    s->gid_ = pw->pw_gid;
    if (chown(s->dir_.c_str(), s->uid_, s->gid_) != 0) {
      return absl::InternalError(absl::StrCat("chown ", s->dir_, ": ", strerror(errno)));
    }
  }
  // initdb: trust authentication, UTF-8, no fsync of the fresh cluster.
  const std::string data = s->dir_ + "/data";
  auto initdb = RunAndWait({*bin + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E",
                            "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                           s->SpawnOptionsFor("initdb.log"), std::chrono::seconds(120));
  if (!initdb.ok()) return initdb.status();
  if (*initdb != 0) {
    return absl::InternalError(absl::StrCat("initdb failed (status ", *initdb,
                                            "): ", FileTail(s->dir_ + "/initdb.log", 100000)));
  }
  const std::string fsync = options.fsync ? "on" : "off";
  PostgresServer* server = s.get();
  auto started = StartServerOnFreePort(ServerSpec{
      .name = "postgres",
      .spawn =
          [&](int port) {
            return Spawn(
                {*bin + "/postgres", "-D", data, "-k", server->dir_, "-p", absl::StrCat(port), "-c",
                 "listen_addresses=127.0.0.1", "-c", "fsync=" + fsync, "-c",
                 "full_page_writes=" + fsync, "-c", "max_connections=200", "-c",
                 "shared_buffers=128MB", "-c", "logging_collector=off"},
                server->SpawnOptionsFor("postgres.log"));
          },
      // Answers over TCP.
      .ready =
          [](int port) {
            const std::string info =
                absl::StrCat("host=127.0.0.1 port=", port, " user=postgres dbname=postgres");
            return PQping(info.c_str()) == PQPING_OK;
          },
      .log_tail = [server] { return server->LogTail(); },
  });
  if (!started.ok()) return started.status();
  s->pid_ = started->pid;
  s->port_ = started->port;
  return s;
}

std::string PostgresServer::LogTail() const { return FileTail(dir_ + "/postgres.log"); }

SpawnOptions PostgresServer::SpawnOptionsFor(const std::string& log_name) const {
  return SpawnOptions{
      .log = dir_ + "/" + log_name, .drop_privileges = drop_privileges_, .uid = uid_, .gid = gid_};
}

PostgresServer::~PostgresServer() {
  // SIGINT: fast shutdown (disconnect clients, checkpoint, exit).
  StopProcess(pid_, SIGINT, std::chrono::seconds(30));
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PostgresServer::Url(const std::string& dbname) const {
  return absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/", dbname);
}

absl::StatusOr<std::string> PostgresServer::Query(const std::string& dbname,
                                                  const std::string& sql) {
  PGconn* conn = PQconnectdb(ConnInfo(dir_, port_, dbname).c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("connect to test server: ", msg));
  }
  PGresult* res = PQexec(conn, sql.c_str());
  ExecStatusType st = PQresultStatus(res);
  absl::StatusOr<std::string> out;
  if (st == PGRES_TUPLES_OK) {
    out = PQntuples(res) > 0 && PQnfields(res) > 0 ? std::string(PQgetvalue(res, 0, 0)) : "";
  } else if (st == PGRES_COMMAND_OK) {
    out = std::string();
  } else {
    out = absl::InternalError(absl::StrCat("test server: ", sql, ": ", PQerrorMessage(conn)));
  }
  PQclear(res);
  PQfinish(conn);
  return out;
}

absl::Status PostgresServer::CreateDatabase(const std::string& name) {
  for (char c : name) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return absl::InvalidArgumentError(absl::StrCat("database name \"", name, "\""));
    }
  }
  return Query("postgres", absl::StrCat("CREATE DATABASE ", name)).status();
}

absl::StatusOr<std::string> PostgresServer::CreateFreshDatabase(const std::string& prefix) {
  static std::atomic<int> counter{0};
  const std::string name = absl::StrCat(prefix, "_", counter.fetch_add(1));
  absl::Status st = CreateDatabase(name);
  if (!st.ok()) return st;
  return Url(name);
}

absl::StatusOr<PostgresServer*> PostgresServer::Shared() {
  // Started once; destroyed at exit, which stops the server.
  static auto* server = new absl::StatusOr<std::unique_ptr<PostgresServer>>(Start());
  static struct Stopper {
    ~Stopper() {
      if (server->ok()) server->value().reset();
    }
  } stopper;
  if (!server->ok()) return server->status();
  return server->value().get();
}

}  // namespace idflow::testing

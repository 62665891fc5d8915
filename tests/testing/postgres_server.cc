#include "tests/testing/postgres_server.h"

#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace idflow::testing {
namespace {

using Clock = std::chrono::steady_clock;

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

// A port free at the time of the call: the kernel picks it (bind to 0).
absl::StatusOr<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", strerror(err)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Forks and execs argv[0] with stdout/stderr appended to `log`. As root the
// child becomes uid/gid first; it dies with the parent (PDEATHSIG is set
// after the uid change, which clears it).
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args, const std::string& log, bool drop,
                            uid_t uid, gid_t gid) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError(absl::StrCat("open ", log, ": ", strerror(errno)));
  if (drop && fchown(log_fd, uid, gid) != 0) {
    int err = errno;
    close(log_fd);
    return absl::InternalError(absl::StrCat("chown ", log, ": ", strerror(err)));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(err)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    if (drop && (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) _exit(126);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the parent died before prctl
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  return pid;
}

// Waits for `pid` to exit, up to `timeout`; -1 when it is still running.
int WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return 0;
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
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
  std::string tmpl = (std::filesystem::temp_directory_path() / "idflow_pg_XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
  }
  s->dir_ = tmpl;
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
  auto initdb = Spawn({*bin + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                       "--locale=C", "--no-sync", "--no-instructions"},
                      s->dir_ + "/initdb.log", s->drop_privileges_, s->uid_, s->gid_);
  if (!initdb.ok()) return initdb.status();
  int status = WaitExit(*initdb, std::chrono::seconds(120));
  if (status != 0) {
    if (status == -1) kill(*initdb, SIGKILL);
    std::ifstream in(s->dir_ + "/initdb.log");
    std::stringstream log;
    log << in.rdbuf();
    return absl::InternalError(absl::StrCat("initdb failed (status ", status, "): ", log.str()));
  }
  // The port is free when picked; another process may take it before the
  // server binds, so a failed start is retried on a new port.
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    last = s->Launch(*bin, options);
    if (last.ok()) return s;
  }
  return last;
}

absl::Status PostgresServer::Launch(const std::string& bin, const PostgresServerOptions& options) {
  auto port = FreePort();
  if (!port.ok()) return port.status();
  port_ = *port;
  const std::string fsync = options.fsync ? "on" : "off";
  auto pid = Spawn(
      {bin + "/postgres", "-D", dir_ + "/data", "-k", dir_, "-p", absl::StrCat(port_), "-c",
       "listen_addresses=127.0.0.1", "-c", "fsync=" + fsync, "-c", "full_page_writes=" + fsync,
       "-c", "max_connections=200", "-c", "shared_buffers=128MB", "-c", "logging_collector=off"},
      dir_ + "/postgres.log", drop_privileges_, uid_, gid_);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  absl::Status ready = WaitReady();
  if (!ready.ok()) {
    kill(pid_, SIGKILL);
    WaitExit(pid_, std::chrono::seconds(10));
    pid_ = -1;
  }
  return ready;
}

absl::Status PostgresServer::WaitReady() {
  // Polls until the server answers over TCP, or exits, or the deadline.
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  const std::string info =
      absl::StrCat("host=127.0.0.1 port=", port_, " user=postgres dbname=postgres");
  while (Clock::now() < deadline) {
    if (PQping(info.c_str()) == PQPING_OK) return absl::OkStatus();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      return absl::UnavailableError(absl::StrCat("postgres exited (status ", status,
                                                 ") before accepting connections on ", port_, ": ",
                                                 LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("postgres not ready on port ", port_, " after 60 s: ", LogTail()));
}

std::string PostgresServer::LogTail() const {
  std::ifstream in(dir_ + "/postgres.log");
  std::stringstream log;
  log << in.rdbuf();
  std::string s = log.str();
  return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
}

PostgresServer::~PostgresServer() {
  if (pid_ > 0) {
    kill(pid_, SIGINT);  // fast shutdown: disconnect clients, checkpoint, exit
    if (WaitExit(pid_, std::chrono::seconds(30)) == -1) {
      kill(pid_, SIGKILL);
      WaitExit(pid_, std::chrono::seconds(10));
    }
  }
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

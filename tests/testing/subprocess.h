// Child processes for test helpers (PostgresServer, TlsServer) and tests:
// free loopback ports, programs on PATH, spawning with output to a log file,
// waiting with a deadline.
#ifndef IDFLOW_TESTS_TESTING_SUBPROCESS_H_
#define IDFLOW_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace idflow::testing {

// A TCP port on 127.0.0.1 free at the time of the call (the kernel picks it:
// bind to port 0). Another process may take it before the caller binds.
absl::StatusOr<int> FreeLoopbackPort();

// The executable `name` on $PATH (or `name` itself when it holds a '/'), or
// "" when there is none.
std::string FindProgram(const std::string& name);

// A fresh folder $TMPDIR/<prefix>XXXXXX.
absl::StatusOr<std::string> MakeTempDir(const std::string& prefix);

// The last `max_bytes` of a file ("" when it cannot be read).
std::string FileTail(const std::string& path, size_t max_bytes = 2000);

struct SpawnOptions {
  // stdout and stderr are appended to this file; stdin is /dev/null.
  std::string log;
  // As root: the child becomes uid/gid (no supplementary groups) first.
  bool drop_privileges = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Forks and execs args[0] (a path: see FindProgram). The child dies with the
// calling thread (PR_SET_PDEATHSIG, set after any uid change, which clears
// it).
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args, const SpawnOptions& options);

// Waits for `pid` to exit, up to `timeout`: its wait status, or -1 when it is
// still running (0 when it is not a child any more).
int WaitExit(pid_t pid, std::chrono::milliseconds timeout);

// Spawns args and waits for it to exit, up to `timeout`: its wait status,
// or -1 when it was still running (then it is killed and reaped).
absl::StatusOr<int> RunAndWait(const std::vector<std::string>& args, const SpawnOptions& options,
                               std::chrono::milliseconds timeout);

// Sends `signal` to `pid` and reaps it, with SIGKILL after `grace`.
void StopProcess(pid_t pid, int signal, std::chrono::milliseconds grace);

// A server started on a loopback port: StartServerOnFreePort.
struct ServerSpec {
  std::string name;  // for messages: "postgres"
  // Starts the server listening on 127.0.0.1:port.
  std::function<absl::StatusOr<pid_t>(int port)> spawn;
  // True once it serves on the port; polled.
  std::function<bool(int port)> ready;
  // Its log's end, for the messages of a failed start.
  std::function<std::string()> log_tail;
  std::chrono::seconds deadline{60};  // for one attempt
  int attempts = 3;
};
struct ServerProcess {
  pid_t pid = -1;
  int port = 0;
};

// Starts a server on a port free when picked and waits until it is ready
// (polling, with the deadline). Another process may take the port before the
// server binds: a server that exits or is not ready in time (killed) is
// started again on a new port, `attempts` times in all.
absl::StatusOr<ServerProcess> StartServerOnFreePort(const ServerSpec& spec);

}  // namespace idflow::testing

#endif  // IDFLOW_TESTS_TESTING_SUBPROCESS_H_

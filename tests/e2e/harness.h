// End-to-end harness: real processes (collector, agent, programs under the
// tap) on loopback, each with its output in a temp directory. Waits poll a
// condition with a deadline; correctness never rests on a fixed sleep.
#ifndef IDFLOW_TESTS_E2E_HARNESS_H_
#define IDFLOW_TESTS_E2E_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "idflow/v1/query.pb.h"

namespace idflow::e2e {

// Query API helpers (plaintext gRPC, 5 s deadline); empty on error.
std::vector<idflow::v1::StoredEvent> QueryEvents(const std::string& address);
std::vector<idflow::v1::Verdict> QueryVerdicts(const std::string& address);

// Sum of the `count` of every stored event, following next_page_token
// (one stored event may stand for several aggregated tap events); -1 on error.
int64_t StoredTapEvents(const std::string& address);
// What the collector holds of every agent's drop counters, summed over
// causes and agents; -1 on error. *detail (optional): per cause, for messages.
int64_t ReportedDrops(const std::string& address, std::string* detail = nullptr);

std::string BinDir();     // build/bin
std::string LibDir();     // build/lib
std::string SourceDir();  // repository root

std::string MakeTempDir(const std::string& prefix);
std::string Slurp(const std::string& path);
void WriteText(const std::string& path, const std::string& text);

// Polls `cond` every few milliseconds until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& cond,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

class Process {
 public:
  // Starts argv[0] (a path) with extra environment; stdout/stderr go to
  // files `<log_prefix>.out` / `.err`.
  Process(std::vector<std::string> argv, const std::string& log_prefix,
          const std::map<std::string, std::string>& env = {});
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `sig` and waits; returns the exit status as from ExitCode().
  int Stop(int sig = 15);
  // Waits for exit; returns the exit code, or 128+signal.
  int Wait();
  std::string Stdout() const { return Slurp(prefix_ + ".out"); }
  std::string Stderr() const { return Slurp(prefix_ + ".err"); }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string prefix_;
};

// Runs to completion; returns the exit code and fills out/err.
int RunToEnd(std::vector<std::string> argv, std::string* out, std::string* err,
             const std::map<std::string, std::string>& env = {});

// A TCP listener on 127.0.0.1 that accepts and drains connections on a
// background thread, standing in for an SDK's server.
class Sink {
 public:
  Sink();
  // Answers each request with `response` (a whole HTTP response).
  explicit Sink(std::string response);
  ~Sink();
  int port() const { return port_; }
  int connections() const;

 private:
  int fd_ = -1;
  int port_ = 0;
  struct State;
  State* state_;
};

// A local TLS server (openssl s_server) with a self-signed certificate made
// at test time in `dir`. It answers with a status page (-www), or with
// `serve_files` each request "GET /ABSOLUTE/PATH" with that file, a whole HTTP
// response (-HTTP, run from "/").
class TlsServer {
 public:
  explicit TlsServer(const std::string& dir, bool serve_files = false);
  bool ok() const { return ok_; }
  int port() const { return port_; }

 private:
  bool ok_ = false;
  int port_ = 0;
  std::unique_ptr<Process> server_;
};

// A collector and an agent on loopback with fresh state in a temp dir.
struct Stack {
  std::string dir;
  std::string db_path;
  std::string spool_dir;
  std::string socket;
  std::string identity;
  int grpc_port = 0;
  int http_port = 0;
  // The collector's --store; "" = sqlite:<dir>/idflow.db (db_path).
  std::string store_url;
  std::vector<std::string> collector_args;  // extra flags, e.g. TLS
  std::vector<std::string> agent_args;
  // Runs the agent through this command (e.g. setpriv dropping capabilities).
  std::vector<std::string> agent_wrapper;
  std::unique_ptr<Process> collector;
  std::unique_ptr<Process> agent;

  // Identity of the simulated device (values are test data, not real ids).
  static constexpr char kDeviceId[] = "qa-phone-e2e-0001";
  static constexpr char kOaid[] = "7d1c2a4e-9b3f-4c61-8e2a-5f0b6d9c3e17";
  static constexpr char kHwDeviceId[] = "b71f4d2c9e8a6b30";

  // Starts both; returns false (with the reason in *why) on failure.
  bool Start(std::string* why, int collector_port = 0);
  bool StartCollector(std::string* why, int port = 0);
  bool StartAgent(std::string* why, const std::string& collector_address);
  std::string collector_address() const { return "127.0.0.1:" + std::to_string(grpc_port); }
};

// The first real MAC address of this machine, as the tap will see it, and
// the interface that has it ("" when the machine has none).
std::string FirstMac();
std::string FirstMacInterface();

// `idflowctl violations --collector ADDRESS --format json EXTRA...`: returns
// its exit code (0 none, 1 violations, 2 error) with stdout in *out.
int RunViolations(const std::string& address, const std::vector<std::string>& extra,
                  std::string* out, std::string* err = nullptr);

// Base name of a path ("/usr/lib/libz.so.1" -> "libz.so.1").
std::string Basename(const std::string& path);

// True when `module` is a runtime library the policy treats as transparent
// (libc, libstdc++, libz, TLS...): no verdict may name one as responsible.
bool IsRuntimeModule(const std::string& module);

}  // namespace idflow::e2e

#endif  // IDFLOW_TESTS_E2E_HARNESS_H_

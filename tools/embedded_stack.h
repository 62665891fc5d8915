// An agent and a collector in this process, for `idflowctl qa`: the collector
// on 127.0.0.1 with a port the kernel picks, a SQLite file, and the agent on
// a private ingress socket and spool, all under one scratch directory.
#ifndef IDFLOW_TOOLS_EMBEDDED_STACK_H_
#define IDFLOW_TOOLS_EMBEDDED_STACK_H_

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace idflow::agent {
class Agent;
}
namespace idflow::collector {
class Collector;
}

namespace idflow::tools {

struct EmbeddedStackOptions {
  std::string policies_dir;
  std::string identity_file;  // "" = a generated identity (device qa-HOSTNAME, sysfs only)
  std::string sysfs_root = "/sys";
  bool keep = false;  // keep the scratch directory (SQLite file, spool)
};

class EmbeddedStack {
 public:
  // Creates the scratch directory, starts the collector, then the agent.
  static absl::StatusOr<std::unique_ptr<EmbeddedStack>> Start(const EmbeddedStackOptions& options);
  // Stops the agent, then the collector; removes the directory unless kept.
  ~EmbeddedStack();

  const std::string& dir() const { return dir_; }
  const std::string& socket() const { return socket_; }
  std::string collector_address() const;

  // Once every program run under the tap has exited: returns when every
  // event their taps handed over is committed by the collector (and so
  // judged), following the accounting: a probe hello queued behind every tap
  // connection, no connection left open, the agent's spool flushed, and the
  // collector's ack covering the spool. DeadlineExceeded after `timeout`.
  absl::Status WaitJudged(std::chrono::milliseconds timeout);

 private:
  EmbeddedStack() = default;

  EmbeddedStackOptions options_;
  std::string dir_;
  std::string socket_;
  std::unique_ptr<collector::Collector> collector_;
  std::unique_ptr<agent::Agent> agent_;
  std::thread agent_thread_;
};

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_EMBEDDED_STACK_H_

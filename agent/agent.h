// idflow-agent as a library: inventory -> pattern database -> tap ingress ->
// enrichment -> durable spool -> gRPC sender. One Boost.Asio io_context runs
// ingress and the flush timer; the sender has its own thread.
#ifndef IDFLOW_AGENT_AGENT_H_
#define IDFLOW_AGENT_AGENT_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/security/credentials.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/context.h"
#include "agent/control_protocol.h"
#include "agent/drop_counters.h"
#include "agent/ingress.h"
#include "agent/inventory.h"
#include "agent/journal.h"
#include "agent/pattern_db.h"
#include "agent/proc_usage.h"
#include "agent/sender.h"
#include "agent/spool.h"
#include "agent/tap_matcher.h"
#include "agent/uprobe/tls_uprobe_source.h"
#include "agent/watchdog.h"
#include "idflow/v1/event.pb.h"

namespace idflow::agent {

struct AgentOptions {
  std::vector<std::string> collectors;
  std::string socket_path;
  std::string spool_dir;
  std::string identity_file;
  std::string sysfs_root = "/sys";
  uint64_t spool_max_bytes = 256ull << 20;
  std::chrono::milliseconds flush_interval{100};
  // The ingress journal is truncated once it passes this (and after a failed
  // spool append); flush markers make a longer file replay correctly.
  uint64_t journal_max_bytes = 1 << 20;
  // Ring wake-ups coalesce over this (TapIngress::Options::wake_delay).
  std::chrono::milliseconds ring_wake_delay{50};
  // The sender waits this long for a batch to fill (SenderOptions).
  std::chrono::milliseconds send_linger{100};
  size_t max_pending = 10000;  // events awaiting the spool; beyond: counted drops
  // Group commit of the spool: fdatasync at most this often (0: every append).
  std::chrono::milliseconds spool_sync_interval{200};
  // Ingest bearer token ("" = none).
  std::string bearer_token;
  // Tap ingress: socket group, allow-list, limits (ingress.h).
  gid_t socket_gid = static_cast<gid_t>(-1);
  std::vector<uid_t> allow_uids;
  std::vector<gid_t> allow_gids;
  size_t max_connections = 1024;
  size_t max_connections_per_uid = 64;
  double tap_rate_per_second = 20000;
  double tap_rate_burst = 40000;
  // TLS to the collector (PEM paths): CA to verify it; cert+key for mutual TLS.
  std::string tls_ca, tls_cert, tls_key;
  // Context changes (control_protocol.h) are taken from root and the agent's
  // own user. With this, a process may also change its own context (its
  // claim then decides its verdicts: off by default).
  bool allow_app_context = false;
  // Watchdog (self-limits, in the spirit of osquery's): above these the
  // agent degrades in counted, reported steps instead of growing without
  // bound. 0 turns a limit off. CPU is percent of one core over a window.
  uint64_t watchdog_max_rss_bytes = 48ull << 20;
  double watchdog_max_cpu_percent = 25;
  // TLS uprobe source (agent/uprobe/): on when the agent may load BPF;
  // processes are watched on request (`idflowctl run`/`qa`) and every
  // process of the executables listed here.
  bool tls_uprobes = true;
  std::vector<std::string> tls_uprobe_executables;
  uint32_t tls_uprobe_ring_bytes = 1u << 20;
};

struct AgentCounters {
  std::atomic<uint64_t> events_in{0};
  std::atomic<uint64_t> unknown_pattern{0};
  std::atomic<uint64_t> pending_dropped{0};
  std::atomic<uint64_t> aggregated{0};  // repeats folded into an earlier event
  std::atomic<uint64_t> spool_errors{0};
  std::atomic<uint64_t> tap_dropped{0};
  std::atomic<uint64_t> journal_errors{0};
  std::atomic<uint64_t> ingress_dropped{0};  // refused by ingress (rate, malformed)
  // Watchdog (watchdog.h): degradation steps taken, steps back, and tap
  // events refused while shedding (also counted as ingress drops).
  std::atomic<uint64_t> watchdog_memory_steps{0};
  std::atomic<uint64_t> watchdog_cpu_steps{0};
  std::atomic<uint64_t> watchdog_recoveries{0};
  std::atomic<uint64_t> watchdog_shed{0};
  // TLS uprobe source: writes matched, records lost in its ring buffer
  // (also counted as tap drops), processes watched on request.
  std::atomic<uint64_t> tls_uprobe_writes{0};
  std::atomic<uint64_t> tls_uprobe_lost{0};
  std::atomic<uint64_t> tls_uprobe_watches{0};
};

class Agent {
 public:
  // Loads the identity (errors are InvalidArgument/NotFound naming the file),
  // discovers sysfs identifiers, compiles patterns, opens the spool.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(const AgentOptions& options);
  ~Agent();

  // Starts ingress, the flush timer and the sender.
  absl::Status Start();
  // Runs the io_context on the calling thread until Stop().
  void Run();
  // Flushes what is pending to the spool and stops everything. Call it on
  // the io thread (e.g. from a signal handler on io()) or after Run() returns.
  void Stop();

  // Spools what is pending, on the io thread, and returns the spool's last
  // seq: with no tap connection left (ingress_counters().active == 0), every
  // event the taps handed over is at or below it. For in-process callers
  // (idflowctl qa); call from another thread while Run() runs.
  uint64_t FlushNow();

  boost::asio::io_context& io() { return io_; }
  const AgentCounters& counters() const { return counters_; }
  TapIngress::Counters ingress_counters() const;
  Spool& spool() { return *spool_; }
  DropCounterStore& drops() { return *drops_; }

  // Turns one tap event into a wire event (no raw identifier values). The
  // origin carries the call chain; module and sdk are left to the collector.
  idflow::v1::Event Enrich(const TapHello& who, const TapEvent& ev) const;
  // A cookie event: typed direction, lifetime, Set-Cookie domain, chain.
  idflow::v1::Event EnrichCookie(const TapHello& who, const TapCookie& c) const;
  // Events equal under this key within one flush window are aggregated;
  // the call chain is part of it.
  static std::string AggregationKey(const idflow::v1::Event& e);
  const PatternDb& patterns() const { return *patterns_; }

 private:
  Agent() = default;
  void OnTapEvent(const TapHello& who, const TapEvent& ev);
  void OnTapStats(const TapStats& stats);
  // Control requests from the tap socket: context changes, run flushes.
  void OnControl(const PeerCredentials& peer, const ControlRequest& request,
                 TapIngress::Respond respond);
  // The TLS uprobe source: a watch request, a probed write, a watched
  // process's end.
  ControlReply WatchTls(const PeerCredentials& peer, const WatchTlsRequest& req);
  void OnTlsWrite(const TlsWrite& write);
  void OnTlsExit(pid_t pid);
  // Counts what the uprobe source's ring buffer had no room for.
  void CollectTlsLosses();
  // Answers the flush waiters whose run has ended (or whose time is up).
  void CheckFlushWaiters();
  ControlReply FlushedReply(uint32_t open_processes, bool quiet);
  // Device, origin (pid, exe, call chain), context, count and times.
  void FillCommon(const TapHello& who, uint32_t pid, const std::vector<TapModule>& chain,
                  uint64_t timestamp_ms, idflow::v1::Event* out) const;
  // Journals an enriched event, then aggregates it into pending_.
  void Accept(idflow::v1::Event enriched, bool aggregate, uint64_t ring_id, uint64_t ring_next);
  // Ring cursors journaled by a killed agent, for rings not attached again
  // yet; re-journaled after each Reset() so a second kill keeps them.
  uint64_t TakeRingCursor(uint64_t ring_id);
  // Writes the cursors to keep after a Reset() and commits them.
  void RejournalCursors();
  // Writes the journal records held since the last commit.
  void CommitJournal();
  // Truncates the journal (everything in it is spooled or counted).
  void ResetJournal();
  void ScheduleFlush();
  void Flush();
  // Watchdog: a check every interval on the io thread, and its steps.
  void ScheduleWatchdog();
  void OnMemoryLevel(MemoryLevel level);
  void OnCpuLevel(CpuLevel level);
  // True (and counted as an ingress drop) when the watchdog sheds load.
  bool Shed(uint64_t ring_id, uint64_t ring_next);
  // Freed heap and unused library pages back to the kernel (proc_usage.h).
  void ReleaseMemory(const char* why);
  // Notes when the collector's ack mark last moved (for the status).
  void NoteAck();
  // `idflowctl agent status`, on the io thread.
  AgentStatus Status();

  AgentOptions options_;
  Identity identity_;
  std::shared_ptr<const PatternDb> patterns_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;  // null: plaintext
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::steady_timer> flush_timer_;
  std::unique_ptr<TapIngress> ingress_;
  std::unique_ptr<DropCounterStore> drops_;
  std::unique_ptr<Spool> spool_;
  // Every received event is written here before it waits in pending_, so a
  // kill -9 of the agent loses nothing it received (journal.h).
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Sender> sender_;
  std::vector<idflow::v1::Event> pending_;                  // io thread only
  absl::flat_hash_map<std::string, size_t> pending_index_;  // aggregation key -> pending_ index
  AgentCounters counters_;
  ContextBoard context_;
  // io thread: connected processes per run id declared at start.
  absl::flat_hash_map<std::string, size_t> open_runs_;
  struct FlushWaiter {
    std::string run_id;
    std::chrono::steady_clock::time_point deadline;
    TapIngress::Respond respond;
  };
  std::vector<FlushWaiter> flush_waiters_;  // io thread
  std::unique_ptr<boost::asio::steady_timer> flush_wait_timer_;
  std::atomic<bool> stopped_{false};
  std::unique_ptr<TlsUprobeSource> tls_uprobes_;  // io thread
  struct TlsWatched {
    TapHello who;                        // as a tap's Hello would say: pid, exe, declared context
    std::vector<TapRingModule> modules;  // from /proc/PID/maps, re-read on a miss
    std::chrono::steady_clock::time_point maps_read{};
  };
  absl::flat_hash_map<pid_t, TlsWatched> tls_watched_;  // io thread
  TapPayloadMatcher tls_matcher_;                       // io thread
  std::unique_ptr<Watchdog> watchdog_;                  // io thread
  std::unique_ptr<boost::asio::steady_timer> watchdog_timer_;
  // What the watchdog's steps change (io thread): events held in memory
  // before the spool, and the flush interval.
  size_t pending_limit_ = 0;
  std::chrono::milliseconds flush_interval_{0};
  uint64_t last_ack_seen_ = 0;     // io thread
  uint64_t last_ack_unix_ms_ = 0;  // io thread: when last_ack_seen_ moved
  bool spool_failing_ = false;     // io thread: log a spool failure once per streak
  bool journal_failing_ = false;   // io thread: likewise for the journal
  std::mutex cursors_mu_;
  absl::flat_hash_map<uint64_t, uint64_t> ring_cursors_;  // guarded by cursors_mu_
  // Positions of the rings read in the current drain pass, whose slots are
  // not freed yet: re-journaled if the journal is reset meanwhile, so a kill
  // -9 before they are freed does not read them again. io thread only.
  absl::flat_hash_map<uint64_t, uint64_t> batch_cursors_;
};

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_AGENT_H_

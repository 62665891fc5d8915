// idflow-bench-tap-agent: stands in for idflow-agent in the tap benchmarks.
// Builds a ~1,000-pattern database (BuildBenchDb), serves it on a TapIngress
// socket, runs one child command (optionally under the tap), and reports:
//   - the child's CPU (wait4 rusage) and this process's CPU while the child
//     ran (the agent side: ingress decoding of Hello, Events and Stats),
//   - events received and the tap's own Stats (bytes scanned, cap hits...),
//   - with --latency: send->receipt latency from the "|ts=<hex ns>" marker
//     the latency app puts right after the identifier (CLOCK_MONOTONIC).
// With no command it only writes the requested files (patterns, corpus).
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "agent/ingress.h"
#include "bench/tap/bench_db.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "common/file_util.h"
#include "common/flags.h"

namespace idflow::bench {
namespace {

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

double CpuSeconds(const rusage& r) {
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

struct Collected {
  std::mutex mu;
  uint64_t events = 0;
  std::vector<int64_t> latencies_ns;
  // Send stamps seen: a send whose identifier matches two patterns gives two
  // events, but was handed over once.
  std::vector<int64_t> stamps;
  agent::TapStats stats;  // summed over every tapped process
  uint64_t stats_messages = 0;
  uint64_t goodbyes = 0;      // connections closed (their ring drained first)
  uint64_t tap_lost = 0;      // counted by the ring (full, or process died mid-write)
  uint64_t ingress_lost = 0;  // counted by the ingress (rate, malformed)
};

void OnEvent(Collected* c, bool latency, const agent::TapEvent& ev) {
  int64_t now = MonoNs();
  int64_t sent = -1;
  if (latency) {
    size_t p = ev.context.find("|ts=");
    uint64_t v = 0;
    if (p != std::string::npos && p + 4 + 16 <= ev.context.size() &&
        absl::SimpleHexAtoi(std::string(ev.context.substr(p + 4, 16)), &v)) {
      sent = static_cast<int64_t>(v);
    }
  }
  std::lock_guard<std::mutex> lock(c->mu);
  ++c->events;
  if (sent >= 0) {
    c->latencies_ns.push_back(now - sent);
    c->stamps.push_back(sent);
  }
}

void OnStats(Collected* c, const agent::TapStats& s) {
  std::lock_guard<std::mutex> lock(c->mu);
  ++c->stats_messages;
  c->stats.events_sent += s.events_sent;
  c->stats.events_dropped += s.events_dropped;
  c->stats.scan_cap_hits += s.scan_cap_hits;
  c->stats.calls_scanned += s.calls_scanned;
  c->stats.bytes_scanned += s.bytes_scanned;
  c->stats.split_matches += s.split_matches;
  c->stats.stream_fallbacks += s.stream_fallbacks;
}

double Percentile(std::vector<int64_t> v, double q) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(i, v.size() - 1)]) / 1e6;
}

int Run(int argc, char** argv) {
  FlagSet flags;
  flags.Add("socket", "", "TapIngress socket path (required with a command)");
  flags.Add("min-patterns", "1000", "grow the identity until the database has this many");
  flags.Add("forms-out", "", "write the printable pattern forms, one per line");
  flags.Add("corpus-out", "", "write identifier-free payload bytes here (for grep)");
  flags.Add("corpus-bytes", "67108864", "size of --corpus-out");
  flags.Add("preload", "", "run the command with LD_PRELOAD=this and IDFLOW_SOCKET");
  flags.Add("timeout-s", "120", "kill the command after this long");
  flags.Add("wake-delay-ms", "4", "ring wake-up delay, as idflow-agent --ring-wake-delay-ms");
  flags.AddBool("latency", "collect send->receipt latency from |ts= markers");
  if (absl::Status s = flags.Parse(argc, argv, 1, true); !s.ok()) {
    fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(), flags.Usage().c_str());
    return 2;
  }
  size_t min_patterns = 0, corpus_bytes = 0, timeout_s = 0, wake_delay_ms = 0;
  if (!absl::SimpleAtoi(flags.Get("min-patterns"), &min_patterns) ||
      !absl::SimpleAtoi(flags.Get("wake-delay-ms"), &wake_delay_ms) ||
      !absl::SimpleAtoi(flags.Get("corpus-bytes"), &corpus_bytes) ||
      !absl::SimpleAtoi(flags.Get("timeout-s"), &timeout_s)) {
    fprintf(stderr, "bad numeric flag\n");
    return 2;
  }
  const std::vector<std::string>& cmd = flags.Positional();
  if (!cmd.empty() && flags.Get("socket").empty()) {
    fprintf(stderr, "--socket is required with a command\n");
    return 2;
  }

  int64_t t0 = MonoNs();
  absl::StatusOr<BenchDb> bench = BuildBenchDb(min_patterns);
  if (!bench.ok()) {
    fprintf(stderr, "building the database: %s\n", std::string(bench.status().message()).c_str());
    return 1;
  }
  printf("result: patterns=%zu identifiers=%zu verified_forms=%zu db_bytes=%zu build_ms=%.0f\n",
         bench->db->size(), bench->identity.identifiers.size(), bench->forms.size(),
         bench->db->serialized().size(), static_cast<double>(MonoNs() - t0) / 1e6);
  if (!flags.Get("forms-out").empty()) {
    absl::StatusOr<size_t> n = WritePatternLines(flags.Get("forms-out"), bench->forms);
    if (!n.ok()) {
      fprintf(stderr, "%s\n", std::string(n.status().message()).c_str());
      return 1;
    }
    printf("result: pattern_lines=%zu\n", *n);
  }
  if (!flags.Get("corpus-out").empty()) {
    std::string corpus;
    corpus.reserve(corpus_bytes);
    for (uint64_t seed = 1; corpus.size() < corpus_bytes; ++seed) {
      corpus += MakePayload(std::min<size_t>(1 << 20, corpus_bytes - corpus.size()), seed);
    }
    size_t hits = bench->db->Scan(corpus.substr(0, 1 << 20)).size();
    if (absl::Status s = WriteFileAtomic(flags.Get("corpus-out"), corpus); !s.ok()) {
      fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
    printf("result: corpus_bytes=%zu identifier_hits_in_first_mib=%zu\n", corpus.size(), hits);
  }
  if (cmd.empty()) return 0;

  Collected collected;
  const bool latency = flags.GetBool("latency");
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  agent::TapIngress::Options options;
  options.socket_path = flags.Get("socket");
  // As idflow-agent --ring-wake-delay-ms (the agent defaults to 50; the
  // tap benchmarks keep 4, the figures recorded in docs/PERFORMANCE.md).
  options.wake_delay = std::chrono::milliseconds(wake_delay_ms);
  options.on_loss = [&](agent::TapIngress::Loss loss, uint64_t n) {
    std::lock_guard<std::mutex> lock(collected.mu);
    (loss == agent::TapIngress::Loss::kTap ? collected.tap_lost : collected.ingress_lost) += n;
  };
  agent::TapIngress ingress(
      io, options,
      [&](const agent::TapHello&, const agent::TapEvent& ev) { OnEvent(&collected, latency, ev); },
      [&](const agent::TapHello&, const agent::TapStats& s) { OnStats(&collected, s); },
      [&](const agent::TapHello&) {
        std::lock_guard<std::mutex> lock(collected.mu);
        ++collected.goodbyes;
      });
  ingress.UpdatePatterns(bench->db);
  if (absl::Status s = ingress.Start(); !s.ok()) {
    fprintf(stderr, "ingress: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  // One ingress thread, as a small agent would have.
  std::thread io_thread([&io] { io.run(); });

  // The agent side's CPU is the ingress thread's (the main thread here only
  // polls for the child's exit, which a real agent does not do).
  clockid_t io_clock;
  if (pthread_getcpuclockid(io_thread.native_handle(), &io_clock) != 0) {
    fprintf(stderr, "pthread_getcpuclockid failed\n");
    return 1;
  }
  auto io_cpu_s = [io_clock] {
    timespec ts;
    clock_gettime(io_clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  const double agent_cpu0 = io_cpu_s();
  int64_t start = MonoNs();
  pid_t pid = fork();
  if (pid == 0) {
    if (!flags.Get("preload").empty()) {
      setenv("LD_PRELOAD", flags.Get("preload").c_str(), 1);
      setenv("IDFLOW_SOCKET", flags.Get("socket").c_str(), 1);
    }
    std::vector<char*> args;
    for (const std::string& a : cmd) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    perror("execvp");
    _exit(127);
  }
  int status = 0;
  rusage child{};
  const int64_t deadline = start + static_cast<int64_t>(timeout_s) * 1000000000;
  bool killed = false;
  for (;;) {
    pid_t r = wait4(pid, &status, WNOHANG, &child);
    if (r == pid) break;
    if (MonoNs() > deadline && !killed) {
      kill(pid, SIGKILL);
      killed = true;
    }
    usleep(2000);  // polling the child's exit only; no measurement depends on it
  }
  int64_t end = MonoNs();
  // The tap sends Stats from its destructor, just before the child exits;
  // the connection then closes once its ring is drained (calls handed over
  // are matched by then): wait (bounded) for both.
  const bool tapped = !flags.Get("preload").empty();
  for (int64_t until = MonoNs() + 10000000000; tapped && MonoNs() < until;) {
    {
      std::lock_guard<std::mutex> lock(collected.mu);
      if (collected.stats_messages > 0 && collected.goodbyes > 0) break;
    }
    usleep(1000);
  }
  const int64_t drained = MonoNs();
  const double agent_cpu = io_cpu_s() - agent_cpu0;
  ingress.Stop();
  work.reset();
  io.stop();
  io_thread.join();

  std::lock_guard<std::mutex> lock(collected.mu);
  const agent::TapStats& st = collected.stats;
  printf(
      "result: exit=%d killed=%d wall_s=%.3f app_cpu_s=%.3f agent_cpu_s=%.3f events=%llu "
      "stats_msgs=%llu events_sent=%llu events_dropped=%llu calls_scanned=%llu "
      "bytes_scanned=%llu scan_cap_hits=%llu split_matches=%llu stream_fallbacks=%llu "
      "tap_lost=%llu ingress_lost=%llu drain_ms=%.1f\n",
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), killed ? 1 : 0,
      static_cast<double>(end - start) / 1e9, CpuSeconds(child), agent_cpu,
      static_cast<unsigned long long>(collected.events),
      static_cast<unsigned long long>(collected.stats_messages),
      static_cast<unsigned long long>(st.events_sent),
      static_cast<unsigned long long>(st.events_dropped),
      static_cast<unsigned long long>(st.calls_scanned),
      static_cast<unsigned long long>(st.bytes_scanned),
      static_cast<unsigned long long>(st.scan_cap_hits),
      static_cast<unsigned long long>(st.split_matches),
      static_cast<unsigned long long>(st.stream_fallbacks),
      static_cast<unsigned long long>(collected.tap_lost),
      static_cast<unsigned long long>(collected.ingress_lost),
      static_cast<double>(drained - end) / 1e6);
  if (latency) {
    const std::vector<int64_t>& v = collected.latencies_ns;
    if (v.empty()) {
      printf("result: latency_samples=0\n");
    } else {
      std::vector<int64_t> stamps = collected.stamps;
      std::sort(stamps.begin(), stamps.end());
      const size_t sends_seen =
          static_cast<size_t>(std::unique(stamps.begin(), stamps.end()) - stamps.begin());
      printf(
          "result: latency_samples=%zu sends_seen=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
          "max_ms=%.3f\n",
          v.size(), sends_seen, Percentile(v, 0.5), Percentile(v, 0.9), Percentile(v, 0.99),
          Percentile(v, 1.0));
    }
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 && !killed ? 0 : 1;
}

}  // namespace
}  // namespace idflow::bench

int main(int argc, char** argv) { return idflow::bench::Run(argc, argv); }

// Spool::Append per event for 1- and 64-event batches with fsync off, group
// commit (the default, 200 ms) and fsync per Append; Journal::Append per
// event. Events look like the agent's (call chain, destination, digest,
// context). The spool is acked as it goes, so the bound never purges.
//
//   build/bin/idflow-bench-spool [--benchmark_filter=...] (IDFLOW_BENCH_DIR
//   picks the filesystem; default /tmp)
#include <stdlib.h>

#include <string>
#include <vector>

#include "agent/journal.h"
#include "agent/spool.h"
#include "benchmark/benchmark.h"

namespace idflow::agent {
namespace {

std::string BenchDir(const char* what) {
  const char* base = getenv("IDFLOW_BENCH_DIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/idflow-bench-" + what + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
}

idflow::v1::Event SampleEvent(int i) {
  idflow::v1::Event e;
  e.mutable_device()->set_id("hub-0042");
  e.mutable_device()->set_class_("hub");
  e.mutable_device()->set_firmware("2.3.1");
  e.mutable_origin()->set_pid(4242);
  e.mutable_origin()->set_exe("/opt/app/bin/demo-host");
  e.mutable_origin()->add_call_chain()->set_path("/lib/x86_64-linux-gnu/libc.so.6");
  e.mutable_origin()->add_call_chain()->set_path("/opt/app/lib/libidm_sdk.so");
  e.set_action(idflow::v1::ACTION_TRANSMIT);
  e.set_channel("tcp");
  e.mutable_destination()->set_ip("10.0.0." + std::to_string(i % 50));
  e.mutable_destination()->set_port(443);
  e.mutable_destination()->set_hostname("idm.discovery.mi.com");
  e.mutable_identifier()->set_kind("mac_address");
  e.mutable_identifier()->set_encoding("raw");
  e.mutable_identifier()->set_digest(std::string(32, 'd'));
  e.mutable_identifier()->set_snippet("mac=[REDACTED:mac_address]&v=1");
  e.mutable_context()->add_scenarios("device_discovery");
  e.set_count(1);
  e.set_first_seen_unix_ms(1764500000000 + i);
  e.set_last_seen_unix_ms(1764500000000 + i);
  return e;
}

// Arg 0: events per Append. Arg 1: 0 = no fsync, 1 = group commit (200 ms),
// 2 = fdatasync every Append.
void BM_SpoolAppend(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  SpoolOptions o;
  o.dir = BenchDir("spool");
  o.max_bytes = 1ull << 30;
  o.sync = state.range(1) != 0;
  o.sync_interval = std::chrono::milliseconds(state.range(1) == 2 ? 0 : 200);
  auto spool = Spool::Open(o);
  if (!spool.ok()) {
    state.SkipWithError(spool.status().ToString().c_str());
    return;
  }
  std::vector<idflow::v1::Event> events;
  const idflow::v1::Event sample = SampleEvent(0);
  uint64_t n = 0;
  for (auto _ : state) {
    events.assign(static_cast<size_t>(batch), sample);
    if (!(*spool)->Append(&events).ok()) {
      state.SkipWithError("append failed");
      break;
    }
    n += static_cast<uint64_t>(batch);
    if (n % 8192 < static_cast<uint64_t>(batch)) (void)(*spool)->Ack((*spool)->last_seq());
  }
  state.SetItemsProcessed(static_cast<int64_t>(n));
  spool->reset();
  std::string cmd = "rm -rf '" + o.dir + "'";
  (void)!system(cmd.c_str());
}
BENCHMARK(BM_SpoolAppend)
    ->ArgNames({"events", "sync"})
    ->ArgsProduct({{1, 64}, {0, 1, 2}})
    ->UseRealTime();

void BM_JournalAppend(benchmark::State& state) {
  std::string dir = BenchDir("journal");
  auto j = Journal::Open(dir + "/ingress.journal");
  if (!j.ok()) {
    state.SkipWithError(j.status().ToString().c_str());
    return;
  }
  const idflow::v1::Event sample = SampleEvent(0);
  int64_t n = 0;
  for (auto _ : state) {
    if (!(*j)->Append(sample).ok()) {
      state.SkipWithError("append failed");
      break;
    }
    // A flush every 20 events (the agent's 20 ms window at 1k events/s).
    if (++n % 20 == 0) {
      (void)(*j)->MarkFlush(static_cast<uint64_t>(n) - 19, static_cast<uint64_t>(n));
      (void)(*j)->Reset();
    }
  }
  state.SetItemsProcessed(n);
  std::string cmd = "rm -rf '" + dir + "'";
  (void)!system(cmd.c_str());
}
BENCHMARK(BM_JournalAppend)->UseRealTime();

}  // namespace
}  // namespace idflow::agent

BENCHMARK_MAIN();

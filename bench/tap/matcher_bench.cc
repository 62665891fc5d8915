// Matcher throughput: the tap's hot path (hs_scan in block mode over the
// agent's serialized ~1,000-pattern database, deserialized exactly as the tap
// does) against memchr over the same buffers. grep -F -f is compared from
// scripts/bench.sh on a file of the same kind of data.
#include <hs/hs.h>
#include <stdio.h>
#include <string.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/tap/bench_db.h"
#include "benchmark/benchmark.h"

namespace idflow::bench {
namespace {

struct Matcher {
  hs_database_t* db = nullptr;
  hs_scratch_t* scratch = nullptr;
  size_t patterns = 0;
};

Matcher* g_matcher = nullptr;

// Many distinct buffers so the loop does not re-scan one hot cache line; the
// set (64 x size) still fits in L2 for the sizes measured, as a socket
// payload just written by the app would.
std::vector<std::string> Buffers(size_t size) {
  std::vector<std::string> v;
  for (uint64_t i = 0; i < 64; ++i) v.push_back(MakePayload(size, 1000 + i));
  return v;
}

int CountMatch(unsigned int, unsigned long long, unsigned long long, unsigned int, void* ctx) {
  ++*static_cast<size_t*>(ctx);
  return 0;
}

void BM_VectorscanBlock(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  std::vector<std::string> bufs = Buffers(size);
  size_t i = 0, matches = 0;
  for (auto _ : state) {
    const std::string& b = bufs[i++ & 63];
    hs_scan(g_matcher->db, b.data(), static_cast<unsigned int>(b.size()), 0, g_matcher->scratch,
            CountMatch, &matches);
  }
  benchmark::DoNotOptimize(matches);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
  state.counters["patterns"] = static_cast<double>(g_matcher->patterns);
  state.counters["matches"] = static_cast<double>(matches);
}

void BM_Memchr(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  std::vector<std::string> bufs = Buffers(size);
  size_t i = 0;
  for (auto _ : state) {
    const std::string& b = bufs[i++ & 63];
    // A byte the payload never holds: memchr walks the whole buffer.
    const void* p = memchr(b.data(), '\x01', b.size());
    benchmark::DoNotOptimize(p);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
}

// memchr over a byte that is frequent in JSON ('"'), visiting every
// occurrence: the cost of the simplest first-byte pre-filter, a less
// flattering but more comparable baseline than one memchr that never stops.
void BM_MemchrEachQuote(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  std::vector<std::string> bufs = Buffers(size);
  size_t i = 0, found = 0;
  for (auto _ : state) {
    const std::string& b = bufs[i++ & 63];
    const char* p = b.data();
    const char* end = p + b.size();
    while ((p = static_cast<const char*>(memchr(p, '"', static_cast<size_t>(end - p)))) !=
           nullptr) {
      ++found;
      ++p;
    }
  }
  benchmark::DoNotOptimize(found);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
}

// The app-thread cost of the alternative design: a bounded copy of the sent
// bytes into a (here: process-local) ring slot, scanned elsewhere.
void BM_CopyToRing(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  std::vector<std::string> bufs = Buffers(size);
  constexpr size_t kRingBytes = 4 << 20;
  std::vector<char> ring(kRingBytes);
  size_t i = 0, head = 0;
  for (auto _ : state) {
    const std::string& b = bufs[i++ & 63];
    if (head + size > kRingBytes) head = 0;
    memcpy(ring.data() + head, b.data(), size);
    head += size;
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
}

BENCHMARK(BM_VectorscanBlock)->Arg(64)->Arg(1024)->Arg(65536);
BENCHMARK(BM_Memchr)->Arg(64)->Arg(1024)->Arg(65536);
BENCHMARK(BM_MemchrEachQuote)->Arg(64)->Arg(1024)->Arg(65536);
BENCHMARK(BM_CopyToRing)->Arg(64)->Arg(1024)->Arg(65536);

}  // namespace
}  // namespace idflow::bench

int main(int argc, char** argv) {
  using idflow::bench::g_matcher;
  absl::StatusOr<idflow::bench::BenchDb> bench = idflow::bench::BuildBenchDb(1000);
  if (!bench.ok()) {
    fprintf(stderr, "%s\n", std::string(bench.status().message()).c_str());
    return 1;
  }
  static idflow::bench::Matcher matcher;
  const std::string& ser = bench->db->serialized();
  if (hs_deserialize_database(ser.data(), ser.size(), &matcher.db) != HS_SUCCESS ||
      hs_alloc_scratch(matcher.db, &matcher.scratch) != HS_SUCCESS) {
    fprintf(stderr, "cannot load the serialized database\n");
    return 1;
  }
  matcher.patterns = bench->db->size();
  g_matcher = &matcher;
  benchmark::AddCustomContext("patterns", absl::StrCat(matcher.patterns));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  hs_free_scratch(matcher.scratch);
  hs_free_database(matcher.db);
  return 0;
}

// Statement import cost against document size: the same SDK repeated N times
// (the case that was quadratic: 16k entries took 33 s), in the labelled and
// the Markdown-table layout. Complexity is fitted by Google Benchmark; the
// 100k-entry rows are the target. Results: docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/policy/importer.h"
#include "collector/policy/policy.h"

namespace idflow::policy {
namespace {

const Ontology& RealOntology() {
  static const Ontology* o = [] {
    std::ifstream in(std::string(IDFLOW_SOURCE_DIR) + "/policies/ontology.yaml");
    std::stringstream ss;
    ss << in.rdbuf();
    auto p = LoadPolicyFromStrings(PolicyFile{"ontology.yaml", ss.str()}, {}, {});
    if (!p.ok()) std::abort();
    return new Ontology(p->ontology);
  }();
  return *o;
}

std::string Labelled(int64_t n) {
  std::string text = "Version: v1\nBench Statement\n\n";
  for (int64_t i = 0; i < n; ++i) {
    absl::StrAppend(&text, "Casting\n", "  \xE2\x80\xA2 Third party name: Xiaomi Inc.\n",
                    "  \xE2\x80\xA2 Sharing type: Embed SDK (IDM SDK)\n",
                    "  \xE2\x80\xA2 Shared data: device ID (OAID), IP address, MAC 地址, "
                    "device name\n",
                    "  \xE2\x80\xA2 Usage scenario: during casting\n",
                    "  \xE2\x80\xA2 Sharing method: SDK local acquisition\n\n");
  }
  return text;
}

std::string MarkdownTable(int64_t n) {
  std::string text =
      "# Bench SDK list\n\nVersion: v1\n\n| SDK name | Company | Personal information collected "
      "| Scenario | Sharing method |\n|---|---|---|---|---|\n";
  for (int64_t i = 0; i < n; ++i) {
    absl::StrAppend(&text,
                    "| IDM SDK | Xiaomi Inc. | device ID (OAID), IP address, MAC 地址, device name "
                    "| during casting | SDK local acquisition |\n");
  }
  return text;
}

// One two-column "Field | Value" table per SDK: many small tables.
std::string LabelTables(int64_t n) {
  std::string text = "# Bench label tables\n\nVersion: v1\n\n";
  for (int64_t i = 0; i < n; ++i) {
    absl::StrAppend(&text, "| Field | Value |\n|---|---|\n| Third party name | Xiaomi Inc. |\n",
                    "| Sharing type | SDK (IDM SDK) |\n",
                    "| Shared data | device ID (OAID), IP address, MAC 地址 |\n\n");
  }
  return text;
}

template <std::string (*Make)(int64_t)>
void BM_Import(benchmark::State& state) {
  const std::string text = Make(state.range(0));
  for (auto _ : state) {
    auto st = ImportStatementText(text, "bench.txt", RealOntology());
    if (!st.ok() || st->entries.size() != static_cast<size_t>(state.range(0))) {
      state.SkipWithError("import failed");
      break;
    }
    benchmark::DoNotOptimize(st);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
  state.SetComplexityN(state.range(0));
}

BENCHMARK(BM_Import<Labelled>)
    ->Name("BM_ImportLabelled")
    ->RangeMultiplier(10)
    ->Range(1000, 100000)
    ->Unit(benchmark::kMillisecond)
    ->Complexity(benchmark::oN);
BENCHMARK(BM_Import<MarkdownTable>)
    ->Name("BM_ImportMarkdownTable")
    ->RangeMultiplier(10)
    ->Range(1000, 100000)
    ->Unit(benchmark::kMillisecond)
    ->Complexity(benchmark::oN);
BENCHMARK(BM_Import<LabelTables>)
    ->Name("BM_ImportMarkdownLabelTables")
    ->RangeMultiplier(10)
    ->Range(1000, 100000)
    ->Unit(benchmark::kMillisecond)
    ->Complexity(benchmark::oN);

}  // namespace
}  // namespace idflow::policy

BENCHMARK_MAIN();

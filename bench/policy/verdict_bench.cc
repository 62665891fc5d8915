// Verdicts per second per core: Judge over the checked-in policies on a mix
// of flows shaped like a QA run (mostly declared SDKs, some violations, some
// undeclared modules). Results go to docs/PERFORMANCE.md.
#include <cstdlib>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "collector/policy/cookies.h"
#include "collector/policy/policy.h"

namespace idflow::policy {
namespace {

const Policy& Real() {
  static const Policy* p = [] {
    auto loaded = LoadPolicyDir(IDFLOW_SOURCE_DIR "/policies");
    if (!loaded.ok()) std::abort();
    return new Policy(*std::move(loaded));
  }();
  return *p;
}

Flow F(std::string sdk, std::string data, std::string action, std::string host,
       std::vector<std::string> scenarios = {}, std::map<std::string, bool> consents = {}) {
  Flow f;
  f.sdk = std::move(sdk);
  f.module = "/data/app/com.example/lib/arm64/libsdk.so";
  f.data_type = std::move(data);
  f.action = std::move(action);
  f.channel = "tls-openssl";
  f.dest_host = std::move(host);
  f.dest_ip = "203.0.113.7";
  f.scenarios = std::move(scenarios);
  f.consents = std::move(consents);
  return f;
}

std::vector<Flow> Mix() {
  const std::map<std::string, bool> ux_on = {{"user_experience_program", true},
                                             {"privacy_policy", true}};
  const std::map<std::string, bool> ux_off = {{"user_experience_program", false}};
  return {
      // Clear flows dominate a healthy run.
      F("IDM SDK", "mac_address", "transmit", "idm.mi.com", {"device_discovery"}),
      F("IDM SDK", "bluetooth_address", "acquire", "", {"device_discovery"}),
      F("Lebo SDK", "device_name", "transmit", "api.hpplay.com.cn", {"casting"}),
      F("OneTrack SDK", "oaid", "transmit", "tracking.xiaomi.net", {"app_features"}, ux_on),
      F("Tianqin SDK", "file_info", "transmit", "p2p.mi.com", {"device_discovery"}),
      F("Tianqin SDK", "media", "transmit", "docs.wps.cn"),
      F("Xiaomi Account SDK", "account_id", "transmit", "account.xiaomi.com"),
      F("search services", "search_keywords", "transmit", "search.mi.com"),
      F("Mijia Mini Program", "page_view", "transmit", "api.io.mi.com", {}, ux_on),
      // Violations of every kind.
      F("Lebo SDK", "mac_address", "transmit", "api.hpplay.com.cn"),
      F("Tianqin SDK", "oaid", "acquire", ""),
      F("Lebo SDK", "device_type", "transmit", "data.mi.com"),
      F("IDM SDK", "mac_address", "transmit", "tracker.example.com"),
      F("OneTrack SDK", "oaid", "transmit", "tracking.xiaomi.net", {}, ux_off),
      F("IDM SDK", "bluetooth_address", "acquire", "", {"casting"}),
      F("search services", "search_keywords", "acquire", ""),
      F("", "mac_address", "transmit", "198.51.100.1"),
      F("Mystery SDK", "oaid", "transmit", "ads.example.net"),
  };
}

void BM_Judge(benchmark::State& state) {
  const Policy& p = Real();
  const std::vector<Flow> flows = Mix();
  size_t i = 0;
  for (auto _ : state) {
    Verdict v = Judge(p, flows[i]);
    benchmark::DoNotOptimize(v);
    if (++i == flows.size()) i = 0;
  }
  state.counters["verdicts/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Judge);

void BM_JudgeCookie(benchmark::State& state) {
  const Policy& p = Real();
  std::vector<CookieObservation> obs(4);
  obs[0] = {"account.xiaomi.com", "passToken", true, 0, true, "set"};
  obs[1] = {"account.xiaomi.com", "pass_ua", false, 94608000, true, "set"};
  obs[2] = {"new.c.mi.com", "userId", false, 40 * 86400, true, "set"};
  obs[3] = {"new.c.mi.com", "tracker", true, 0, false, "set"};
  size_t i = 0;
  for (auto _ : state) {
    CookieVerdict v = JudgeCookie(p, obs[i]);
    benchmark::DoNotOptimize(v);
    if (++i == obs.size()) i = 0;
  }
  state.counters["verdicts/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_JudgeCookie);

}  // namespace
}  // namespace idflow::policy

BENCHMARK_MAIN();

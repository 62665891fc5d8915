// Verdicts per second per core: Judge over the checked-in policies on a mix
// of flows shaped like a QA run (mostly declared SDKs, some violations, some
// undeclared modules), each with a call chain of runtime frames around the
// responsible module; and ResolveResponsible alone, which runs for every
// event. Results go to docs/PERFORMANCE.md.
#include <cstdint>
#include <cstdlib>
#include <map>
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

// Module paths the real bindings map to each SDK name of the mix; SDKs the
// demo bindings do not name are judged as resolved (JudgeResolved), the
// cost Judge pays after resolution.
struct Sample {
  std::string sdk;  // "" = resolve from the chain
  Flow flow;
};

// What a stack walk typically reports: libc and libstdc++ (or zlib, GIO)
// inside the responsible module, the executable outside it.
std::vector<std::string> Chain(const std::string& module) {
  return {"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
          "/lib/x86_64-linux-gnu/libz.so.1", module, "/opt/idflow/bin/idflow-demo-host"};
}

Sample F(std::string sdk, std::string data, std::string action, std::string host,
         std::vector<std::string> scenarios = {}, std::map<std::string, bool> consents = {}) {
  Flow f;
  static const std::map<std::string, std::string> kBound = {
      {"IDM SDK", "/opt/idflow/lib/libidm_sdk.so"},
      {"Lebo SDK", "/opt/idflow/lib/liblebo_sdk.so"},
      {"OneTrack SDK", "/opt/idflow/lib/libonetrack_sdk.so"},
      {"", "/opt/idflow/lib/libmystery_sdk.so"}};
  auto it = kBound.find(sdk);
  f.call_chain = Chain(it != kBound.end() ? it->second : "/data/app/com.example/lib/libsdk.so");
  if (it != kBound.end()) sdk.clear();
  f.exe = "/opt/idflow/bin/idflow-demo-host";
  f.data_type = std::move(data);
  f.action = std::move(action);
  f.channel = "tls-openssl";
  f.dest_host = std::move(host);
  f.dest_ip = "203.0.113.7";
  f.scenarios = std::move(scenarios);
  f.consents = std::move(consents);
  return {std::move(sdk), std::move(f)};
}

std::vector<Sample> Mix() {
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
      // Observations: the app reading its own MAC, a call during fork.
      [] {
        Sample s = F("", "mac_address", "acquire", "");
        s.flow.call_chain = Chain("/opt/idflow/bin/idflow-demo-host");
        return s;
      }(),
      [] {
        Sample s = F("", "mac_address", "transmit", "");
        s.flow.call_chain.clear();
        return s;
      }(),
  };
}

void BM_Judge(benchmark::State& state) {
  const Policy& p = Real();
  const std::vector<Sample> flows = Mix();
  size_t i = 0;
  for (auto _ : state) {
    const Sample& s = flows[i];
    Verdict v =
        s.sdk.empty()
            ? Judge(p, s.flow)
            : JudgeResolved(p, {Responsible::Role::kSdk, s.flow.call_chain[3], s.sdk}, s.flow);
    benchmark::DoNotOptimize(v);
    if (++i == flows.size()) i = 0;
  }
  state.counters["verdicts/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Judge);

// Resolution alone over chains of runtime frames (the default runtime.yaml,
// ~130 patterns): SDK found, first-party, unbound, all runtime.
void BM_ResolveResponsible(benchmark::State& state) {
  const Policy& p = Real();
  const std::string exe = "/opt/idflow/bin/idflow-demo-host";
  const std::vector<std::vector<std::string>> chains = {
      Chain("/opt/idflow/lib/liblebo_sdk.so"),
      Chain("/opt/idflow/lib/libmystery_sdk.so"),
      Chain(exe),
      {"/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libc.so.6",
       "/usr/lib/x86_64-linux-gnu/libgio-2.0.so.0", "/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0",
       "/usr/lib/x86_64-linux-gnu/libQt5Network.so.5", "/usr/lib/x86_64-linux-gnu/libssl.so.3",
       "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "/usr/lib/x86_64-linux-gnu/libcurl.so.4"},
  };
  size_t i = 0;
  for (auto _ : state) {
    Responsible r = ResolveResponsible(p, chains[i], exe);
    benchmark::DoNotOptimize(r);
    if (++i == chains.size()) i = 0;
  }
  state.counters["resolutions/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ResolveResponsible);

void BM_JudgeCookie(benchmark::State& state) {
  const Policy& p = Real();
  auto obs_of = [](std::string host, std::string name, int64_t max_age, std::string domain) {
    CookieObservation o;
    o.host = std::move(host);
    o.domain = std::move(domain);
    o.name = std::move(name);
    o.session = max_age == 0;
    o.max_age_seconds = max_age;
    return o;
  };
  const std::vector<CookieObservation> obs = {
      obs_of("account.xiaomi.com", "passToken", 0, ""),
      obs_of("account.xiaomi.com", "pass_ua", 94608000, ".account.xiaomi.com"),
      obs_of("new.c.mi.com", "userId", 40 * 86400, ""),
      obs_of("new.c.mi.com", "tracker", 0, "mi.com"),
      obs_of("www.example.com", "sid", 0, ""),
  };
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

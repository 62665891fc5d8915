// The dashboard's three views at fleet scale: fills a SQLite store through
// Store::Write with N events forming G verdict groups (aggregates maintained
// at ingest, as the collector writes them), starts a collector on it, and
// times /api/overview, /api/matrix and a filtered /api/verdicts (p50/p99
// over repeated requests). With --browser, runs browser_timing.mjs: the same
// three views rendered by the page in Debian's chromium.
//
//   idflow-bench-dashboard --db /tmp/dash.db [--events 10000000]
//       [--groups 1000000] [--devices 100] [--requests 30] [--browser]
//       [--serve SECONDS]
//
// An existing --db is reused (seeding 10M events takes minutes); delete it to
// seed again.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collector/collector.h"
#include "collector/store/store.h"

namespace idflow::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string db;
  size_t events = 10'000'000;
  size_t groups = 1'000'000;
  size_t devices = 100;
  size_t requests = 30;
  size_t batch = 5000;
  bool browser = false;
  int serve_seconds = 0;
};

constexpr const char* kSdks[] = {"IDM SDK",     "Lebo SDK",          "OneTrack SDK", "Mi Fitness",
                                 "Yunkong SDK", "Mi AI Engine",      "Tianqin SDK",  "MIS SDK",
                                 "Xiaomi Home", "Xiaomi Account SDK"};
constexpr const char* kTypes[] = {"device_id",   "oaid",       "mac_address", "device_name",
                                  "device_type", "device_fid", "account_id",  "page_view"};
constexpr const char* kVerdicts[] = {"clear",      "omitted",         "vague", "clear",
                                     "no_consent", "wrong_recipient", "clear", "out_of_scenario"};

const char* FindingOf(const std::string& verdict) {
  return verdict == "clear" ? "clear" : "violation";
}

// Event `i` of device `d`: group (sdk, data type, destination) cycles through
// groups_per_device keys, so every group gets events / groups events.
store::EventRecord MakeEvent(size_t d, uint64_t seq, size_t groups_per_device, int64_t t) {
  const size_t g = (seq - 1) % groups_per_device;
  const size_t sdk = g % 10, type = (g / 10) % 8, dest = g / 80;
  store::EventRecord e;
  e.agent_id = absl::StrCat("agent-", d);
  e.seq = seq;
  e.device_id = absl::StrCat("hub-", d);
  e.device_class = d % 2 ? "hub" : "tv";
  e.firmware = absl::StrCat("2.", d % 4, ".1");
  e.pid = 4242;
  e.exe = "/opt/app/bin/host";
  e.call_chain = {{absl::StrCat("/opt/app/lib/libsdk", sdk, ".so"), "77aa01fe"}};
  e.module = e.call_chain[0].path;
  e.sdk = kSdks[sdk];
  e.action = "transmit";
  e.channel = "tcp";
  e.dest_host = absl::StrCat("api", dest, ".example.com");
  e.dest_port = 443;
  e.data_type = kTypes[type];
  e.encoding = "raw";
  e.digest = absl::StrCat("hmac:", seq);
  e.snippet = "id=<redacted>";
  e.scenarios = {"casting"};
  e.count = 1;
  e.first_seen_unix_ms = e.last_seen_unix_ms = t;
  e.verdict = kVerdicts[(sdk + type) % 8];
  e.finding = FindingOf(e.verdict);
  e.statement = "interconnectivity-data-sharing";
  e.statement_version = "v20250508";
  e.entry = "entry";
  e.explanation = "synthetic";
  return e;
}

absl::Status Seed(const Flags& f) {
  auto st = store::OpenStore("sqlite:" + f.db);
  if (!st.ok()) return st.status();
  const size_t per_device = f.events / f.devices;
  const size_t groups_per_device = std::max<size_t>(1, f.groups / f.devices);
  // Spread over the last 20 hours so the overview's 24 h window holds all.
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t t0 = now - 20 * 3600 * 1000;
  const auto start = Clock::now();
  size_t done = 0;
  // Round-robin over devices, one batch each, several agents per Write.
  for (uint64_t from = 1; from <= per_device; from += f.batch) {
    std::vector<store::WriteOp> ops;
    for (size_t d = 0; d < f.devices; ++d) {
      store::WriteOp op;
      op.agent_id = absl::StrCat("agent-", d);
      for (uint64_t s = from; s < from + f.batch && s <= per_device; ++s) {
        int64_t t = t0 + static_cast<int64_t>(s * (20 * 3600 * 1000LL) / per_device);
        op.events.push_back(MakeEvent(d, s, groups_per_device, t));
      }
      done += op.events.size();
      ops.push_back(std::move(op));
      if (ops.size() == 4 || d + 1 == f.devices) {
        auto r = (*st)->Write(ops);
        if (!r.ok()) return r.status();
        for (const auto& s : *r) {
          if (!s.ok()) return s;
        }
        ops.clear();
      }
    }
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::fprintf(stderr, "\rseeded %zu events (%.0f events/s)", done, done / secs);
  }
  for (size_t d = 0; d < f.devices; ++d) {
    store::AgentRecord a;
    a.agent_id = absl::StrCat("agent-", d);
    a.device_id = absl::StrCat("hub-", d);
    a.device_class = d % 2 ? "hub" : "tv";
    a.last_seen_unix_ms = now;
    if (auto s = (*st)->UpsertAgent(a); !s.ok()) return s;
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::fprintf(stderr, "\nseeded %zu events in %.1f s (%.0f events/s)\n", done, secs, done / secs);
  return absl::OkStatus();
}

// One GET over a fresh loopback connection; returns the status, body in *body.
int Get(int port, const std::string& path, const std::string& token, std::string* body) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  std::string req =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ", token,
                   "\r\nConnection: close\r\n\r\n");
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  std::string resp;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) resp.append(buf, n);
  ::close(fd);
  int status = 0;
  std::sscanf(resp.c_str(), "HTTP/1.1 %d", &status);
  size_t at = resp.find("\r\n\r\n");
  *body = at == std::string::npos ? "" : resp.substr(at + 4);
  return status;
}

struct Timing {
  double p50 = 0, p99 = 0, max = 0;
  size_t bytes = 0;
};

Timing Measure(int port, const std::string& path, const std::string& token, size_t n) {
  std::vector<double> ms;
  Timing t;
  for (size_t i = 0; i < n + 2; ++i) {
    std::string body;
    auto start = Clock::now();
    int status = Get(port, path, token, &body);
    double took = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (status != 200) {
      std::fprintf(stderr, "%s: HTTP %d %s\n", path.c_str(), status, body.substr(0, 200).c_str());
      std::exit(1);
    }
    t.bytes = body.size();
    if (i >= 2) ms.push_back(took);  // two warm-up requests
  }
  std::sort(ms.begin(), ms.end());
  t.p50 = ms[ms.size() / 2];
  t.p99 = ms[std::min(ms.size() - 1, static_cast<size_t>(ms.size() * 0.99))];
  t.max = ms.back();
  return t;
}

int Main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    auto num = [&](size_t* v) {
      if (!absl::SimpleAtoi(next(), v)) {
        std::fprintf(stderr, "%s needs a number\n", k.c_str());
        std::exit(2);
      }
    };
    if (k == "--db")
      f.db = next();
    else if (k == "--events")
      num(&f.events);
    else if (k == "--groups")
      num(&f.groups);
    else if (k == "--devices")
      num(&f.devices);
    else if (k == "--requests")
      num(&f.requests);
    else if (k == "--batch")
      num(&f.batch);
    else if (k == "--browser")
      f.browser = true;
    else if (k == "--serve")
      f.serve_seconds = std::atoi(next().c_str());
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (f.db.empty() || f.devices == 0 || f.requests == 0) {
    std::fprintf(stderr, "usage: idflow-bench-dashboard --db PATH [--events N] [--groups G] ...\n");
    return 2;
  }
  if (!std::filesystem::exists(f.db)) {
    if (auto s = Seed(f); !s.ok()) {
      std::fprintf(stderr, "seeding: %s\n", s.ToString().c_str());
      return 1;
    }
  } else {
    std::fprintf(stderr, "reusing %s\n", f.db.c_str());
  }
  collector::CollectorOptions o;
  o.http = "127.0.0.1:0";
  o.store_url = "sqlite:" + f.db;
  o.policies_dir = IDFLOW_SOURCE_DIR "/policies";
  o.auth_token = "bench-token";
  auto c = collector::Collector::Start(o);
  if (!c.ok()) {
    std::fprintf(stderr, "collector: %s\n", c.status().ToString().c_str());
    return 1;
  }
  const int port = (*c)->http_port();
  std::string body;
  Get(port, "/api/verdicts?limit=1", o.auth_token, &body);
  auto count = (*c)->store().CountEvents({});
  std::printf("store: %s, %s events stored\n", f.db.c_str(),
              count.ok() ? std::to_string(*count).c_str() : "?");
  const struct {
    const char* name;
    std::string path;
  } calls[] = {
      {"overview (24 h, hourly)", "/api/overview"},
      {"matrix (all devices)", "/api/matrix"},
      {"filtered list (SDK + violations, 50 rows)",
       "/api/verdicts?sdk=Lebo%20SDK&finding=violation&limit=50"},
      {"filtered list (device + data type, 50 rows)",
       "/api/verdicts?device=hub-7&data_type=oaid&limit=50"},
      {"filtered list, page 100 (offset 4950)",
       "/api/verdicts?sdk=Lebo%20SDK&finding=violation&limit=50&offset=4950"},
  };
  std::printf(
      "\n| API call | p50 ms | p99 ms | max ms | bytes | target 300 ms "
      "|\n|---|---|---|---|---|---|\n");
  for (const auto& call : calls) {
    Timing t = Measure(port, call.path, o.auth_token, f.requests);
    std::printf("| `%s` %s | %.1f | %.1f | %.1f | %zu | %s |\n", call.path.c_str(), call.name,
                t.p50, t.p99, t.max, t.bytes, t.p99 <= 300 ? "met" : "missed");
    std::fflush(stdout);
  }
  if (f.browser) {
    std::string cmd =
        absl::StrCat("node ", IDFLOW_SOURCE_DIR, "/bench/dashboard/browser_timing.mjs",
                     " --url http://127.0.0.1:", port, " --token ", o.auth_token, " --runs ",
                     f.requests, " --sdk 'Lebo SDK'");
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) return 1;
  }
  if (f.serve_seconds > 0) {
    std::printf("serving http://127.0.0.1:%d/#token=%s for %d s\n", port, o.auth_token.c_str(),
                f.serve_seconds);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::seconds(f.serve_seconds));
  }
  (*c)->Shutdown();
  return 0;
}

}  // namespace
}  // namespace idflow::bench

int main(int argc, char** argv) { return idflow::bench::Main(argc, argv); }

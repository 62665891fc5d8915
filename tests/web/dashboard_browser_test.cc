// The dashboard in a real browser, against real processes: a collector with a
// bearer token, an agent, and the demo part of the scenario suite run under
// the tap (as scripts/demo.sh does). Then dashboard.test.mjs drives Debian's
// chromium through playwright-core: the gate without the token, the matrix
// cells, the filters, the evidence, and a violation made while the page is
// open, which must appear without a reload. Screenshots are kept in
// <build>/tests/web/artifacts.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/harness.h"

namespace idflow::e2e {
namespace {

constexpr char kToken[] = "web-test-token-5f1c";

// GET with the token through curl; "" on failure.
std::string ApiGet(int port, const std::string& path) {
  std::string out, err;
  if (RunToEnd({"curl", "-sS", "--fail", "-H", absl::StrCat("Authorization: Bearer ", kToken),
                absl::StrCat("http://127.0.0.1:", port, path)},
               &out, &err) != 0) {
    return "";
  }
  return out;
}

// Verdict groups stored so far (all findings), -1 when the API fails.
int GroupCount(int port) {
  auto j = nlohmann::json::parse(ApiGet(port, "/api/verdicts?limit=1000"), nullptr, false);
  if (j.is_discarded() || !j.contains("verdicts")) return -1;
  return static_cast<int>(j["verdicts"].size());
}

std::vector<std::string> RunFlowArgs(const std::string& dir, const std::string& socket,
                                     const std::string& sdk, const std::string& flow,
                                     const std::string& scenario, const std::string& consent,
                                     int tls_port, const std::string& iface) {
  std::vector<std::string> argv = {BinDir() + "/idflowctl", "run", "--socket", socket};
  if (scenario != "-") argv.insert(argv.end(), {"--scenario", scenario});
  if (consent != "-") {
    for (absl::string_view kv : absl::StrSplit(consent, ',')) {
      argv.insert(argv.end(), {"--consent", std::string(kv)});
    }
  }
  argv.insert(argv.end(),
              {"--", BinDir() + "/idflow-scenario-host", "--sdk", sdk, "--flow", flow, "--props",
               dir + "/props", "--tls-port", std::to_string(tls_port), "--iface", iface});
  return argv;
}

TEST(DashboardBrowser, ScenarioDataInChromium) {
  // Installed by scripts/install-deps.sh: their absence fails, never skips.
  ASSERT_EQ(::access("/usr/bin/chromium", X_OK), 0) << "chromium is not installed";
  const std::string web = SourceDir() + "/tests/web";
  ASSERT_TRUE(std::filesystem::exists(web + "/node_modules/playwright-core/package.json"))
      << "playwright-core missing: run `npm ci` in tests/web (scripts/install-deps.sh does)";
  ASSERT_EQ(RunToEnd({"/usr/bin/env", "node", "--version"}, nullptr, nullptr), 0)
      << "node is not installed";

  const std::string dir = MakeTempDir("idflow-web");
  WriteText(dir + "/token", std::string(kToken) + "\n");
  ASSERT_EQ(RunToEnd({BinDir() + "/idflow-scenario-host", "--write-device", dir}, nullptr, nullptr),
            0);
  Process collector(
      {BinDir() + "/idflow-collector", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
       "--store", "sqlite:" + dir + "/idflow.db", "--policies", SourceDir() + "/policies",
       "--port-file", dir + "/ports", "--auth-token-file", dir + "/token"},
      dir + "/collector");
  int grpc = 0, http = 0;
  ASSERT_TRUE(WaitFor([&] {
    return std::sscanf(Slurp(dir + "/ports").c_str(), "grpc=%d\nhttp=%d", &grpc, &http) == 2 ||
           !collector.Running();
  }));
  ASSERT_GT(http, 0) << collector.Stderr();
  const std::string socket = dir + "/agent.sock";
  Process agent({BinDir() + "/idflow-agent", "--collector", absl::StrCat("127.0.0.1:", grpc),
                 "--socket", socket, "--spool", dir + "/spool", "--identity",
                 dir + "/identity.yaml", "--token-file", dir + "/token", "--config", "",
                 // The scenario's data, whole: no self-limits (a sanitized agent is far larger).
                 "--watchdog-max-rss-mb", "0", "--watchdog-max-cpu-percent", "0"},
                dir + "/agent");
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(socket) || !agent.Running(); }));
  ASSERT_TRUE(agent.Running()) << agent.Stderr();
  TlsServer tls(dir, /*serve_files=*/true);
  ASSERT_TRUE(tls.ok());

  // The demo's runs (scripts/demo.sh): "SDK FLOW SCENARIO CONSENT" lines, then "groups N".
  const std::string iface = FirstMacInterface().empty() ? "none" : FirstMacInterface();
  std::string plan;
  ASSERT_EQ(RunToEnd({BinDir() + "/idflow-scenario-host", "--demo-plan", "--iface", iface}, &plan,
                     nullptr),
            0);
  int groups = 0;
  for (absl::string_view line : absl::StrSplit(plan, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    ASSERT_EQ(f.size(), f[0] == "groups" ? 2u : 4u) << line;
    if (f[0] == "groups") {
      groups = std::stoi(f[1]);
      continue;
    }
    std::string err;
    ASSERT_EQ(RunToEnd(RunFlowArgs(dir, socket, f[0], f[1], f[2], f[3], tls.port(), iface), nullptr,
                       &err),
              0)
        << line << ": " << err;
  }
  ASSERT_GT(groups, 0);
  ASSERT_TRUE(WaitFor([&] { return GroupCount(http) == groups; }))
      << GroupCount(http) << " groups stored, " << groups << " expected";

  // Cells the scenario table fixes (tests/fixtures/scenario_table.h).
  const std::string artifacts = IDFLOW_WEB_ARTIFACTS;
  std::filesystem::create_directories(artifacts);
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "node",
                                   web + "/dashboard.test.mjs",
                                   "--url",
                                   absl::StrCat("http://127.0.0.1:", http),
                                   "--token",
                                   kToken,
                                   "--out",
                                   artifacts,
                                   "--filter-sdk",
                                   "Lebo SDK",
                                   "--live-type",
                                   "device_id",
                                   "--live-verdict",
                                   "omitted"};
  for (const char* cell :
       {"Lebo SDK|oaid|violation", "Lebo SDK|device_name|clear", "Yunkong SDK|oaid|violation",
        "Mi Fitness|device_fid|vague", "OneTrack SDK|oaid|violation", "IDM SDK|device_id|clear",
        "IDM SDK|p2p_address|declared", "|oaid|violation"}) {
    argv.insert(argv.end(), {"--cell", cell});
  }
  Process node(argv, dir + "/node");
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(node.Stdout(), "LIVE-READY") || !node.Running(); },
              std::chrono::seconds(90)))
      << node.Stdout() << node.Stderr();
  ASSERT_THAT(node.Stdout(), ::testing::HasSubstr("LIVE-READY")) << node.Stderr();
  // The new violation, while the page is open: the phone's device id sent by
  // the car SDK (omitted: its entry declares the car's id only).
  std::string err;
  ASSERT_EQ(RunToEnd(RunFlowArgs(dir, socket, "mis_sdk", "car-phone-id", "car_connection", "-",
                                 tls.port(), iface),
                     nullptr, &err),
            0)
      << err;
  EXPECT_EQ(node.Wait(), 0) << node.Stdout() << node.Stderr();
  EXPECT_THAT(node.Stdout(), ::testing::HasSubstr("checks passed"));
  for (const char* png : {"locked.png", "overview.png", "matrix.png", "violation-evidence.png",
                          "device.png", "policies.png", "live.png"}) {
    EXPECT_TRUE(std::filesystem::exists(artifacts + "/" + png)) << png;
  }
}

}  // namespace
}  // namespace idflow::e2e

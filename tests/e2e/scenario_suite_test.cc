// The scenario suite: every simulated SDK of tests/fixtures/scenario_table.h
// runs its flows under the real tap, with the row's usage scenario and
// consent (IDFLOW_SCENARIO / IDFLOW_CONSENT), against an agent and a collector
// on loopback (tools/embedded_stack, as `idflowctl qa` runs them). The test
// waits on the agent's accounting until everything is judged, then asserts
// the exact set of verdict groups: every entry of statement v20250508 clear
// and violated, the mini program's consent rules, the cookie policies.
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"
#include "tests/fixtures/scenario_table.h"
#include "tools/embedded_stack.h"
#include "tools/tap_launch.h"

namespace idflow::e2e {
namespace {

using fixtures::kScenarioFlows;
using fixtures::ScenarioFlow;

// One verdict group as the table writes it.
std::string GroupKey(const idflow::v1::Verdict& v) {
  if (!v.cookie_name().empty()) return absl::StrCat("cookie ", v.cookie_name(), " ", v.verdict());
  return absl::StrCat(v.action(), " ", v.data_type(), " ", v.verdict(), " ",
                      v.entry().empty() ? "-" : v.entry());
}

// The groups the table expects from `sdk`'s flows (mac_address groups only
// on a machine with a MAC address).
std::set<std::string> ExpectedGroups(const std::string& sdk, bool has_mac) {
  std::set<std::string> want;
  for (const ScenarioFlow& f : kScenarioFlows) {
    if (sdk != f.sdk) continue;
    for (absl::string_view g : absl::StrSplit(f.expect, ';', absl::SkipEmpty())) {
      if (!has_mac && absl::StrContains(g, " mac_address ")) continue;
      want.insert(std::string(g));
    }
  }
  return want;
}

std::vector<std::string> SuiteSdks() {
  std::vector<std::string> sdks;
  for (const ScenarioFlow& f : kScenarioFlows) {
    if (std::find(sdks.begin(), sdks.end(), f.sdk) == sdks.end()) sdks.push_back(f.sdk);
  }
  return sdks;
}

// Another process on the device (this test) listening on a unix stream
// socket: the peer of the SDKs' local IPC.
class UnixPeer {
 public:
  explicit UnixPeer(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::listen(fd_, 16) == 0;
    thread_ = std::thread([this] {
      while (true) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[4096];
        while (::read(c, buf, sizeof(buf)) > 0) {
        }
        ::close(c);
      }
    });
  }
  ~UnixPeer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  bool ok() const { return ok_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::thread thread_;
};

// A TLS server for the whole binary, started before any test starts threads
// (it forks).
class TlsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    dir_ = MakeTempDir("idflow-scenario-tls");
    server_ = std::make_unique<TlsServer>(dir_, /*serve_files=*/true);
  }
  void TearDown() override { server_.reset(); }
  static int port() { return server_ && server_->ok() ? server_->port() : 0; }

 private:
  std::string dir_;
  static inline std::unique_ptr<TlsServer> server_;
};

// Runs `argv` under the tap with the row's context; returns its exit code.
// Everything exec needs is built before the fork (this process has threads).
int RunUnderTap(const tools::TapLaunch& launch) {
  tools::PreparedExec exec(launch);
  pid_t pid = ::fork();
  if (pid == 0) {
    exec.Exec();
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class SdkFlows : public ::testing::TestWithParam<std::string> {};

TEST_P(SdkFlows, JudgedExactlyAsTheTableSays) {
  const std::string sdk = GetParam();
  const std::string dir = MakeTempDir("idflow-scenario");
  ASSERT_FALSE(dir.empty());
  ASSERT_GT(TlsEnvironment::port(), 0) << "openssl s_server did not start";
  std::string identity = "device:\n  id: scenario-hub-0001\n  class: hub\nidentifiers:\n";
  std::string props;
  for (const auto& v : fixtures::kScenarioValues) {
    absl::StrAppend(&identity, "  - kind: ", v.kind, "\n    value: \"", v.value, "\"\n");
    absl::StrAppend(&props, v.kind, "=", v.value, "\n");
  }
  WriteText(dir + "/identity.yaml", identity);
  WriteText(dir + "/props", props);
  UnixPeer peer(dir + "/peer.sock");
  ASSERT_TRUE(peer.ok());

  tools::EmbeddedStackOptions options;
  options.policies_dir = SourceDir() + "/policies";
  options.identity_file = dir + "/identity.yaml";
  auto stack = tools::EmbeddedStack::Start(options);
  ASSERT_TRUE(stack.ok()) << stack.status();

  const std::string iface = FirstMacInterface();
  for (const ScenarioFlow& f : kScenarioFlows) {
    if (sdk != f.sdk) continue;
    tools::TapLaunch launch;
    launch.socket = (*stack)->socket();
    launch.tap = LibDir() + "/libidflow-tap.so";
    launch.scenarios = absl::StrSplit(f.scenario, ',', absl::SkipEmpty());
    launch.consents = absl::StrSplit(f.consent, ',', absl::SkipEmpty());
    launch.command = {BinDir() + "/idflow-scenario-host",
                      "--sdk",
                      f.sdk,
                      "--flow",
                      f.id,
                      "--props",
                      dir + "/props",
                      "--tls-port",
                      std::to_string(TlsEnvironment::port()),
                      "--unix",
                      dir + "/peer.sock",
                      "--iface",
                      iface.empty() ? "none" : iface};
    ASSERT_EQ(RunUnderTap(launch), 0) << sdk << " flow " << f.id;
  }
  // Every event the taps handed over is judged: the agent's accounting, no sleep.
  ASSERT_TRUE((*stack)->WaitJudged(std::chrono::seconds(60)).ok());

  const std::vector<idflow::v1::Verdict> verdicts = QueryVerdicts((*stack)->collector_address());
  std::set<std::string> got;
  for (const auto& v : verdicts) {
    got.insert(GroupKey(v));
    // The SDK is held responsible, never the host app or a runtime library.
    EXPECT_EQ(Basename(v.module()), absl::StrCat("lib", sdk, ".so")) << GroupKey(v);
    EXPECT_FALSE(IsRuntimeModule(v.module())) << GroupKey(v);
    EXPECT_TRUE(absl::EndsWith(v.explanation(), ".")) << v.explanation();
    EXPECT_FALSE(v.statement().empty()) << GroupKey(v);
  }
  EXPECT_EQ(got, ExpectedGroups(sdk, !iface.empty()))
      << "got:\n"
      << absl::StrJoin(got, "\n") << "\nexplanations:\n"
      << absl::StrJoin(verdicts, "\n", [](std::string* out, const idflow::v1::Verdict& v) {
           absl::StrAppend(out, GroupKey(v), ": ", v.explanation());
         });
}

INSTANTIATE_TEST_SUITE_P(Scenario, SdkFlows, ::testing::ValuesIn(SuiteSdks()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// Across the suite every violation category of a flow appears, and every
// cookie verdict; each is asserted above by the SDK that produces it.
TEST(ScenarioTable, CoversEveryCategoryAndEveryStatementEntry) {
  std::set<std::string> categories, entries, violated;
  for (const ScenarioFlow& f : kScenarioFlows) {
    for (absl::string_view g : absl::StrSplit(f.expect, ';', absl::SkipEmpty())) {
      std::vector<std::string> w = absl::StrSplit(g, ' ');
      ASSERT_GE(w.size(), 3u) << g;
      categories.insert(w[2]);
      if (w.size() == 4) (w[2] == "clear" ? entries : violated).insert(w[3]);
    }
  }
  // Every entry judged clear is also violated by a flow the table names it in.
  for (const std::string& e : entries) EXPECT_TRUE(violated.count(e)) << e;
  for (const char* c : {"clear", "omitted", "wrong_recipient", "out_of_scenario", "no_consent",
                        "method_mismatch", "undeclared_party", "vague", "undeclared_cookie",
                        "lifetime_exceeded", "third_party_cookie"}) {
    EXPECT_TRUE(categories.count(c)) << c;
  }
  // 15 statement entries and the two mini-program features judged clear.
  EXPECT_EQ(entries.size(), 17u) << absl::StrJoin(entries, ", ");
}

}  // namespace
}  // namespace idflow::e2e

int main(int argc, char** argv) {
  // Acquisitions are matched in the tap, with the pattern database it loads
  // at start-up: let it wait for the agent however loaded the machine is, so
  // that no acquisition the table expects depends on timing.
  setenv("IDFLOW_TAP_TIMEOUT_MS", "10000", 1);
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new idflow::e2e::TlsEnvironment);
  return RUN_ALL_TESTS();
}

// The scenario suite: every simulated SDK of tests/fixtures/scenario_table.h
// runs its flows under the real tap, with the row's usage scenario and
// consent (IDFLOW_SCENARIO / IDFLOW_CONSENT), against an agent and a collector
// on loopback (tools/embedded_stack, as `idflowctl qa` runs them). The test
// waits on the agent's accounting until everything is judged, then asserts
// the exact set of verdict groups: every entry of statement v20250508 clear
// and violated, the mini program's consent rules, the cookie policies.
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "collector/policy/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"
#include "tests/fixtures/scenario_table.h"
#include "tools/embedded_stack.h"
#include "tools/sdk_summary.h"
#include "tools/tap_launch.h"

namespace idflow::e2e {
namespace {

using fixtures::kScenarioFlows;
using fixtures::ScenarioFlow;
using ::testing::HasSubstr;

// One verdict group as the table writes it.
std::string GroupKey(const idflow::v1::Verdict& v) {
  if (!v.cookie_name().empty()) return absl::StrCat("cookie ", v.cookie_name(), " ", v.verdict());
  return absl::StrCat(v.action(), " ", v.data_type(), " ", v.verdict(), " ",
                      v.entry().empty() ? "-" : v.entry());
}

// The groups the table expects from row `f` (mac_address groups only on a
// machine with a MAC address).
std::vector<std::string> Groups(const ScenarioFlow& f, bool has_mac) {
  std::vector<std::string> out;
  for (absl::string_view g : absl::StrSplit(f.expect, ';', absl::SkipEmpty())) {
    if (has_mac || !absl::StrContains(g, " mac_address ")) out.emplace_back(g);
  }
  return out;
}

// The groups the table expects from `sdk`'s flows.
std::set<std::string> ExpectedGroups(const std::string& sdk, bool has_mac) {
  std::set<std::string> want;
  for (const ScenarioFlow& f : kScenarioFlows) {
    if (sdk != f.sdk) continue;
    for (std::string& g : Groups(f, has_mac)) want.insert(std::move(g));
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

// Runs a program to its end, not under the tap (posix_spawn: nothing runs
// in a child of this multithreaded process); returns its exit code.
int RunPlain(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return 127;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The simulated device (idflow-scenario-host --write-device), a unix peer,
// an embedded agent and collector; runs table rows under the tap with their
// scenario and consent, then waits until everything is judged.
class ScenarioRun {
 public:
  ScenarioRun() : dir_(MakeTempDir("idflow-scenario")), peer_(dir_ + "/peer.sock") {}

  // Starts the stack; "" or why it failed.
  std::string Start() {
    if (dir_.empty() || !peer_.ok()) return "no scratch directory or unix peer";
    if (TlsEnvironment::port() <= 0) return "openssl s_server did not start";
    if (RunPlain({BinDir() + "/idflow-scenario-host", "--write-device", dir_}) != 0) {
      return "idflow-scenario-host --write-device failed";
    }
    tools::EmbeddedStackOptions options;
    options.policies_dir = SourceDir() + "/policies";
    options.identity_file = dir_ + "/identity.yaml";
    auto stack = tools::EmbeddedStack::Start(options);
    if (!stack.ok()) return std::string(stack.status().message());
    stack_ = *std::move(stack);
    return "";
  }

  // The row's exit code under the tap.
  int Run(const ScenarioFlow& f) {
    tools::TapLaunch launch;
    launch.socket = stack_->socket();
    launch.tap = LibDir() + "/libidflow-tap.so";
    launch.scenarios = absl::StrSplit(f.scenario, ',', absl::SkipEmpty());
    launch.consents = absl::StrSplit(f.consent, ',', absl::SkipEmpty());
    launch.command = {BinDir() + "/idflow-scenario-host",
                      "--sdk",
                      f.sdk,
                      "--flow",
                      f.id,
                      "--props",
                      dir_ + "/props",
                      "--tls-port",
                      std::to_string(TlsEnvironment::port()),
                      "--unix",
                      dir_ + "/peer.sock",
                      "--iface",
                      iface_.empty() ? "none" : iface_};
    return RunUnderTap(launch);
  }

  // Every event the taps handed over judged (the agent's accounting, no
  // sleep), then every verdict group.
  std::vector<idflow::v1::Verdict> Verdicts() {
    absl::Status st = stack_->WaitJudged(std::chrono::seconds(60));
    EXPECT_TRUE(st.ok()) << st;
    return QueryVerdicts(stack_->collector_address());
  }

  bool has_mac() const { return !iface_.empty(); }

 private:
  std::string dir_;
  UnixPeer peer_;
  std::string iface_ = FirstMacInterface();
  std::unique_ptr<tools::EmbeddedStack> stack_;
};

std::string Explained(const std::vector<idflow::v1::Verdict>& verdicts) {
  return absl::StrJoin(verdicts, "\n", [](std::string* out, const idflow::v1::Verdict& v) {
    absl::StrAppend(out, Basename(v.module()), " ", GroupKey(v), ": ", v.explanation());
  });
}

class SdkFlows : public ::testing::TestWithParam<std::string> {};

TEST_P(SdkFlows, JudgedExactlyAsTheTableSays) {
  const std::string sdk = GetParam();
  ScenarioRun run;
  const std::string why = run.Start();
  ASSERT_EQ(why, "");
  for (const ScenarioFlow& f : kScenarioFlows) {
    if (sdk == f.sdk) {
      ASSERT_EQ(run.Run(f), 0) << sdk << " flow " << f.id;
    }
  }
  const std::vector<idflow::v1::Verdict> verdicts = run.Verdicts();
  std::set<std::string> got;
  for (const auto& v : verdicts) {
    got.insert(GroupKey(v));
    // The SDK is held responsible, never the host app or a runtime library.
    EXPECT_EQ(Basename(v.module()), absl::StrCat("lib", sdk, ".so")) << GroupKey(v);
    EXPECT_FALSE(IsRuntimeModule(v.module())) << GroupKey(v);
    EXPECT_TRUE(absl::EndsWith(v.explanation(), ".")) << v.explanation();
    EXPECT_FALSE(v.statement().empty()) << GroupKey(v);
  }
  EXPECT_EQ(got, ExpectedGroups(sdk, run.has_mac())) << "got:\n" << Explained(verdicts);
}

INSTANTIATE_TEST_SUITE_P(Scenario, SdkFlows, ::testing::ValuesIn(SuiteSdks()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// The README's demo (scripts/demo.sh runs the same plan, kDemoFlows, with
// `idflowctl run` and prints `idflowctl summary`): exactly the verdict groups
// the table gives its rows, as many as the plan announces, and a summary
// whose every line is one of them.
TEST(DemoTest, DemoPrintsExactlyTheTrueVerdicts) {
  ScenarioRun run;
  const std::string why = run.Start();
  ASSERT_EQ(why, "");
  std::set<std::string> want;
  for (const fixtures::FlowRef& ref : fixtures::kDemoFlows) {
    for (const ScenarioFlow& f : kScenarioFlows) {
      if (std::string(f.sdk) != ref.sdk || std::string(f.id) != ref.id) continue;
      ASSERT_EQ(run.Run(f), 0) << f.sdk << " flow " << f.id;
      for (const std::string& g : Groups(f, run.has_mac())) {
        want.insert(absl::StrCat("lib", f.sdk, ".so ", g));
      }
    }
  }
  const std::vector<idflow::v1::Verdict> verdicts = run.Verdicts();
  std::set<std::string> got;
  for (const auto& v : verdicts) got.insert(absl::StrCat(Basename(v.module()), " ", GroupKey(v)));
  EXPECT_EQ(got, want) << Explained(verdicts);
  // One stored group per table group: the count the demo script waits for.
  EXPECT_EQ(verdicts.size(), want.size()) << Explained(verdicts);

  auto policy = policy::LoadPolicyDir(SourceDir() + "/policies");
  ASSERT_TRUE(policy.ok()) << policy.status();
  const std::string summary =
      tools::FormatSdkSummary(tools::SummarizeSdks(*policy, verdicts), verdicts);
  EXPECT_THAT(summary, HasSubstr(absl::StrCat(
                           "Lebo SDK (liblebo_sdk.so)\n  declared  device_name, device_type\n"
                           "  observed  device_name (declared: clear), device_type (declared: "
                           "clear), ",
                           run.has_mac() ? "mac_address (not declared: omitted), " : "",
                           "oaid (not declared: omitted)\n")))
      << summary;
  EXPECT_THAT(summary, HasSubstr("libadnet_sdk.so\n  declared  nothing (no statement names it)\n"
                                 "  observed  oaid (not declared: undeclared_party)\n"))
      << summary;
  EXPECT_THAT(summary, HasSubstr("  cookies   passToken (third_party_cookie), pass_ua "
                                 "(lifetime_exceeded), trackId (undeclared_cookie), uLocale "
                                 "(clear), userId (clear)\n"))
      << summary;
  // Every violation is listed with its explanation.
  size_t violations = 0;
  for (const auto& v : verdicts) {
    if (v.finding() != idflow::v1::FINDING_VIOLATION) continue;
    ++violations;
    EXPECT_THAT(summary, HasSubstr(absl::StrCat("\n    ", v.explanation(), "\n"))) << GroupKey(v);
  }
  EXPECT_THAT(summary, HasSubstr(absl::StrCat("\nViolations (", violations, ")\n")));
}

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
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new idflow::e2e::TlsEnvironment);
  return RUN_ALL_TESTS();
}

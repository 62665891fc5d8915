// TLS the preload tap cannot see, caught by the agent's uprobe source (issue
// 14), end to end: a C program linked statically against OpenSSL, a Go
// program (crypto/tls) and a Node.js program (OpenSSL inside the node
// binary) each send the device's OAID over TLS to a local openssl s_server
// under `idflowctl run`; the event reaches the collector with the probe's
// channel, the program as its module, and the run's id. Where uprobes
// cannot run (no CAP_BPF, a build without libbpf) the agent's coverage line
// says why and the test is skipped with those words, never silently.
// Also: a write both sources could see is counted once, and an agent without
// the privilege says so in `idflowctl run` and in `idflowctl qa` reports.
#include <unistd.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace idflow::e2e {
namespace {

using idflow::v1::Event;

std::vector<Event> ListEvents(const std::string& address) {
  std::vector<Event> out;
  for (auto& se : QueryEvents(address)) out.push_back(std::move(*se.mutable_event()));
  return out;
}

// The "idflowctl run: tls: ..." line of a run's stderr ("" when none).
std::string CoverageLine(const std::string& err) {
  for (absl::string_view line : absl::StrSplit(err, '\n')) {
    if (absl::ConsumePrefix(&line, "idflowctl run: tls: ")) return absl::StrCat("tls: ", line);
  }
  return "";
}

bool Executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// `idflowctl qa` of `command` against a running stack, with a JSON report;
// returns the report's tls_coverage ("" when it has none) and fills *log
// with qa's stderr and the report, for failure messages.
std::string QaCoverage(const Stack& stack, const std::string& run_id,
                       const std::vector<std::string>& command, std::string* log) {
  const std::string report = absl::StrCat(stack.dir, "/", run_id, ".json");
  std::vector<std::string> argv = {"/usr/bin/timeout",
                                   "120",
                                   BinDir() + "/idflowctl",
                                   "qa",
                                   "--socket",
                                   stack.socket,
                                   "--collector",
                                   stack.collector_address(),
                                   "--run-id",
                                   run_id,
                                   "--format",
                                   "json",
                                   "--out",
                                   report,
                                   "--tap",
                                   LibDir() + "/libidflow-tap.so",
                                   "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  std::string out, err;
  RunToEnd(argv, &out, &err);
  *log = err + Slurp(report);
  for (absl::string_view line : absl::StrSplit(Slurp(report), '\n', absl::SkipEmpty())) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("tls_coverage")) return j["tls_coverage"];
  }
  return "";
}

class TlsUprobeE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(stack_.Start(&why)) << why;
    tls_ = std::make_unique<TlsServer>(stack_.dir);
    ASSERT_TRUE(tls_->ok());
  }

  std::string Payload() const { return absl::StrCat("id=", Stack::kOaid, "&run=1"); }

  // `idflowctl run` of argv against the stack; returns its stderr.
  std::string Run(std::vector<std::string> argv, const std::string& run_id) {
    std::vector<std::string> full = {
        "/usr/bin/timeout", "60",    BinDir() + "/idflowctl",       "run", "--socket",
        stack_.socket,      "--tap", LibDir() + "/libidflow-tap.so"};
    full.insert(full.end(), {"--scenario", "uprobe-e2e"});
    full.push_back("--");
    full.insert(full.end(), argv.begin(), argv.end());
    std::string out, err;
    const int code = RunToEnd(full, &out, &err, {{"IDFLOW_RUN_ID", run_id}});
    EXPECT_EQ(code, 0) << argv[0] << "\nstdout: " << out << "\nstderr: " << err;
    EXPECT_TRUE(absl::StrContains(out, "done ")) << out;
    return err;
  }

  // Waits for the event of `channel` carrying the OAID.
  bool WaitEvent(const std::string& channel, Event* found) {
    return WaitFor([&] {
      for (const Event& ev : ListEvents(stack_.collector_address())) {
        if (ev.channel() == channel && ev.identifier().kind() == "oaid") {
          *found = ev;
          return true;
        }
      }
      return false;
    });
  }

  std::string Dump() {
    std::string s;
    for (const Event& ev : ListEvents(stack_.collector_address())) {
      absl::StrAppend(&s, ev.channel(), " ", ev.identifier().kind(),
                      " host=", ev.destination().hostname(), " exe=", ev.origin().exe(), "\n");
    }
    return s + "agent: " + stack_.agent->Stderr();
  }

  // Runs a fixture and checks its event: probe channel, program, run id.
  void ExpectCaught(std::vector<std::string> argv, const std::string& program,
                    const std::string& channel, const std::string& probe) {
    const std::string run_id = absl::StrCat("uprobe-", ::getpid(), "-", channel);
    const std::string err = Run(argv, run_id);
    const std::string coverage = CoverageLine(err);
    ASSERT_FALSE(coverage.empty()) << "idflowctl run printed no coverage line:\n" << err;
    if (absl::StrContains(coverage, "uprobe: unavailable")) {
      GTEST_SKIP() << "uprobes cannot run here, as the agent says: " << coverage;
    }
    EXPECT_TRUE(absl::StrContains(coverage, absl::StrCat(probe, " in ", program))) << coverage;
    Event ev;
    ASSERT_TRUE(WaitEvent(channel, &ev)) << Dump();
    EXPECT_EQ(ev.action(), idflow::v1::ACTION_TRANSMIT);
    EXPECT_EQ(ev.identifier().encoding(), "raw");
    EXPECT_EQ(ev.destination().hostname(), "localhost");  // the request's Host
    EXPECT_EQ(ev.origin().exe(), program);
    ASSERT_GT(ev.origin().call_chain_size(), 0) << Dump();
    EXPECT_EQ(ev.origin().call_chain(0).path(), program);
    EXPECT_EQ(ev.run_id(), run_id);
    ASSERT_EQ(ev.context().scenarios_size(), 1);
    EXPECT_EQ(ev.context().scenarios(0), "uprobe-e2e");
  }

  Stack stack_;
  std::unique_ptr<TlsServer> tls_;
};

TEST_F(TlsUprobeE2e, StaticOpensslProgramIsCaught) {
  const std::string prog = BinDir() + "/static_ssl_client";
  ASSERT_TRUE(Executable(prog)) << prog;
  ExpectCaught({prog, std::to_string(tls_->port()), Payload()}, prog, "tls-uprobe-openssl",
               "openssl SSL_write");
}

TEST_F(TlsUprobeE2e, StaticOpensslWriteExIsCaught) {
  const std::string prog = BinDir() + "/static_ssl_client";
  ASSERT_TRUE(Executable(prog)) << prog;
  ExpectCaught({prog, std::to_string(tls_->port()), Payload(), "--write-ex"}, prog,
               "tls-uprobe-openssl", "openssl SSL_write_ex");
}

TEST_F(TlsUprobeE2e, GoCryptoTlsProgramIsCaught) {
  const std::string prog = BinDir() + "/go_tls_client";
  if (!Executable(prog)) GTEST_SKIP() << prog << " was not built: Go (golang-go) was not found";
  ExpectCaught({prog, std::to_string(tls_->port()), Payload()}, prog, "tls-uprobe-go",
               "go crypto/tls.(*Conn).Write");
}

TEST_F(TlsUprobeE2e, NodeProgramIsCaught) {
  std::string node, err;
  if (RunToEnd({"/bin/sh", "-c", "readlink -f \"$(command -v node)\""}, &node, &err) != 0 ||
      node.empty()) {
    GTEST_SKIP() << "node is not installed";
  }
  node = std::string(absl::StripTrailingAsciiWhitespace(node));
  std::string syms;
  RunToEnd({"/bin/sh", "-c", "nm -D --defined-only " + node + " | grep -c ' SSL_write$'"}, &syms,
           &err);
  if (absl::StripTrailingAsciiWhitespace(syms) == "0") {
    // Debian's own nodejs links libssl: the preload tap sees it (tap_e2e).
    GTEST_SKIP() << node << " calls OpenSSL through libssl, which the preload tap covers";
  }
  ExpectCaught({node, BinDir() + "/node_tls_client.js", std::to_string(tls_->port()), Payload()},
               node, "tls-uprobe-openssl", "openssl SSL_write");
}

// A program that calls libssl through the dynamic linker is the tap's: the
// uprobe source leaves libssl to it, so the write is one event, not two.
// `idflowctl qa` against the running agent flushes the run, so every event
// it made is stored when it returns; its report carries the coverage line.
TEST_F(TlsUprobeE2e, AWriteBothSourcesCouldSeeIsCountedOnce) {
  const std::string prog = BinDir() + "/dynamic_ssl_client";
  ASSERT_TRUE(Executable(prog)) << prog;
  const std::string run_id = absl::StrCat("uprobe-", ::getpid(), "-once");
  std::string log;
  const std::string coverage =
      QaCoverage(stack_, run_id, {prog, std::to_string(tls_->port()), Payload()}, &log);
  ASSERT_TRUE(absl::StartsWith(coverage, "tls: preload libssl, libgnutls; uprobe: "))
      << coverage << "\n"
      << log;
  int tap = 0, uprobe = 0;
  for (const Event& e : ListEvents(stack_.collector_address())) {
    if (e.run_id() != run_id || e.identifier().kind() != "oaid") continue;
    if (e.channel() == "tls-openssl") tap += static_cast<int>(e.count());
    if (absl::StartsWith(e.channel(), "tls-uprobe")) uprobe += static_cast<int>(e.count());
  }
  EXPECT_EQ(tap, 1) << Dump() << log;
  EXPECT_EQ(uprobe, 0) << Dump();
}

// `--tls-uprobe-exe`: every process of a configured executable is probed,
// also one nobody asked for; a run of it that also asks is one probe, one
// event per write.
TEST(TlsUprobeConfigured, EveryProcessOfAConfiguredExecutableOnce) {
  const std::string prog = BinDir() + "/static_ssl_client";
  ASSERT_TRUE(Executable(prog)) << prog;
  Stack stack;
  stack.agent_args = {"--tls-uprobe-exe", prog};
  std::string why;
  ASSERT_TRUE(stack.Start(&why)) << why;
  if (absl::StrContains(stack.agent->Stderr(), "tls uprobes: unavailable")) {
    GTEST_SKIP() << "uprobes cannot run here, as the agent says: " << stack.agent->Stderr();
  }
  EXPECT_TRUE(absl::StrContains(
      stack.agent->Stderr(),
      absl::StrCat("tls coverage of every process of ", prog,
                   ": tls: uprobe: openssl SSL_write in ", prog, " (every process)")))
      << stack.agent->Stderr();
  TlsServer tls(stack.dir);
  ASSERT_TRUE(tls.ok());
  // Started directly: no tap, no request, the device's context.
  std::string out, err;
  ASSERT_EQ(
      RunToEnd({prog, std::to_string(tls.port()), absl::StrCat("id=", Stack::kOaid)}, &out, &err),
      0)
      << err;
  ASSERT_TRUE(WaitFor([&] {
    for (const Event& e : ListEvents(stack.collector_address())) {
      if (e.channel() == "tls-uprobe-openssl" && e.run_id().empty()) return true;
    }
    return false;
  })) << stack.agent->Stderr();

  // The same program in a qa run: watched twice over, probed once.
  const std::string run_id = absl::StrCat("uprobe-", ::getpid(), "-configured");
  std::string log;
  const std::string coverage = QaCoverage(
      stack, run_id, {prog, std::to_string(tls.port()), absl::StrCat("id=", Stack::kOaid)}, &log);
  int64_t count = 0;
  for (const Event& e : ListEvents(stack.collector_address())) {
    if (e.run_id() == run_id && e.identifier().kind() == "oaid") count += e.count();
  }
  EXPECT_EQ(count, 1) << log << stack.agent->Stderr();
  EXPECT_TRUE(absl::StrContains(coverage, "(every process)")) << coverage << "\n" << log;
}

// Without CAP_BPF and CAP_PERFMON the agent cannot probe: the run says so,
// once, with the reason, and the static program's write is a stated blind
// spot, not an event.
TEST(TlsUprobeUnprivileged, TheCoverageLineSaysWhy) {
  Stack stack;
  std::string why;
  ASSERT_TRUE(stack.StartCollector(&why)) << why;
  // The agent under setpriv, without the capabilities BPF needs.
  stack.agent_wrapper = {"/usr/bin/setpriv", "--bounding-set",           "-bpf,-perfmon,-sys_admin",
                         "--inh-caps",       "-bpf,-perfmon,-sys_admin", "--"};
  ASSERT_TRUE(stack.StartAgent(&why, stack.collector_address())) << why;
  TlsServer tls(stack.dir);
  ASSERT_TRUE(tls.ok());
  const std::string prog = BinDir() + "/static_ssl_client";
  std::string out, err;
  ASSERT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", stack.socket, "--tap",
                      LibDir() + "/libidflow-tap.so", "--", prog, std::to_string(tls.port()),
                      absl::StrCat("id=", Stack::kOaid)},
                     &out, &err),
            0)
      << err;
  EXPECT_EQ(CoverageLine(err),
            "tls: preload libssl, libgnutls; uprobe: unavailable (no CAP_BPF and CAP_PERFMON: "
            "loading the probes was refused (Operation not permitted))")
      << err;
  EXPECT_TRUE(absl::StrContains(stack.agent->Stderr(), "tls uprobes: unavailable (no CAP_BPF"))
      << stack.agent->Stderr();

  // `idflowctl qa` against that agent: its report says the same.
  std::string log;
  const std::string coverage =
      QaCoverage(stack, "uprobe-unprivileged",
                 {prog, std::to_string(tls.port()), absl::StrCat("id=", Stack::kOaid)}, &log);
  EXPECT_TRUE(
      absl::StartsWith(coverage, "tls: preload libssl, libgnutls; uprobe: unavailable (no CAP_BPF"))
      << coverage << "\n"
      << log;
  // The blind spot is stated, and nothing was made up: no event of the write.
  for (const Event& e : ListEvents(stack.collector_address())) {
    EXPECT_FALSE(absl::StartsWith(e.channel(), "tls-")) << e.channel();
  }
}

}  // namespace
}  // namespace idflow::e2e

// End-to-end: collector, agent and programs under the tap as real processes
// on loopback. Asserts go through the Query API, as a user's would.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idflow/v1/query.grpc.pb.h"
#include "tests/e2e/harness.h"

namespace idflow::e2e {
namespace {

using ::testing::HasSubstr;

std::vector<idflow::v1::StoredEvent> ListEvents(const std::string& address) {
  return QueryEvents(address);
}

std::vector<idflow::v1::Verdict> ListVerdicts(const std::string& address) {
  return QueryVerdicts(address);
}

// The identifier these tests send: the simulated device's OAID from the
// identity file, so that no test needs a MAC address on the machine.
class EndToEnd : public ::testing::Test {
 protected:
  const std::string oaid_ = Stack::kOaid;
  Stack stack_;
};

// A program nobody here wrote: curl posts the device's OAID.
TEST_F(EndToEnd, CurlPostOfAnIdentifierIsATransmitEventAttributedToCurl) {
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  Sink sink;
  std::string out, err;
  int code = RunToEnd(
      {BinDir() + "/idflowctl", "run", "--socket", stack_.socket, "--", "curl", "-sS", "-o",
       "/dev/null", "-d", "uid=" + oaid_, absl::StrCat("http://127.0.0.1:", sink.port(), "/")},
      &out, &err);
  ASSERT_EQ(code, 0) << err;

  std::vector<idflow::v1::StoredEvent> events;
  ASSERT_TRUE(WaitFor([&] {
    events = ListEvents(stack_.collector_address());
    return !events.empty();
  })) << "no event reached the collector\nagent: "
      << stack_.agent->Stderr() << "\ncollector: " << stack_.collector->Stderr();
  bool found = false;
  for (const auto& se : events) {
    const auto& ev = se.event();
    if (ev.identifier().kind() != "oaid") continue;
    found = true;
    EXPECT_EQ(ev.action(), idflow::v1::ACTION_TRANSMIT);
    EXPECT_EQ(ev.identifier().encoding(), "raw");
    EXPECT_EQ(ev.destination().ip(), "127.0.0.1");
    EXPECT_EQ(ev.destination().port(), static_cast<uint32_t>(sink.port()));
    // libcurl is a runtime library: curl itself is responsible.
    EXPECT_EQ(Basename(ev.origin().module()), "curl");
    EXPECT_EQ(se.verdict(), "undeclared_party");
    EXPECT_EQ(se.finding(), idflow::v1::FINDING_VIOLATION);
    EXPECT_EQ(ev.device().id(), Stack::kDeviceId);
    EXPECT_FALSE(ev.identifier().digest().empty());
    EXPECT_THAT(ev.identifier().snippet(), ::testing::Not(HasSubstr(oaid_)));
  }
  EXPECT_TRUE(found);
}

// Bytes that are not UTF-8 (a Host header, a binary body around the
// identifier) must not make an event unserializable: it is stored, with the
// odd bytes escaped.
TEST_F(EndToEnd, NonUtf8BytesAroundAnIdentifierAreStoredEscaped) {
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  Sink sink;
  std::string err;
  const std::string script = absl::StrCat(
      "import socket\n", "s = socket.create_connection(('127.0.0.1', ", sink.port(), "))\n",
      "s.sendall(b'POST / HTTP/1.1\\r\\nHost: b\\xffad\\xfe.example\\r\\n\\r\\n\\x1f\\x8b\\xff",
      "uid=", oaid_, "\\xfe\\xff')\n", "s.close()\n");
  ASSERT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", stack_.socket, "--", "python3",
                      "-c", script},
                     nullptr, &err),
            0)
      << err;
  idflow::v1::StoredEvent found;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& se : ListEvents(stack_.collector_address())) {
      if (se.event().identifier().kind() == "oaid") {
        found = se;
        return true;
      }
    }
    return false;
  })) << "the event was lost\nagent: "
      << stack_.agent->Stderr() << "\ncollector: " << stack_.collector->Stderr();
  EXPECT_EQ(found.event().destination().hostname(), "b\\xffad\\xfe.example");
  EXPECT_THAT(found.event().identifier().snippet(), HasSubstr("\\x8b"));
  EXPECT_THAT(found.event().identifier().snippet(), HasSubstr("<oaid>"));
}

// One verdict group as a QA engineer reads it.
std::string GroupKey(const idflow::v1::Verdict& v) {
  return absl::StrCat(v.finding() == idflow::v1::FINDING_VIOLATION     ? "violation"
                      : v.finding() == idflow::v1::FINDING_OBSERVATION ? "observation"
                                                                       : "clear",
                      " ", v.verdict(), " sdk=", v.sdk().empty() ? "-" : v.sdk(),
                      " module=", Basename(v.module()), " ", v.action(), " ", v.data_type(),
                      " to=", v.destination().empty() ? "-" : v.destination());
}

// The README's demo (DemoTest.DemoPrintsExactlyTheTrueVerdicts) runs part of
// the scenario suite: tests/e2e/scenario_suite_test.cc.

// Runtime libraries in the way: an SDK that reads and sends the MAC through
// libstdc++ streams, a std::thread callback, a Boost.Asio thread pool and
// zlib. The collector must blame the SDK every time, never the runtime.
TEST(RuntimeLibrariesTest, TheSdkBehindTheRuntimeIsResponsible) {
  const std::string iface = FirstMacInterface();
  // The fixture reads a real interface address from sysfs; nothing to read
  // on a machine without one.
  if (iface.empty()) GTEST_SKIP() << "no network interface with a MAC on this machine";
  Stack stack;
  std::string why;
  ASSERT_TRUE(stack.Start(&why)) << why;
  Sink sink;
  const std::pair<const char*, const char*> vias[] = {{"stream", "libstream_sdk.so"},
                                                      {"thread", "libthread_sdk.so"},
                                                      {"asio", "libthread_sdk.so"},
                                                      {"zlib", "libzlib_sdk.so"}};
  for (const auto& [via, lib] : vias) {
    std::string out, err;
    ASSERT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", stack.socket, "--",
                        BinDir() + "/idflow-runtime-sdk-host", "--iface", iface, "--port",
                        std::to_string(sink.port()), "--via", via},
                       &out, &err),
              0)
        << via << ": " << err;
  }
  // Each SDK library both read (acquire) and sent (transmit) the MAC.
  auto seen = [](const std::vector<idflow::v1::Verdict>& vs, const std::string& lib,
                 const std::string& action) {
    for (const auto& v : vs) {
      if (Basename(v.module()) == lib && v.action() == action && v.data_type() == "mac_address") {
        return true;
      }
    }
    return false;
  };
  std::vector<idflow::v1::Verdict> vs;
  ASSERT_TRUE(WaitFor([&] {
    vs = QueryVerdicts(stack.collector_address());
    for (const char* lib : {"libstream_sdk.so", "libthread_sdk.so", "libzlib_sdk.so"}) {
      if (!seen(vs, lib, "acquire") || !seen(vs, lib, "transmit")) return false;
    }
    return true;
  })) << "verdicts so far:\n"
      << absl::StrJoin(vs, "\n",
                       [](std::string* o, const idflow::v1::Verdict& v) {
                         absl::StrAppend(o, GroupKey(v),
                                         " chain=", absl::StrJoin(v.call_chain(), " > "));
                       })
      << "\nagent: " << stack.agent->Stderr();
  for (const auto& v : vs) {
    std::string chain = absl::StrJoin(v.call_chain(), " > ");
    EXPECT_FALSE(IsRuntimeModule(v.module())) << v.module() << " in " << chain;
    EXPECT_THAT(Basename(v.module()), ::testing::EndsWith("_sdk.so")) << chain;
    // Unbound SDKs: a read alone is an observation, a send a violation.
    EXPECT_EQ(v.verdict(), v.action() == "acquire" ? "local_acquisition" : "undeclared_party")
        << chain;
  }
  // The runtime libraries were on the stack: the chain is real.
  bool through_runtime = false;
  for (const auto& v : vs) {
    if (v.call_chain_size() > 0 && IsRuntimeModule(v.call_chain(0))) through_runtime = true;
  }
  EXPECT_TRUE(through_runtime);
}

// Telemetry must not leak what it watches: no raw identifier anywhere on
// disk. The OAID and device id need no MAC; the MAC forms are checked when
// the machine has one.
TEST(DemoTest, NoRawIdentifierAtRest) {
  Stack stack_;
  const std::string mac_ = FirstMac();
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  std::string out, err;
  ASSERT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", stack_.socket, "--",
                      BinDir() + "/idflow-demo-host", "--device-id", Stack::kHwDeviceId, "--oaid",
                      Stack::kOaid},
                     &out, &err),
            0)
      << err;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& v : QueryVerdicts(stack_.collector_address())) {
      if (v.data_type() == "oaid" && absl::StrContains(v.module(), "libmystery_sdk.so")) {
        return true;
      }
    }
    return false;
  })) << stack_.agent->Stderr();
  // Telemetry must not leak what it watches: no raw identifier anywhere on disk.
  ASSERT_EQ(stack_.collector->Stop(), 0) << stack_.collector->Stderr();
  ASSERT_EQ(stack_.agent->Stop(), 0) << stack_.agent->Stderr();
  std::vector<std::string> raw = {Stack::kOaid, Stack::kHwDeviceId};
  if (!mac_.empty()) {
    raw.insert(raw.end(),
               {mac_, absl::AsciiStrToUpper(mac_), absl::StrReplaceAll(mac_, {{":", ""}})});
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(stack_.spool_dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  for (const auto& e : std::filesystem::directory_iterator(stack_.dir)) {
    if (absl::StartsWith(e.path().filename().string(), "idflow.db")) files.push_back(e.path());
  }
  ASSERT_FALSE(files.empty());
  bool saw_db = false;
  for (const auto& f : files) {
    std::string content = Slurp(f);
    saw_db |= absl::StrContains(f, "idflow.db") && !content.empty();
    for (const auto& r : raw) EXPECT_FALSE(absl::StrContains(content, r)) << r << " in " << f;
  }
  EXPECT_TRUE(saw_db);
}

// With no collector the agent spools, says so once, and delivers later.
TEST_F(EndToEnd, AgentSpoolsWhileCollectorIsDownAndDeliversLater) {
  // Reserve a port for the collector that is not there yet.
  Sink placeholder;
  int port = placeholder.port();
  std::string why;
  ASSERT_TRUE(stack_.StartAgent(&why, absl::StrCat("127.0.0.1:", port))) << why;
  Sink sink;
  std::string err;
  ASSERT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", stack_.socket, "--", "curl",
                      "-sS", "-o", "/dev/null", "-d", "uid=" + oaid_,
                      absl::StrCat("http://127.0.0.1:", sink.port(), "/")},
                     nullptr, &err),
            0)
      << err;
  // The placeholder accepts TCP but speaks no gRPC; let the agent fail a few times.
  ASSERT_TRUE(WaitFor([&] { return placeholder.connections() >= 2; }));
  ASSERT_TRUE(stack_.StartCollector(&why, 0)) << why;
  // Point a second agent run at the real collector: same spool, same agent id.
  ASSERT_EQ(stack_.agent->Stop(), 0);
  std::string first_run = stack_.agent->Stderr();
  size_t warnings = 0;
  for (size_t pos = first_run.find("unreachable"); pos != std::string::npos;
       pos = first_run.find("unreachable", pos + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << first_run;
  ASSERT_TRUE(stack_.StartAgent(&why, stack_.collector_address())) << why;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& se : ListEvents(stack_.collector_address())) {
      if (se.event().identifier().kind() == "oaid") return true;
    }
    return false;
  })) << stack_.agent->Stderr();
}

// Repeats within a flush window reach the collector as one event with a count.
TEST_F(EndToEnd, AgentAggregatesRepeatsWithCounts) {
  stack_.agent_args = {"--flush-interval-ms", "400"};
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  std::string out, err;
  ASSERT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", stack_.socket, "--",
                      BinDir() + "/idflow-demo-host", "--device-id", Stack::kHwDeviceId, "--oaid",
                      Stack::kOaid, "--repeat", "5"},
                     &out, &err),
            0)
      << err;
  auto idm_mac = [&](uint64_t* events, uint64_t* count) {
    *events = *count = 0;
    for (const auto& se : ListEvents(stack_.collector_address())) {
      const auto& ev = se.event();
      if (absl::StrContains(ev.origin().module(), "libidm_sdk.so") &&
          ev.identifier().kind() == "device_id" && ev.action() == idflow::v1::ACTION_TRANSMIT) {
        ++*events;
        *count += ev.count();
      }
    }
  };
  uint64_t events = 0, count = 0;
  ASSERT_TRUE(WaitFor([&] {
    idm_mac(&events, &count);
    return count == 5;
  })) << "events "
      << events << " count " << count;
  EXPECT_LT(events, 5u);  // folded by the agent, not only grouped by the store
  bool grouped = false;
  for (const auto& v : ListVerdicts(stack_.collector_address())) {
    if (v.sdk() == "IDM SDK" && v.data_type() == "device_id" && v.action() == "transmit") {
      EXPECT_EQ(v.count(), 5u);
      grouped = true;
    }
  }
  EXPECT_TRUE(grouped);
}

// The dashboard in a real browser: headless Chromium renders the verdict rows.
TEST_F(EndToEnd, DashboardRendersVerdictsInChromium) {
  // Installed by scripts/install-deps.sh: its absence is a failure, not a skip.
  const std::string chromium = "/usr/bin/chromium";
  ASSERT_EQ(::access(chromium.c_str(), X_OK), 0) << "chromium not installed";
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  std::string out, err;
  ASSERT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", stack_.socket, "--",
                      BinDir() + "/idflow-demo-host", "--device-id", Stack::kHwDeviceId, "--oaid",
                      Stack::kOaid},
                     &out, &err),
            0)
      << err;
  ASSERT_TRUE(WaitFor([&] { return ListVerdicts(stack_.collector_address()).size() >= 3; }));
  // The page's modules render from the API: what they put in the DOM means
  // the browser ran them end to end. The violation list, then the overview.
  auto dump = [&](const std::string& path, std::string* dom) {
    std::string profile = MakeTempDir("idflow-chromium"), chrome_err;
    int code =
        RunToEnd({chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--user-data-dir=" + profile, "--virtual-time-budget=10000",
                  "--dump-dom", absl::StrCat("http://127.0.0.1:", stack_.http_port, path)},
                 dom, &chrome_err);
    return code == 0 ? "" : chrome_err;
  };
  std::string dom;
  ASSERT_EQ(dump("/?view=violations", &dom), "");
  EXPECT_THAT(dom, HasSubstr("<span class=\"badge t-violation\">omitted</span>"));
  EXPECT_THAT(dom, HasSubstr("<span class=\"badge t-violation\">undeclared_party</span>"));
  EXPECT_THAT(dom, HasSubstr("data-sdk=\"Lebo SDK\""));
  EXPECT_THAT(dom, HasSubstr("verdict groups on this page"));
  EXPECT_THAT(dom, HasSubstr(Stack::kDeviceId));
  // Violations are the list's default: the clear IDM rows are not listed.
  EXPECT_THAT(dom, ::testing::Not(HasSubstr("<span class=\"badge t-clear\">clear</span>")));
  // The overview's data gaps list the agent with its (zero) losses.
  ASSERT_EQ(dump("/", &dom), "");
  EXPECT_THAT(dom, HasSubstr("Data gaps"));
  EXPECT_THAT(dom, HasSubstr("1 agents, 0 events reported lost"));
  EXPECT_THAT(dom, HasSubstr(Stack::kDeviceId));
}

TEST(BadInput, AgentRejectsUnreadableIdentityWithExit2) {
  std::string dir = MakeTempDir("idflow-bad");
  std::string err;
  int code = RunToEnd({BinDir() + "/idflow-agent", "--collector", "127.0.0.1:1", "--socket",
                       dir + "/s", "--spool", dir + "/spool", "--identity", dir + "/missing.yaml"},
                      nullptr, &err);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("missing.yaml"));
}

TEST(BadInput, AgentRejectsMalformedIdentityWithPosition) {
  std::string dir = MakeTempDir("idflow-bad");
  WriteText(dir + "/id.yaml", "device:\n  id: x\n  clas: hub\n");
  std::string err;
  int code = RunToEnd({BinDir() + "/idflow-agent", "--collector", "127.0.0.1:1", "--socket",
                       dir + "/s", "--spool", dir + "/spool", "--identity", dir + "/id.yaml"},
                      nullptr, &err);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("id.yaml:3:"));
}

// Bindings are policy data: a pattern syntax idflow does not know, or one SDK
// bound twice, stops the collector with the position of the mistake.
TEST(BadInput, CollectorRefusesBadBindingsWithPosition) {
  for (const auto& [name, text, needle] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"regex.yaml",
            "schema: idflow.policy/v1\nkind: bindings\nruntime:\n  - regex: \"libc.*\"\n",
            "regex.yaml:4:"},
           {"twice.yaml",
            "schema: idflow.policy/v1\nkind: bindings\nbindings:\n  - sdk: IDM SDK\n"
            "    modules: [\"*/libother.so\"]\n",
            "twice.yaml:4:"}}) {
    std::string dir = MakeTempDir("idflow-bad");
    std::filesystem::copy(SourceDir() + "/policies", dir + "/policies",
                          std::filesystem::copy_options::recursive);
    WriteText(dir + "/policies/bindings/" + name, text);
    std::string err;
    int code = RunToEnd({BinDir() + "/idflow-collector", "--listen", "127.0.0.1:0", "--store",
                         "sqlite:" + dir + "/db", "--policies", dir + "/policies"},
                        nullptr, &err);
    EXPECT_EQ(code, 2) << name << ": " << err;
    EXPECT_THAT(err, HasSubstr(needle)) << name;
  }
}

// A run nobody observes must not look clean.
TEST(BadInput, RunWithoutAnAgentExits2UnlessAllowed) {
  std::string dir = MakeTempDir("idflow-unobserved");
  std::string out, err;
  EXPECT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", dir + "/nobody.sock", "--",
                      "/bin/echo", "ran"},
                     &out, &err),
            2);
  EXPECT_THAT(err, HasSubstr("unobserved"));
  EXPECT_EQ(out, "");
  // A socket file nobody listens on is no better.
  WriteText(dir + "/plain", "");
  EXPECT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", dir + "/plain", "--", "/bin/echo",
                      "ran"},
                     &out, &err),
            2);
  EXPECT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", dir + "/nobody.sock",
                      "--allow-unobserved", "--", "/bin/echo", "ran"},
                     &out, &err),
            0)
      << err;
  EXPECT_EQ(out, "ran\n");
  EXPECT_THAT(err, HasSubstr("running unobserved"));
}

TEST(BadInput, UnknownFlagsExit2) {
  for (const char* bin : {"idflow-agent", "idflow-collector", "idflowctl"}) {
    std::string err;
    std::vector<std::string> argv = {BinDir() + "/" + bin};
    if (std::string(bin) == "idflowctl") argv.push_back("violations");
    argv.push_back("--no-such-flag");
    EXPECT_EQ(RunToEnd(argv, nullptr, &err), 2) << bin;
    EXPECT_THAT(err, HasSubstr("no-such-flag")) << bin;
  }
}

TEST(BadInput, CollectorRefusesMalformedPolicyWithPosition) {
  std::string dir = MakeTempDir("idflow-bad");
  std::filesystem::copy(SourceDir() + "/policies", dir + "/policies",
                        std::filesystem::copy_options::recursive);
  WriteText(dir + "/policies/ontology.yaml", "schema: idflow.policy/v1\nkind: ontology\n  - [\n");
  std::string err;
  int code = RunToEnd({BinDir() + "/idflow-collector", "--listen", "127.0.0.1:0", "--store",
                       "sqlite:" + dir + "/db", "--policies", dir + "/policies"},
                      nullptr, &err);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("ontology.yaml:"));
}

}  // namespace
}  // namespace idflow::e2e

namespace idflow::e2e {
namespace {

std::string HttpGet(int port, const std::string& path, const std::string& token, int* status) {
  std::vector<std::string> argv = {"curl", "-sS", "-o", "-", "-w", "\n%{http_code}"};
  if (!token.empty()) {
    argv.push_back("-H");
    argv.push_back("Authorization: Bearer " + token);
  }
  argv.push_back(absl::StrCat("http://127.0.0.1:", port, path));
  std::string out, err;
  RunToEnd(argv, &out, &err);
  auto nl = out.rfind('\n');
  *status = nl == std::string::npos ? 0 : std::atoi(out.c_str() + nl + 1);
  return nl == std::string::npos ? out : out.substr(0, nl);
}

TEST(CollectorHttp, HealthMetricsAndVerdictApiWithToken) {
  std::string dir = MakeTempDir("idflow-http");
  WriteText(dir + "/token", "s3cret-token\n");
  Process collector(
      {BinDir() + "/idflow-collector", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
       "--store", "sqlite:" + dir + "/db", "--policies", SourceDir() + "/policies", "--port-file",
       dir + "/ports", "--auth-token-file", dir + "/token"},
      dir + "/collector");
  int grpc = 0, http = 0;
  ASSERT_TRUE(WaitFor([&] {
    return std::sscanf(Slurp(dir + "/ports").c_str(), "grpc=%d\nhttp=%d", &grpc, &http) == 2;
  })) << collector.Stderr();
  ASSERT_GT(http, 0);
  int status = 0;
  EXPECT_EQ(HttpGet(http, "/healthz", "", &status), "ok\n");
  EXPECT_EQ(status, 200);
  std::string metrics = HttpGet(http, "/metrics", "", &status);
  EXPECT_EQ(status, 200);
  EXPECT_THAT(metrics, HasSubstr("idflow_collector_events_total 0"));
  EXPECT_THAT(metrics, HasSubstr("idflow_collector_verdicts_total{verdict=\"omitted\","
                                 "finding=\"violation\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("idflow_collector_verdicts_total{verdict=\"local_acquisition\","
                                 "finding=\"observation\"} 0"));
  HttpGet(http, "/api/verdicts", "", &status);
  EXPECT_EQ(status, 401);
  std::string body = HttpGet(http, "/api/verdicts", "s3cret-token", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "{\"limit\":50,\"next_offset\":null,\"offset\":0,\"verdicts\":[]}");
  std::string page = HttpGet(http, "/", "", &status);
  EXPECT_EQ(status, 200);
  EXPECT_THAT(page, HasSubstr("<title>idflow"));
  EXPECT_EQ(collector.Stop(), 0);
}

}  // namespace
}  // namespace idflow::e2e

namespace idflow::e2e {
namespace {

// Makes a CA, a server certificate for 127.0.0.1 and a client certificate.
bool MakeCertificates(const std::string& d, std::string* why) {
  const std::vector<std::vector<std::string>> steps = {
      {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=idflow test CA", "-keyout", d + "/ca.key", "-out", d + "/ca.pem"},
      {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
       d + "/server.key", "-out", d + "/server.csr"},
      {"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey",
       d + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", d + "/san.cnf", "-out",
       d + "/server.pem"},
      {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=agent", "-keyout",
       d + "/client.key", "-out", d + "/client.csr"},
      {"openssl", "x509", "-req", "-in", d + "/client.csr", "-CA", d + "/ca.pem", "-CAkey",
       d + "/ca.key", "-CAcreateserial", "-days", "2", "-out", d + "/client.pem"},
  };
  WriteText(d + "/san.cnf", "subjectAltName=IP:127.0.0.1\n");
  for (const auto& argv : steps) {
    std::string err;
    if (RunToEnd(argv, nullptr, &err) != 0) {
      *why = err;
      return false;
    }
  }
  return true;
}

TEST(MutualTls, AgentDeliversOverMutualTlsAndQueriesNeedTheCa) {
  Stack stack;
  stack.dir = MakeTempDir("idflow-tls");
  const std::string& d = stack.dir;
  std::string why;
  ASSERT_TRUE(MakeCertificates(d, &why)) << why;
  stack.collector_args = {"--tls-cert",      d + "/server.pem", "--tls-key",
                          d + "/server.key", "--tls-client-ca", d + "/ca.pem"};
  stack.agent_args = {"--tls-ca",        d + "/ca.pem", "--tls-cert",
                      d + "/client.pem", "--tls-key",   d + "/client.key"};
  // The certificate names the agent (CN=agent): give the agent that id.
  std::filesystem::create_directories(d + "/spool");
  WriteText(d + "/spool/agent_id", "agent\n");
  ASSERT_TRUE(stack.StartCollector(&why)) << why;
  // First, an agent with the same certificate but another id: refused.
  {
    Stack spoof;
    spoof.dir = MakeTempDir("idflow-tls-spoof");
    std::filesystem::create_directories(spoof.dir + "/spool");
    WriteText(spoof.dir + "/spool/agent_id", "someone-else\n");
    spoof.agent_args = stack.agent_args;
    ASSERT_TRUE(spoof.StartAgent(&why, stack.collector_address())) << why;
    ASSERT_TRUE(WaitFor([&] {
      return absl::StrContains(spoof.agent->Stderr(), "does not name agent someone-else");
    })) << spoof.agent->Stderr();
  }
  ASSERT_TRUE(stack.StartAgent(&why, stack.collector_address())) << why;
  Sink sink;
  std::string err;
  ASSERT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", stack.socket, "--", "curl", "-sS",
                      "-o", "/dev/null", "-d", std::string("uid=") + Stack::kOaid,
                      absl::StrCat("http://127.0.0.1:", sink.port(), "/")},
                     nullptr, &err),
            0)
      << err;
  const std::vector<std::string> tls = {"--tls-ca",        d + "/ca.pem", "--tls-cert",
                                        d + "/client.pem", "--tls-key",   d + "/client.key"};
  std::string out;
  ASSERT_TRUE(WaitFor([&] {
    std::vector<std::string> argv = {BinDir() + "/idflowctl",
                                     "violations",
                                     "--collector",
                                     stack.collector_address(),
                                     "--all",
                                     "--format",
                                     "json"};
    argv.insert(argv.end(), tls.begin(), tls.end());
    RunToEnd(argv, &out, &err);
    return absl::StrContains(out, "\"data_type\":\"oaid\"");
  })) << out
      << err << stack.agent->Stderr();
  // Only the agent the certificate names was heard.
  std::vector<std::string> agents = {BinDir() + "/idflowctl",   "agents",   "--collector",
                                     stack.collector_address(), "--format", "json"};
  agents.insert(agents.end(), tls.begin(), tls.end());
  ASSERT_EQ(RunToEnd(agents, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("\"agent_id\":\"agent\""));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("someone-else")));
  // Plaintext is refused by a TLS collector: the query fails with exit 2.
  EXPECT_EQ(RunToEnd({BinDir() + "/idflowctl", "violations", "--collector",
                      stack.collector_address(), "--timeout", "3"},
                     &out, &err),
            2);
}

}  // namespace
}  // namespace idflow::e2e

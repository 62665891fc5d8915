// Each tap hook catching its case, end to end: real programs (curl, wget,
// Python) under the tap, through idflow-agent and idflow-collector, asserted
// through the Query API with the right data_type, encoding, channel,
// destination and module.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idflow/v1/query.grpc.pb.h"
#include "tests/e2e/harness.h"

namespace idflow::e2e {
namespace {

namespace fs = std::filesystem;
using idflow::v1::Event;

constexpr char kPython[] = "/usr/bin/python3";

std::vector<Event> ListEvents(const std::string& address) {
  std::vector<Event> out;
  for (auto& se : QueryEvents(address)) out.push_back(std::move(*se.mutable_event()));
  return out;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool Have(const std::string& program) {
  std::string out, err;
  return RunToEnd({"/bin/sh", "-c", "command -v " + program}, &out, &err) == 0;
}

class TapE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    mac_ = FirstMac();
    std::string why;
    ASSERT_TRUE(stack_.Start(&why)) << why;
  }

  // Runs argv under the tap (bounded by `timeout`), expecting exit 0.
  void RunTapped(std::vector<std::string> argv, int timeout_s = 60,
                 std::map<std::string, std::string> env = {}) {
    std::vector<std::string> full = {"/usr/bin/timeout", std::to_string(timeout_s)};
    full.insert(full.end(), argv.begin(), argv.end());
    env["LD_PRELOAD"] = LibDir() + "/libidflow-tap.so";
    if (env.count("IDFLOW_SOCKET") == 0) env["IDFLOW_SOCKET"] = stack_.socket;
    std::string out, err;
    int code = RunToEnd(full, &out, &err, env);
    last_out_ = out;
    ASSERT_EQ(code, 0) << argv[0] << "\nstdout: " << out << "\nstderr: " << err;
  }

  // Waits until an event satisfying `pred` reached the collector.
  bool WaitEvent(const std::function<bool(const Event&)>& pred, Event* found = nullptr) {
    bool ok = WaitFor([&] {
      for (const Event& ev : ListEvents(stack_.collector_address())) {
        if (pred(ev)) {
          if (found != nullptr) *found = ev;
          return true;
        }
      }
      return false;
    });
    return ok;
  }

  std::string Dump() {
    std::string s;
    for (const Event& ev : ListEvents(stack_.collector_address())) {
      absl::StrAppend(&s, ev.channel(), " ", ev.identifier().kind(), " ",
                      ev.identifier().encoding(), " ", ev.destination().ip(), ":",
                      ev.destination().port(), " host=", ev.destination().hostname(),
                      " peer=", ev.destination().peer_exe(), " module=", ev.origin().module(),
                      "\n");
    }
    return s + "agent: " + stack_.agent->Stderr();
  }

  std::string mac_;
  std::string last_out_;
  Stack stack_;
};

TEST_F(TapE2e, CurlOverOpenSslNamesTheHostAndTheProgram) {
  if (mac_.empty()) GTEST_SKIP() << "no MAC on this machine";
  TlsServer tls(stack_.dir);
  ASSERT_TRUE(tls.ok());
  RunTapped({"curl", "-4", "-sS", "-k", "-o", "/dev/null",
             absl::StrCat("https://localhost:", tls.port(), "/collect?mac=", mac_)});
  Event ev;
  ASSERT_TRUE(WaitEvent([](const Event& e) { return e.channel() == "tls-openssl"; }, &ev))
      << Dump();
  EXPECT_EQ(ev.identifier().kind(), "mac_address");
  EXPECT_EQ(ev.identifier().encoding(), "raw");
  EXPECT_EQ(ev.action(), idflow::v1::ACTION_TRANSMIT);
  EXPECT_EQ(ev.destination().ip(), "127.0.0.1");
  EXPECT_EQ(ev.destination().port(), static_cast<uint32_t>(tls.port()));
  EXPECT_EQ(ev.destination().hostname(), "localhost");
  // The stack walk passes libcurl and libssl: the program is curl itself.
  EXPECT_EQ(Basename(ev.origin().module()), "curl");
}

TEST_F(TapE2e, WgetOverGnutls) {
  if (mac_.empty()) GTEST_SKIP() << "no MAC on this machine";
  if (!Have("wget")) GTEST_SKIP() << "wget is not installed";
  TlsServer tls(stack_.dir);
  ASSERT_TRUE(tls.ok());
  std::string upper = absl::AsciiStrToUpper(mac_);
  RunTapped({"/bin/sh", "-c",
             absl::StrCat("wget -4 -q --no-check-certificate -t 1 -O /dev/null "
                          "'https://localhost:",
                          tls.port(), "/?m=", upper, "' || true")});
  Event ev;
  ASSERT_TRUE(WaitEvent([](const Event& e) { return e.channel() == "tls-gnutls"; }, &ev)) << Dump();
  EXPECT_EQ(ev.identifier().kind(), "mac_address");
  EXPECT_EQ(ev.identifier().encoding(), "upper");
  EXPECT_EQ(ev.destination().port(), static_cast<uint32_t>(tls.port()));
  EXPECT_EQ(ev.destination().hostname(), "localhost");
  EXPECT_EQ(Basename(ev.origin().module()), "wget");
}

TEST_F(TapE2e, PythonHttpClientOverSsl) {
  TlsServer tls(stack_.dir);
  ASSERT_TRUE(tls.ok());
  std::string script = absl::StrCat(
      "import http.client, ssl\n"
      "c = http.client.HTTPSConnection('localhost', ",
      tls.port(),
      ", context=ssl._create_unverified_context())\n"
      "c.request('GET', '/?oaid=",
      Stack::kOaid,
      "')\n"
      "try:\n  c.getresponse().read()\nexcept Exception:\n  pass\n");
  RunTapped({kPython, "-c", script});
  Event ev;
  ASSERT_TRUE(WaitEvent(
      [](const Event& e) {
        return e.channel() == "tls-openssl" && e.identifier().kind() == "oaid";
      },
      &ev))
      << Dump();
  EXPECT_EQ(ev.identifier().encoding(), "raw");
  EXPECT_EQ(ev.destination().hostname(), "localhost");
  // Python's _ssl module is a transport: the interpreter is the caller.
  EXPECT_THAT(Basename(ev.origin().module()), ::testing::StartsWith("python3"));
}

// Python computes each encoded form itself and sends it on its own connection.
TEST_F(TapE2e, EveryEncodingAndASplitIdentifier) {
  if (mac_.empty()) GTEST_SKIP() << "no MAC on this machine";
  Sink sink;
  std::string script = absl::StrCat(R"PY(
import base64, hashlib, socket, sys, urllib.parse
mac, oaid, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
nosep = mac.replace(':', '')
raw = bytes.fromhex(nosep)
forms = {
  'raw': mac, 'upper': mac.upper(), 'dash': mac.replace(':', '-'), 'nosep': nosep,
  'nosep_upper': nosep.upper(), 'dot': '.'.join([nosep[0:4], nosep[4:8], nosep[8:12]]),
  'md5': hashlib.md5(mac.encode()).hexdigest(),
  'sha1_upper': hashlib.sha1(mac.encode()).hexdigest().upper(),
  'sha256': hashlib.sha256(mac.encode()).hexdigest(),
  'md5(nosep_upper)': hashlib.md5(nosep.upper().encode()).hexdigest(),
  'sha256_base64': base64.b64encode(hashlib.sha256(mac.encode()).digest()).decode(),
  'base64': base64.b64encode(mac.encode()).decode(),
  'bytes_base64': base64.b64encode(raw).decode(),
  'url': urllib.parse.quote(mac, safe=''),
}
for name, form in forms.items():
  s = socket.create_connection(('127.0.0.1', port))
  s.sendall(b'id=' + form.encode() + b'&x=1')
  s.close()
s = socket.create_connection(('127.0.0.1', port))
s.sendall(b'{"uuid":"' + oaid.upper().encode()[:10])
s.sendall(oaid.upper().encode()[10:] + b'"}')
s.close()
print('sent', len(forms))
)PY");
  WriteText(stack_.dir + "/encodings.py", script);
  RunTapped(
      {kPython, stack_.dir + "/encodings.py", mac_, Stack::kOaid, std::to_string(sink.port())});
  const std::set<std::string> want = {
      "raw",           "upper",  "dash",         "nosep",  "nosep_upper",
      "dot",           "md5",    "sha1_upper",   "sha256", "md5(nosep_upper)",
      "sha256_base64", "base64", "bytes_base64", "url"};
  std::set<std::string> got;
  bool split = false;
  ASSERT_TRUE(WaitFor([&] {
    got.clear();
    for (const Event& ev : ListEvents(stack_.collector_address())) {
      if (ev.identifier().kind() == "mac_address") got.insert(ev.identifier().encoding());
      if (ev.identifier().kind() == "oaid" && ev.identifier().encoding() == "upper") split = true;
    }
    return split && std::includes(got.begin(), got.end(), want.begin(), want.end());
  })) << "got: "
      << absl::StrJoin(got, ",") << "\n"
      << Dump();
}

TEST_F(TapE2e, UnixSocketPeerIsTheOtherProgram) {
  std::string path = stack_.dir + "/peer.sock";
  std::string server = absl::StrCat(
      "import socket, sys\n"
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
      "s.bind(sys.argv[1]); s.listen(1); print('ready', flush=True)\n"
      "c, _ = s.accept()\n"
      "while c.recv(4096): pass\n");
  Process peer({kPython, "-c", server, path}, stack_.dir + "/peer");
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(peer.Stdout(), "ready"); }));
  RunTapped({kPython, "-c",
             absl::StrCat("import socket, sys\n"
                          "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                          "s.connect(sys.argv[1])\n"
                          "s.sendall(b'device=",
                          Stack::kHwDeviceId, "')\n"),
             path});
  Event ev;
  ASSERT_TRUE(WaitEvent([](const Event& e) { return e.channel() == "unix"; }, &ev)) << Dump();
  EXPECT_EQ(ev.identifier().kind(), "device_id");
  EXPECT_EQ(ev.destination().peer_exe(), fs::canonical(kPython).string());
  EXPECT_EQ(peer.Wait(), 0);
}

TEST_F(TapE2e, AcquisitionFromSysfsIoctlAndGetifaddrs) {
  if (mac_.empty()) GTEST_SKIP() << "no MAC on this machine";
  std::string iface;
  for (const auto& e : fs::directory_iterator("/sys/class/net")) {
    std::string mac = Slurp(e.path().string() + "/address");
    if (absl::StartsWith(mac, mac_)) iface = e.path().filename().string();
  }
  ASSERT_FALSE(iface.empty());
  // cat reads sysfs; Python's fcntl.ioctl and socket.if_nameindex... use
  // SIOCGIFHWADDR directly; `ip link` (if present) uses netlink: not an ioctl.
  RunTapped({"cat", "/sys/class/net/" + iface + "/address"});
  RunTapped({kPython, "-c",
             absl::StrCat("import fcntl, socket, struct\n"
                          "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                          "fcntl.ioctl(s.fileno(), 0x8927, struct.pack('256s', b'",
                          iface, "'))\n")});
  for (const char* channel : {"sysfs", "ioctl"}) {
    Event ev;
    ASSERT_TRUE(WaitEvent([&](const Event& e) { return e.channel() == channel; }, &ev))
        << channel << "\n"
        << Dump();
    EXPECT_EQ(ev.action(), idflow::v1::ACTION_ACQUIRE);
    EXPECT_EQ(ev.identifier().kind(), "mac_address");
    EXPECT_EQ(ev.identifier().instance(), iface);
  }
}

TEST_F(TapE2e, PlaceholderMacProducesNoEvent) {
  Sink sink;
  RunTapped({kPython, "-c",
             absl::StrCat("import socket\n"
                          "s = socket.create_connection(('127.0.0.1', ",
                          sink.port(),
                          "))\n"
                          "s.sendall(b'mac=02:00:00:00:00:00&bt=00:00:00:00:00:00')\n"
                          "s.close()\n"
                          "s = socket.create_connection(('127.0.0.1', ",
                          sink.port(),
                          "))\n"
                          "s.sendall(b'marker=",
                          Stack::kHwDeviceId, "')\n")});
  // The marker, sent after the placeholders, proves the process was tapped.
  ASSERT_TRUE(WaitEvent([](const Event& e) { return e.identifier().kind() == "device_id"; }))
      << Dump();
  for (const Event& ev : ListEvents(stack_.collector_address())) {
    EXPECT_EQ(ev.identifier().kind(), "device_id") << Dump();
  }
}

// Threads sending identifiers while the process forks and takes signals;
// the agent absent, hung (accepts, never reads), stopped mid-run and slow.
// The program must finish with its own correct output, within the bound.
constexpr char kStress[] = R"PY(
import encodings.idna, os, signal, socket, sys, threading, time
port, payload = int(sys.argv[1]), sys.argv[2].encode() * 8
# Optional hand-shake with the test: say "ready" (the tap is connected by
# now: it connects before main), then wait for "go" (the agent is stopped).
if len(sys.argv) > 3:
  open(sys.argv[3] + '/ready', 'w').close()
  deadline = time.time() + 20
  while not os.path.exists(sys.argv[3] + '/go') and time.time() < deadline:
    time.sleep(0.005)
# Warm up lazy imports (the idna codec of create_connection) before threads
# exist: a child forked while another thread imports would hang in Python.
socket.create_connection(('127.0.0.1', port)).close()
hits = [0]
r, w = socket.socketpair()
r.setblocking(False)
w.setblocking(False)
def on_alarm(sig, frame):
  hits[0] += 1
  try:
    w.send(b'x')  # hooked calls from a signal handler
    r.recv(4096)
  except BlockingIOError:
    pass
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
def worker(n):
  s = socket.create_connection(('127.0.0.1', port))
  for i in range(n):
    s.sendall(payload)
  s.close()
threads = [threading.Thread(target=worker, args=(400,)) for _ in range(4)]
for t in threads: t.start()
pid = os.fork()
if pid == 0:
  worker(200)
  os._exit(0)
for t in threads: t.join()
_, status = os.waitpid(pid, 0)
signal.setitimer(signal.ITIMER_REAL, 0, 0)
print('done', os.waitstatus_to_exitcode(status), len(threads))
)PY";

TEST_F(TapE2e, ThreadsForkAndSignalsSurviveAbsentHungStoppedAndSlowAgents) {
  Sink sink;
  WriteText(stack_.dir + "/stress.py", kStress);
  std::vector<std::string> argv = {kPython, stack_.dir + "/stress.py", std::to_string(sink.port()),
                                   std::string("oaid=") + Stack::kOaid + "&"};
  auto check = [&](const std::string& what) {
    EXPECT_THAT(last_out_, ::testing::HasSubstr("done 0 4")) << what;
  };
  // Absent.
  RunTapped(argv, 60, {{"IDFLOW_SOCKET", stack_.dir + "/nobody.sock"}});
  check("absent");
  // Hung: accepts and never reads or answers.
  std::string hung_path = stack_.dir + "/hung.sock";
  int hung = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", hung_path.c_str());
  ASSERT_EQ(bind(hung, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(hung, 64), 0);
  RunTapped(argv, 60, {{"IDFLOW_SOCKET", hung_path}, {"IDFLOW_TAP_TIMEOUT_MS", "300"}});
  check("hung");
  close(hung);
  // Stopped after the hand-shake: the program is connected and running when
  // the agent stops, so its hand-offs meet an agent that does not read. It
  // must finish on time, and every event it made must then be stored or
  // counted as dropped by the tap.
  {
    std::string sync = MakeTempDir("idflow-stop");
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
      if (!WaitFor([&] { return ::access((sync + "/ready").c_str(), F_OK) == 0; },
                   std::chrono::seconds(30))) {
        return;
      }
      kill(stack_.agent->pid(), SIGSTOP);
      stopped = true;
      WriteText(sync + "/go", "");
    });
    std::vector<std::string> with_sync = argv;
    with_sync.push_back(sync);
    RunTapped(with_sync, 60);
    stopper.join();
    ASSERT_TRUE(stopped.load()) << "the program never said it was ready";
    check("stopped");
    kill(stack_.agent->pid(), SIGCONT);
    // The run's events arrive or show as tap drops: never silently gone.
    ASSERT_TRUE(WaitFor([&] {
      std::string agents;
      RunToEnd({BinDir() + "/idflowctl", "agents", "--collector", stack_.collector_address(),
                "--format", "json"},
               &agents, nullptr);
      if (absl::StrContains(agents, "\"drops\":{") && !absl::StrContains(agents, "\"tap\":0,")) {
        return true;  // the tap's drops reached the collector
      }
      return WaitEvent([](const Event& e) { return e.identifier().kind() == "oaid"; });
    })) << Dump();
  }
  // Slow: the agent is stopped and resumed repeatedly while the program runs.
  {
    std::atomic<bool> done{false};
    std::thread toggler([&] {
      while (!done.load()) {
        kill(stack_.agent->pid(), SIGSTOP);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        kill(stack_.agent->pid(), SIGCONT);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    RunTapped(argv, 60);
    check("slow");
    done = true;
    toggler.join();
    kill(stack_.agent->pid(), SIGCONT);
  }
  // The agent survived all of it and still gets events.
  ASSERT_TRUE(WaitEvent([](const Event& e) { return e.identifier().kind() == "oaid"; })) << Dump();
}

}  // namespace
}  // namespace idflow::e2e

namespace idflow::e2e {
namespace {

// Every socket hook through agent and collector, driven by a small test
// program (tap_test_sender) so each call shape is exercised on purpose.
class TapHookE2e : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    mac_ = FirstMac();
    if (mac_.empty()) GTEST_SKIP() << "no MAC on this machine";
    std::string why;
    ASSERT_TRUE(stack_.Start(&why)) << why;
  }
  std::string mac_;
  Stack stack_;
};

TEST_P(TapHookE2e, HookReportsTheMacWithDestinationAndModule) {
  const std::string mode = GetParam();
  const bool udp = mode == "udp" || mode == "sendmmsg";
  // A bound UDP socket so datagrams have a live destination.
  int ufd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in ua{};
  ua.sin_family = AF_INET;
  ua.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t ulen = sizeof(ua);
  ASSERT_EQ(::bind(ufd, reinterpret_cast<sockaddr*>(&ua), sizeof(ua)), 0);
  ASSERT_EQ(::getsockname(ufd, reinterpret_cast<sockaddr*>(&ua), &ulen), 0);
  Sink sink(
      "HTTP/1.1 200 OK\r\nSet-Cookie: idflow_e2e=v1; Max-Age=600; Path=/\r\n"
      "Content-Length: 0\r\nConnection: close\r\n\r\n");
  const int port = udp ? ntohs(ua.sin_port) : sink.port();
  // resolve and sni name the destination themselves: no Host header there.
  const bool named_by_mode = mode == "resolve" || mode == "sni";
  const std::string payload =
      named_by_mode
          ? "id mac=" + mac_ + " end"
          : "POST /c HTTP/1.1\r\nHost: sdk.example.test\r\nContent-Length: 24\r\n\r\nmac=" + mac_ +
                "&v=1";
  std::string out, err;
  ASSERT_EQ(RunToEnd({BinDir() + "/idflowctl", "run", "--socket", stack_.socket, "--",
                      BinDir() + "/tap_test_sender", mode, std::to_string(port), payload},
                     &out, &err),
            0)
      << err;
  ::close(ufd);
  const std::string host = mode == "resolve" ? "localhost"
                           : mode == "sni"   ? "sni.example.test"
                                             : "sdk.example.test";
  idflow::v1::Event found;
  bool ok = WaitFor([&] {
    for (const Event& ev : ListEvents(stack_.collector_address())) {
      if (ev.identifier().kind() == "mac_address") {
        found = ev;
        return true;
      }
    }
    return false;
  });
  ASSERT_TRUE(ok) << "no mac_address event for mode " << mode << "\n" << stack_.agent->Stderr();
  EXPECT_EQ(found.action(), idflow::v1::ACTION_TRANSMIT);
  EXPECT_EQ(found.channel(), udp ? "udp" : "tcp");
  EXPECT_EQ(found.identifier().encoding(), "raw");
  EXPECT_EQ(found.destination().ip(), "127.0.0.1");
  EXPECT_EQ(found.destination().port(), static_cast<uint32_t>(port));
  EXPECT_EQ(found.destination().hostname(), host);
  EXPECT_EQ(Basename(found.origin().module()), "tap_test_sender");
  if (mode == "http") {
    // The receive side: Set-Cookie judged against the cookie policies.
    ASSERT_TRUE(WaitFor([&] {
      for (const Event& ev : ListEvents(stack_.collector_address())) {
        if (ev.cookie().name() == "idflow_e2e") {
          return ev.cookie().direction() == idflow::v1::COOKIE_SET_BY_SERVER;
        }
      }
      return false;
    })) << stack_.agent->Stderr();
  }
}

INSTANTIATE_TEST_SUITE_P(Hooks, TapHookE2e,
                         ::testing::Values("send", "sendto", "sendmsg", "write", "writev", "udp",
                                           "sendmmsg", "resolve", "sni", "http"));

}  // namespace
}  // namespace idflow::e2e

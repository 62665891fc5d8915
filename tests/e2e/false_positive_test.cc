// The false-positive suite: ordinary programs that never share an identifier,
// each run under the tap through a real agent and collector. Any violation
// fails the suite. Each case also proves it was observed, so the suite cannot
// pass by seeing nothing.
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace idflow::e2e {
namespace {

using ::testing::HasSubstr;

// A small web server: serves `root`, over TLS when given a certificate, and
// sets two cookies on /cookie. Writes its port to `port_file`.
constexpr char kServerPy[] = R"PY(
import http.server, ssl, sys, functools
root, port_file, cert, key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == '/cookie':
            body = b'cookies set'
            self.send_response(200)
            self.send_header('Set-Cookie', 'session_id=abc123; Path=/; HttpOnly')
            self.send_header('Set-Cookie', 'prefs=dark; Max-Age=31536000; Path=/')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Handler, directory=root))
if cert != '-':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_file + '.tmp', 'w') as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + '.tmp', port_file)
srv.serve_forever()
)PY";

constexpr char kFetchPy[] = R"PY(
import ssl, sys, urllib.request
ctx = ssl._create_unverified_context()
for url in sys.argv[1:]:
    with urllib.request.urlopen(url, context=ctx, timeout=20) as r:
        r.read()
)PY";

class FalsePositiveSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(stack_.Start(&why)) << why;
    dir_ = stack_.dir;
    std::filesystem::create_directories(dir_ + "/www/docs");
    WriteText(dir_ + "/www/index.html", "<!doctype html><title>idflow</title><p>hello</p>\n");
    WriteText(dir_ + "/www/docs/readme.txt", std::string(64 * 1024, 'x'));
    WriteText(dir_ + "/server.py", kServerPy);
    WriteText(dir_ + "/fetch.py", kFetchPy);
  }

  // Runs a command under the tap via `idflowctl run`.
  std::vector<std::string> UnderTap(std::vector<std::string> argv) {
    std::vector<std::string> full = {BinDir() + "/idflowctl", "run", "--socket", stack_.socket,
                                     "--"};
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }

  // Starts the Python server under the tap; returns its port (0 on failure).
  int StartServer(const std::string& name, bool tls) {
    std::string port_file = dir_ + "/" + name + ".port";
    servers_.push_back(std::make_unique<Process>(
        UnderTap({"python3", dir_ + "/server.py", dir_ + "/www", port_file,
                  tls ? dir_ + "/cert.pem" : "-", tls ? dir_ + "/key.pem" : "-"}),
        dir_ + "/" + name));
    int port = 0;
    WaitFor([&] {
      port = std::atoi(Slurp(port_file).c_str());
      return port > 0 || !servers_.back()->Running();
    });
    return port;
  }

  void Run(std::vector<std::string> argv) {
    std::string out, err;
    std::string what = absl::StrJoin(argv, " ");
    EXPECT_EQ(RunToEnd(UnderTap(std::move(argv)), &out, &err), 0) << what << "\n" << err;
  }

  Stack stack_;
  std::string dir_;
  std::vector<std::unique_ptr<Process>> servers_;
};

TEST_F(FalsePositiveSuite, OrdinaryProgramsProduceNoViolation) {
  std::string err;
  ASSERT_EQ(
      RunToEnd({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                "/CN=127.0.0.1", "-keyout", dir_ + "/key.pem", "-out", dir_ + "/cert.pem"},
               nullptr, &err),
      0)
      << err;
  // Serving files, plain and over TLS, each server itself under the tap.
  int http = StartServer("http", false);
  int https = StartServer("https", true);
  ASSERT_GT(http, 0) << servers_[0]->Stderr();
  ASSERT_GT(https, 0) << servers_[1]->Stderr();
  const std::string plain = absl::StrCat("http://127.0.0.1:", http);
  const std::string tls = absl::StrCat("https://127.0.0.1:", https);

  // Fetching pages with curl (OpenSSL) and Python, over HTTP and TLS.
  Run({"curl", "-sSf", "-o", "/dev/null", plain + "/index.html"});
  Run({"curl", "-sSf", "-o", "/dev/null", plain + "/docs/readme.txt"});
  Run({"curl", "-sSfk", "-o", "/dev/null", tls + "/index.html"});
  Run({"python3", dir_ + "/fetch.py", plain + "/", plain + "/docs/readme.txt", tls + "/"});
  // A server setting cookies on a site no cookie policy covers, and a
  // client sending one back.
  Run({"curl", "-sSf", "-o", "/dev/null", "-b", "theme=light", plain + "/cookie"});
  Run({"curl", "-sSfk", "-o", "/dev/null", tls + "/cookie"});
  // A multi-process browser loading a page: it enumerates interfaces and
  // passes the URL to its own child processes over unix sockets.
  {
    std::string dom, chrome_err;
    ASSERT_EQ(
        RunToEnd(UnderTap({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync",
                           "--user-data-dir=" + dir_ + "/chromium", "--virtual-time-budget=3000",
                           "--dump-dom", plain + "/index.html"}),
                 &dom, &chrome_err),
        0)
        << chrome_err;
    EXPECT_THAT(dom, HasSubstr("<p>hello</p>")) << "the page did not load under the tap";
  }
  // Programs reading and printing their own MAC address (the last step: its
  // observation marks the point by which every earlier event was delivered).
  const std::string iface = FirstMacInterface();
  if (!iface.empty()) {
    Run({"python3", "-c", "print(open('/sys/class/net/" + iface + "/address').read().strip())"});
    Run({"cat", "/sys/class/net/" + iface + "/address"});
  }

  std::vector<idflow::v1::Verdict> vs;
  auto seen = [&](const std::string& verdict, const std::string& exe_or_module) {
    for (const auto& v : vs) {
      if (v.verdict() == verdict && (absl::StrContains(v.exe(), exe_or_module) ||
                                     absl::StrContains(v.module(), exe_or_module))) {
        return true;
      }
    }
    return false;
  };
  // What each case must have been seen as: cookies from a site without a
  // cookie policy, and (with a MAC) a program reading its own MAC.
  ASSERT_TRUE(WaitFor([&] {
    vs = QueryVerdicts(stack_.collector_address());
    return seen("no_cookie_policy", "curl") &&
           (iface.empty() ||
            (seen("local_acquisition", "cat") && seen("local_acquisition", "python3")));
  })) << "verdicts so far: "
      << vs.size() << "\nagent: " << stack_.agent->Stderr();

  std::string out;
  EXPECT_EQ(RunViolations(stack_.collector_address(), {}, &out, &err), 0) << out << err;
  EXPECT_EQ(out, "") << "violations on programs that share no identifier";
  // --all shows the observations, and still exits 0.
  EXPECT_EQ(RunViolations(stack_.collector_address(), {"--all"}, &out, &err), 0) << out << err;
  EXPECT_THAT(out, HasSubstr("\"finding\":\"observation\""));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("\"finding\":\"violation\"")));
  for (const auto& v : vs) {
    EXPECT_NE(v.finding(), idflow::v1::FINDING_VIOLATION)
        << v.verdict() << " " << v.module() << " " << v.data_type() << " " << v.destination()
        << ": " << v.explanation();
    EXPECT_FALSE(IsRuntimeModule(v.module())) << v.module();
  }
}

}  // namespace
}  // namespace idflow::e2e

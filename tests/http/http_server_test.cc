// Loopback tests of the HTTP server through a raw socket client.
#include "collector/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::http {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A blocking client socket; every read is bounded by a receive timeout so a
// broken server fails the test instead of hanging it.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }

  bool Send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until the peer closes (or the 5 s receive timeout).
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_by_peer_ = n == 0;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  // Reads exactly one response with a Content-Length (for keep-alive).
  std::string ReadResponse() {
    std::string out;
    char buf[4096];
    for (;;) {
      size_t end = out.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t len = 0;
        size_t cl = out.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) len = std::stoul(out.substr(cl + 16));
        if (out.size() >= end + 4 + len) return out;
      }
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

  bool closed_by_peer() const { return closed_by_peer_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_by_peer_ = false;
};

std::string Get(uint16_t port, const std::string& path, const std::string& extra_headers = "") {
  RawClient c(port);
  EXPECT_TRUE(c.connected());
  c.Send(absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n", extra_headers,
                      "\r\n"));
  return c.ReadAll();
}

std::string BodyOf(const std::string& response) {
  size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

template <typename Pred>
bool PollUntil(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options = {}) {
  auto s = HttpServer::Create(options);
  EXPECT_THAT(s, IsOk());
  if (!s.ok()) return nullptr;
  (*s)->Handle("GET", "/healthz", [](const Request&) { return Response::Text(200, "ok\n"); });
  (*s)->Handle("GET", "/api", [](const Request& r) {
    return Response::Json(200, absl::StrCat("{\"path\":\"", r.path, "\"}"));
  });
  (*s)->Handle("GET", "/api/verdicts", [](const Request& r) {
    auto q = r.QueryParams();
    return Response::Json(200, absl::StrCat("verdicts device=", q["device"], " sdk=", q["sdk"]));
  });
  (*s)->Handle("POST", "/echo", [](const Request& r) { return Response::Text(200, r.body); });
  (*s)->Handle(
      "GET", "/secret", [](const Request&) { return Response::Text(200, "classified"); },
      Access::kProtected);
  (*s)->Handle("", "/throw", [](const Request&) -> Response { throw std::runtime_error("boom"); });
  EXPECT_THAT((*s)->Start(), IsOk());
  return std::move(*s);
}

TEST(HttpServerTest, EphemeralPortAndBasicGet) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  EXPECT_NE(s->port(), 0);
  EXPECT_EQ(s->host(), "127.0.0.1");
  std::string r = Get(s->port(), "/healthz");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Type: text/plain; charset=utf-8\r\n"));
  EXPECT_EQ(BodyOf(r), "ok\n");
  EXPECT_EQ(s->stats().requests, 1u);
}

TEST(HttpServerTest, RoutingByLongestPrefixAndMethod) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(BodyOf(Get(s->port(), "/api")), "{\"path\":\"/api\"}");
  EXPECT_EQ(BodyOf(Get(s->port(), "/api/other")), "{\"path\":\"/api/other\"}");
  EXPECT_EQ(BodyOf(Get(s->port(), "/api/verdicts?device=tv%201&sdk=le+bo")),
            "verdicts device=tv 1 sdk=le bo");
  EXPECT_THAT(Get(s->port(), "/apix"), StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(Get(s->port(), "/"), StartsWith("HTTP/1.1 404 "));
  std::string r = Get(s->port(), "/echo");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(r, HasSubstr("Allow: POST\r\n"));
}

TEST(HttpServerTest, PostBodyReachesHandler) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  RawClient c(s->port());
  ASSERT_TRUE(c.connected());
  c.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 11\r\n\r\n"
      "hello world");
  std::string r = c.ReadAll();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 "));
  EXPECT_EQ(BodyOf(r), "hello world");
}

TEST(HttpServerTest, HeadFallsBackToGetWithoutBody) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  RawClient c(s->port());
  ASSERT_TRUE(c.connected());
  c.Send("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string r = c.ReadAll();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(r, HasSubstr("Content-Length: 3\r\n"));
  EXPECT_EQ(BodyOf(r), "");
}

TEST(HttpServerTest, KeepAliveServesSeveralRequests) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  RawClient c(s->port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string r = c.ReadResponse();
    EXPECT_THAT(r, StartsWith("HTTP/1.1 200 "));
    EXPECT_EQ(BodyOf(r), "ok\n");
  }
  EXPECT_EQ(s->stats().connections_accepted, 1u);
  EXPECT_EQ(s->stats().requests, 3u);
}

TEST(HttpServerTest, BearerTokenOnProtectedRoutes) {
  HttpServerOptions o;
  o.bearer_token = "s3cret";
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  std::string none = Get(s->port(), "/secret");
  EXPECT_THAT(none, StartsWith("HTTP/1.1 401 "));
  EXPECT_THAT(none, HasSubstr("WWW-Authenticate: Bearer"));
  EXPECT_THAT(none, ::testing::Not(HasSubstr("classified")));
  EXPECT_THAT(Get(s->port(), "/secret", "Authorization: Bearer wrong\r\n"),
              StartsWith("HTTP/1.1 401 "));
  EXPECT_THAT(Get(s->port(), "/secret", "Authorization: Bearer s3cret2\r\n"),
              StartsWith("HTTP/1.1 401 "));
  EXPECT_THAT(Get(s->port(), "/secret", "Authorization: Basic czNjcmV0\r\n"),
              StartsWith("HTTP/1.1 401 "));
  EXPECT_EQ(BodyOf(Get(s->port(), "/secret", "Authorization: Bearer s3cret\r\n")), "classified");
  EXPECT_EQ(BodyOf(Get(s->port(), "/secret", "authorization: bearer s3cret\r\n")), "classified");
  // Public routes need no token.
  EXPECT_THAT(Get(s->port(), "/healthz"), StartsWith("HTTP/1.1 200 "));
  EXPECT_EQ(s->stats().unauthorized, 4u);
}

TEST(HttpServerTest, NoTokenConfiguredMeansOpen) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(BodyOf(Get(s->port(), "/secret")), "classified");
}

TEST(HttpServerTest, HandlerExceptionBecomes500) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  EXPECT_THAT(Get(s->port(), "/throw"), StartsWith("HTTP/1.1 500 "));
  EXPECT_EQ(s->stats().handler_errors, 1u);
  EXPECT_THAT(Get(s->port(), "/healthz"), StartsWith("HTTP/1.1 200 "));
}

TEST(HttpServerTest, OversizedHeaderAndBodyAreRefused) {
  HttpServerOptions o;
  o.max_header_bytes = 1024;
  o.max_body_bytes = 16;
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  EXPECT_THAT(Get(s->port(), "/healthz", absl::StrCat("X-Big: ", std::string(4000, 'a'), "\r\n")),
              StartsWith("HTTP/1.1 431 "));
  RawClient c(s->port());
  ASSERT_TRUE(c.connected());
  c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b'));
  EXPECT_THAT(c.ReadAll(), StartsWith("HTTP/1.1 413 "));
  EXPECT_THAT(Get(s->port(), "/healthz"), StartsWith("HTTP/1.1 200 "));
  EXPECT_EQ(s->stats().bad_requests, 2u);
}

TEST(HttpServerTest, GarbageIsBadRequest) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  RawClient c(s->port());
  ASSERT_TRUE(c.connected());
  c.Send("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_THAT(c.ReadAll(), StartsWith("HTTP/1.1 400 "));
}

TEST(HttpServerTest, ConnectionLimitRefusesAndCounts) {
  HttpServerOptions o;
  o.max_connections = 2;
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  auto a = std::make_unique<RawClient>(s->port());
  RawClient b(s->port());
  ASSERT_TRUE(PollUntil([&] { return s->stats().connections_active == 2; }));
  RawClient refused(s->port());
  ASSERT_TRUE(refused.connected());  // the kernel accepts; the server answers 503
  EXPECT_THAT(refused.ReadAll(), StartsWith("HTTP/1.1 503 "));
  EXPECT_TRUE(refused.closed_by_peer());
  EXPECT_EQ(s->stats().connections_refused, 1u);
  a.reset();
  ASSERT_TRUE(PollUntil([&] { return s->stats().connections_active == 1; }));
  EXPECT_THAT(Get(s->port(), "/healthz"), StartsWith("HTTP/1.1 200 "));
}

TEST(HttpServerTest, SilentClientIsDisconnected) {
  HttpServerOptions o;
  o.io_timeout = std::chrono::milliseconds(200);
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  RawClient c(s->port());
  ASSERT_TRUE(c.connected());
  c.Send("GET /healthz HTTP/1.1\r\nHost:");  // never finishes
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.ReadAll(), "");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  EXPECT_TRUE(PollUntil([&] { return s->stats().timeouts == 1; }));
}

TEST(HttpServerTest, StopClosesOpenConnections) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  RawClient c(s->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(PollUntil([&] { return s->stats().connections_active == 1; }));
  s->Stop();
  EXPECT_EQ(c.ReadAll(), "");
  EXPECT_TRUE(c.closed_by_peer());
  s->Stop();  // idempotent
  EXPECT_THAT(s->Start(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(HttpServerTest, BadListenAddresses) {
  for (const char* listen : {"", "nohostport", "127.0.0.1:99999", ":80", "[::1]80"}) {
    HttpServerOptions o;
    o.listen = listen;
    EXPECT_THAT(HttpServer::Create(o), StatusIs(absl::StatusCode::kInvalidArgument)) << listen;
  }
  auto first = StartServer();
  ASSERT_NE(first, nullptr);
  HttpServerOptions o;
  o.listen = absl::StrCat("127.0.0.1:", first->port());
  auto second = HttpServer::Create(o);
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(second.status().message(), HasSubstr("bind"));
}

TEST(HttpServerTest, Ipv6Loopback) {
  HttpServerOptions o;
  o.listen = "[::1]:0";
  auto s = HttpServer::Create(o);
  if (!s.ok()) GTEST_SKIP() << "no IPv6 loopback: " << s.status();
  EXPECT_EQ((*s)->host(), "::1");
  EXPECT_NE((*s)->port(), 0);
}

}  // namespace
}  // namespace idflow::http

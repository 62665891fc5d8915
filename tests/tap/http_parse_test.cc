// The tap's protocol parsing (agent/tap/http_parse.h), driven with buffers.
#include "agent/tap/http_parse.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tap/client_hello.h"

namespace idflow::tap {
namespace {

using ::idflow::testing::ClientHello;
using ::testing::ElementsAre;

std::string Host(const std::string& req) {
  char out[256];
  size_t n = HttpHost(req.data(), req.size(), out, sizeof(out));
  return std::string(out, n);
}

std::vector<std::string> Headers(const std::string& msg, const char* name) {
  std::vector<std::string> out;
  HttpHeaders h = ParseHeaderBlock(msg.data(), msg.size());
  size_t from = 0, len = 0;
  const char* v = nullptr;
  while (FindHeader(h, from, name, &v, &len, &from)) out.emplace_back(v, len);
  return out;
}

std::vector<std::string> RequestCookies(const std::string& value) {
  std::vector<std::string> out;
  size_t pos = 0, len = 0;
  const char* name = nullptr;
  while (NextRequestCookie(value.data(), value.size(), &pos, &name, &len)) {
    out.emplace_back(name, len);
  }
  return out;
}

TEST(HttpParseTest, HostOfARequestPortStripped) {
  EXPECT_EQ(Host("GET / HTTP/1.1\r\nHost: api.example.test:8080\r\n\r\n"), "api.example.test");
  EXPECT_EQ(Host("GET / HTTP/1.1\r\nhOsT:\tapi.example.test \r\n\r\n"), "api.example.test");
  EXPECT_EQ(Host("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), "[::1]");
  EXPECT_EQ(Host("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n"), "[::1]");
  EXPECT_EQ(Host("GET / HTTP/1.1\nHost: bare-lf.test\n\n"), "bare-lf.test");
  // Not a request, or no Host header: nothing.
  EXPECT_EQ(Host("HTTP/1.1 200 OK\r\nHost: x\r\n\r\n"), "");
  EXPECT_EQ(Host("mac=aa:bb Host: x\r\n"), "");
  EXPECT_EQ(Host("GET / HTTP/1.1\r\nX-Host: x\r\n\r\n"), "");
  // The request line itself is not a header.
  EXPECT_EQ(Host("GET /host: HTTP/1.1\r\n\r\n"), "");
}

// The bug from issue 7: a body line "Host: x" renamed the destination.
TEST(HttpParseTest, BodyLineIsNotAHeader) {
  const std::string body_only =
      "POST /up HTTP/1.1\r\nContent-Length: 20\r\n\r\nHost: evil.test\r\n";
  EXPECT_EQ(Host(body_only), "");
  const std::string both =
      "POST /up HTTP/1.1\r\nHost: real.test\r\n\r\nHost: evil.test\r\nCookie: fake=1\r\n";
  EXPECT_EQ(Host(both), "real.test");
  EXPECT_TRUE(Headers(both, "cookie").empty());
  EXPECT_THAT(Headers("POST / HTTP/1.1\n\nCookie: a=1\n", "cookie"), ElementsAre());
  EXPECT_THAT(
      Headers("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\n\r\nSet-Cookie: b=2\r\n", "set-cookie"),
      ElementsAre("a=1"));
}

TEST(HttpParseTest, HeaderBlockWithoutBlankLineIsAllHeaders) {
  // The rest of the block comes in a later write: what is here is headers.
  const std::string part = "GET / HTTP/1.1\r\nAccept: */*\r\nHost: later.test\r\n";
  EXPECT_EQ(Host(part), "later.test");
  HttpHeaders h = ParseHeaderBlock(part.data(), part.size());
  EXPECT_EQ(h.end, part.size());
  // Bounded to kHeaderScanMax.
  std::string big =
      "GET / HTTP/1.1\r\n" + std::string(kHeaderScanMax, 'x') + "\r\nHost: far.test\r\n";
  EXPECT_EQ(Host(big), "");
}

TEST(HttpParseTest, RepeatedHeadersInOrder) {
  EXPECT_THAT(
      Headers("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX: y\r\nset-cookie: b=2; Path=/\r\n\r\n",
              "set-cookie"),
      ElementsAre("a=1", "b=2; Path=/"));
}

TEST(HttpParseTest, RequestCookieNamesWithoutValues) {
  EXPECT_THAT(RequestCookies("a=1; b=two;c=3"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(RequestCookies(" ; flag ; =novalue; d = 4"), ElementsAre("flag", "d"));
  EXPECT_THAT(RequestCookies(""), ElementsAre());
}

// A parsed Set-Cookie value with the strings it points into copied out.
struct Parsed {
  bool ok;
  std::string name;
  bool has_max_age;
  int64_t max_age;
  std::string domain;
};

Parsed Parse(const std::string& v, int64_t now = 1000) {
  SetCookie sc{};
  Parsed p{};
  p.ok = ParseSetCookie(v.data(), v.size(), now, &sc);
  if (!p.ok) return p;
  p.name.assign(sc.name, sc.name_len);
  p.has_max_age = sc.has_max_age;
  p.max_age = sc.max_age;
  p.domain.assign(sc.domain, sc.domain_len);
  return p;
}

TEST(HttpParseTest, SetCookieNameLifetimeAndDomain) {
  Parsed sc = Parse("sid=secret; Max-Age=3600; Path=/; Domain=.Example.TEST; Secure");
  EXPECT_EQ(sc.name, "sid");
  EXPECT_TRUE(sc.has_max_age);
  EXPECT_EQ(sc.max_age, 3600);
  EXPECT_EQ(sc.domain, "example.test");

  sc = Parse("tmp=1");
  EXPECT_FALSE(sc.has_max_age);
  EXPECT_EQ(sc.domain, "");

  // Max-Age wins over Expires, whatever the order.
  sc = Parse("a=1; Expires=Thu, 01 Jan 1970 00:20:00 GMT; max-age=5");
  EXPECT_EQ(sc.max_age, 5);
  sc = Parse("a=1; Expires=Thu, 01 Jan 1970 00:20:00 GMT", /*now=*/1000);
  EXPECT_TRUE(sc.has_max_age);
  EXPECT_EQ(sc.max_age, 200);
  sc = Parse("a=1; Max-Age=-1");
  EXPECT_EQ(sc.max_age, -1);
  // An invalid Max-Age is ignored (RFC 6265 5.2.2), an unparsable Expires too.
  sc = Parse("a=1; Max-Age=12x");
  EXPECT_FALSE(sc.has_max_age);
  sc = Parse("a=1; Expires=soon");
  EXPECT_FALSE(sc.has_max_age);
  // The value is never mistaken for an attribute.
  sc = Parse("a=max-age=5");
  EXPECT_FALSE(sc.has_max_age);
  EXPECT_EQ(sc.name, "a");
}

TEST(HttpParseTest, SetCookieDomainIsBoundedAndLastValidWins) {
  Parsed sc = Parse("a=1; Domain=first.test; Domain=.second.test");
  EXPECT_EQ(sc.domain, "second.test");
  sc = Parse("a=1; Domain=good.test; Domain=");
  EXPECT_EQ(sc.domain, "good.test");
  sc = Parse("a=1; Domain=" + std::string(kCookieDomainMax + 1, 'x'));
  EXPECT_EQ(sc.domain, "");
  sc = Parse("a=1; Domain=" + std::string(kCookieDomainMax, 'x'));
  EXPECT_EQ(sc.domain.size(), kCookieDomainMax);
  sc = Parse("a=1; Domain=bad host.test");
  EXPECT_EQ(sc.domain, "");
}

TEST(HttpParseTest, SetCookieWithoutCookieIsRejected) {
  EXPECT_FALSE(Parse("novalue; Max-Age=1").ok);
  EXPECT_FALSE(Parse(" =1").ok);
  EXPECT_FALSE(Parse("").ok);
  EXPECT_FALSE(Parse("=").ok);
  EXPECT_TRUE(Parse("a=").ok);
}

TEST(HttpParseTest, HttpDates) {
  int64_t t = 0;
  ASSERT_TRUE(ParseHttpDate("Wed, 21 Oct 2015 07:28:00 GMT", 29, &t));
  EXPECT_EQ(t, 1445412480);
  ASSERT_TRUE(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t));
  EXPECT_EQ(t, 784111777);
  ASSERT_TRUE(ParseHttpDate("Tue, 19 Jan 2038 03:14:08 GMT", 29, &t));
  EXPECT_EQ(t, int64_t{1} << 31);  // past the 32-bit limit
  EXPECT_FALSE(ParseHttpDate("21 Oct 2015", 11, &t));
  EXPECT_FALSE(ParseHttpDate("Wed, 21 Foo 2015 07:28:00 GMT", 29, &t));
  EXPECT_FALSE(ParseHttpDate("Wed, 21 Oct", 11, &t));
}

TEST(HttpParseTest, SniFromClientHello) {
  std::string hello = ClientHello("sni.example.test");
  char out[128];
  size_t n = ParseSni(hello.data(), hello.size(), out, sizeof(out));
  EXPECT_EQ(std::string(out, n), "sni.example.test");
  EXPECT_EQ(ParseSni(hello.data(), hello.size(), out, 3), 3u);
  // Cut before the name, or not a handshake: nothing.
  EXPECT_EQ(ParseSni(hello.data(), hello.size() - 20, out, sizeof(out)), 0u);
  std::string not_tls = "GET / HTTP/1.1\r\n" + std::string(64, 'x');
  EXPECT_EQ(ParseSni(not_tls.data(), not_tls.size(), out, sizeof(out)), 0u);
}

}  // namespace
}  // namespace idflow::tap

// HTTP/1 sniffing (agent/tap/sniff/http1.h), driven with buffers.
#include "agent/tap/sniff/http1.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow::tap {
namespace {

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

TEST(Http1Test, HostOfARequestPortStripped) {
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
TEST(Http1Test, BodyLineIsNotAHeader) {
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

TEST(Http1Test, HeaderBlockWithoutBlankLineIsAllHeaders) {
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

TEST(Http1Test, RepeatedHeadersInOrder) {
  EXPECT_THAT(
      Headers("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX: y\r\nset-cookie: b=2; Path=/\r\n\r\n",
              "set-cookie"),
      ElementsAre("a=1", "b=2; Path=/"));
}

TEST(Http1Test, RequestCookieNamesWithoutValues) {
  EXPECT_THAT(RequestCookies("a=1; b=two;c=3"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(RequestCookies(" ; flag ; =novalue; d = 4"), ElementsAre("flag", "d"));
  EXPECT_THAT(RequestCookies(""), ElementsAre());
}

// --- Response header lines across reads (the Set-Cookie gap of issue 10).

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += s + "|";
  return out;
}

void Collect(void* ctx, const char* line, size_t len) {
  static_cast<std::vector<std::string>*>(ctx)->emplace_back(line, len);
}

// Feeds `reads` in order to one stream; `more` gets what each call returned.
std::vector<std::string> Feed(const std::vector<std::string>& reads, std::vector<bool>* more,
                              bool with_carry = true) {
  std::vector<std::string> lines;
  ResponseLines state;
  char carry[kResponseLineMax];
  for (const std::string& r : reads) {
    bool m = FeedResponseLines(&state, with_carry ? carry : nullptr, r.data(), r.size(), Collect,
                               &lines);
    if (more != nullptr) more->push_back(m);
  }
  return lines;
}

const char kResponse[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: sid=1; Max-Age=60\r\n"
    "set-cookie: pref=dark; Domain=.Example.TEST\r\nContent-Length: 5\r\n\r\nSet-Cookie: body=1";

TEST(Http1Test, ResponseLinesInOneRead) {
  std::vector<bool> more;
  EXPECT_THAT(Feed({kResponse}, &more),
              ElementsAre("Content-Type: text/plain", "Set-Cookie: sid=1; Max-Age=60",
                          "set-cookie: pref=dark; Domain=.Example.TEST", "Content-Length: 5"));
  EXPECT_THAT(more, ElementsAre(false));  // the blank line ended the block
}

TEST(Http1Test, ResponseLinesSplitAtEveryOffsetAreTheSame) {
  const std::string whole = kResponse;
  const std::string expected = Join(Feed({whole}, nullptr));
  // A read shorter than a status line ("HTTP/1.1 200") is not known to
  // start a response: cuts from there on.
  for (size_t cut = 12; cut < whole.size(); ++cut) {
    std::vector<bool> more;
    EXPECT_EQ(Join(Feed({whole.substr(0, cut), whole.substr(cut)}, &more)), expected) << cut;
  }
  // One byte per read after the first 12.
  std::vector<std::string> bytes = {whole.substr(0, 12)};
  for (char c : whole.substr(12)) bytes.emplace_back(1, c);
  EXPECT_EQ(Join(Feed(bytes, nullptr)), expected);
}

TEST(Http1Test, SetCookieLineCutByTheReadIsJoined) {
  std::vector<bool> more;
  EXPECT_THAT(Feed({"HTTP/1.1 200 OK\r\nSet-Cookie: sid=1; Max-", "Age=60\r\n", "\r\nbody"}, &more),
              ElementsAre("Set-Cookie: sid=1; Max-Age=60"));
  EXPECT_THAT(more, ElementsAre(true, true, false));
  const char* v = nullptr;
  size_t len = 0;
  std::string line = "Set-Cookie: sid=1; Max-Age=60";
  ASSERT_TRUE(HeaderLineValue(line.data(), line.size(), "set-cookie", &v, &len));
  EXPECT_EQ(std::string(v, len), "sid=1; Max-Age=60");
  EXPECT_FALSE(HeaderLineValue(line.data(), line.size(), "cookie", &v, &len));
  EXPECT_FALSE(HeaderLineValue("X-Set-Cookie: a=1", 17, "set-cookie", &v, &len));
}

TEST(Http1Test, ResponseLinesStartOnlyAtAResponse) {
  std::vector<bool> more;
  // A read that does not begin a response is ignored; after the block ends,
  // the body (and what follows) is not headers.
  EXPECT_THAT(
      Feed({"Set-Cookie: a=1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n", "Set-Cookie: b=2\r\n"},
           &more),
      ElementsAre());
  EXPECT_THAT(more, ElementsAre(false, false, false));
}

TEST(Http1Test, OverlongCarriedLineIsSkippedNotTheNextOnes) {
  const std::string big = "X-Big: " + std::string(2 * kResponseLineMax, 'x');
  EXPECT_THAT(Feed({"HTTP/1.1 200 OK\r\n" + big.substr(0, 100), big.substr(100, 1500),
                    big.substr(1600) + "\r\nSet-Cookie: a=1\r\n\r\n"},
                   nullptr),
              ElementsAre("Set-Cookie: a=1"));
  // A long line inside one read is not carried, so it is kept.
  EXPECT_THAT(Feed({"HTTP/1.1 200 OK\r\n" + big + "\r\n\r\n"}, nullptr), ElementsAre(big));
}

TEST(Http1Test, WithoutCarryTheLastLineIsTakenAsItIs) {
  std::vector<bool> more;
  // No later read will be fed (no carry for the stream): as before issue 10,
  // the cut line is parsed as far as it goes.
  EXPECT_THAT(Feed({"HTTP/1.1 200 OK\r\nSet-Cookie: sid=1; Max-"}, &more, /*with_carry=*/false),
              ElementsAre("Set-Cookie: sid=1; Max-"));
  EXPECT_THAT(more, ElementsAre(false));
}

TEST(Http1Test, ResponseHeaderBlockIsBounded) {
  std::vector<std::string> reads = {"HTTP/1.1 200 OK\r\n"};
  for (size_t i = 0; i < kHeaderScanMax / 64; ++i)
    reads.push_back("X: " + std::string(59, 'y') + "\r\n");
  reads.push_back("Set-Cookie: late=1\r\n\r\n");
  std::vector<std::string> lines = Feed(reads, nullptr);
  EXPECT_FALSE(lines.empty());
  EXPECT_NE(lines.back(), "Set-Cookie: late=1");
}

}  // namespace
}  // namespace idflow::tap

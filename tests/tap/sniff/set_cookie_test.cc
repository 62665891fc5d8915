// Set-Cookie values (agent/tap/sniff/set_cookie.h).
#include "agent/tap/sniff/set_cookie.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace idflow::tap {
namespace {

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

TEST(SetCookieTest, SetCookieNameLifetimeAndDomain) {
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

TEST(SetCookieTest, SetCookieDomainIsBoundedAndLastValidWins) {
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

TEST(SetCookieTest, SetCookieWithoutCookieIsRejected) {
  EXPECT_FALSE(Parse("novalue; Max-Age=1").ok);
  EXPECT_FALSE(Parse(" =1").ok);
  EXPECT_FALSE(Parse("").ok);
  EXPECT_FALSE(Parse("=").ok);
  EXPECT_TRUE(Parse("a=").ok);
}

}  // namespace
}  // namespace idflow::tap

// HTTP dates (agent/tap/sniff/http_date.h).
#include "agent/tap/sniff/http_date.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace idflow::tap {
namespace {

TEST(HttpDateTest, HttpDates) {
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

}  // namespace
}  // namespace idflow::tap

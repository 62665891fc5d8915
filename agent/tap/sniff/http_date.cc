#include "agent/tap/sniff/http_date.h"

#include <string.h>

#include "agent/tap/sniff/ascii.h"

namespace idflow::tap {
namespace {

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

bool ParseHttpDate(const char* s, size_t n, int64_t* unix_seconds) {
  static constexpr char kMonths[] = "janfebmaraprmayjunjulaugsepoctnovdec";
  size_t i = 0;
  while (i < n && s[i] != ',') ++i;
  if (i >= n) return false;
  ++i;
  while (i < n && s[i] == ' ') ++i;
  auto number = [&](int max_digits, int64_t* out) {
    int64_t v = 0;
    int k = 0;
    while (i < n && k < max_digits && ascii::IsDigit(s[i])) v = v * 10 + (s[i++] - '0'), ++k;
    *out = v;
    return k > 0;
  };
  int64_t day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  if (!number(2, &day) || i + 5 > n || (s[i] != ' ' && s[i] != '-')) return false;
  ++i;
  char mon[3] = {ascii::Lower(s[i]), ascii::Lower(s[i + 1]), ascii::Lower(s[i + 2])};
  unsigned month = 0;
  for (unsigned m = 0; m < 12; ++m) {
    if (memcmp(kMonths + 3 * m, mon, 3) == 0) month = m + 1;
  }
  if (month == 0 || day < 1 || day > 31) return false;
  i += 3;
  if (i >= n || (s[i] != ' ' && s[i] != '-')) return false;
  ++i;
  if (!number(4, &year)) return false;
  if (year < 100) year += year < 70 ? 2000 : 1900;
  while (i < n && s[i] == ' ') ++i;
  if (!number(2, &hh) || i >= n || s[i++] != ':' || !number(2, &mm) || i >= n || s[i++] != ':' ||
      !number(2, &ss) || hh > 23 || mm > 59 || ss > 60) {
    return false;
  }
  *unix_seconds =
      DaysFromCivil(year, month, static_cast<unsigned>(day)) * 86400 + hh * 3600 + mm * 60 + ss;
  return true;
}

}  // namespace idflow::tap

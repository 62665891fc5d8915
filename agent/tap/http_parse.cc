#include "agent/tap/http_parse.h"

#include <string.h>

namespace idflow::tap {
namespace {

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// Case-insensitive equality of s[0, n) with `lower` (lower case, n bytes).
bool EqualsNoCase(const char* s, size_t n, const char* lower, size_t lower_len) {
  if (n != lower_len) return false;
  for (size_t i = 0; i < n; ++i) {
    if (LowerAscii(s[i]) != lower[i]) return false;
  }
  return true;
}

// Trims spaces and tabs from both ends of [*b, *e).
void Trim(const char* s, size_t* b, size_t* e) {
  while (*b < *e && IsSpace(s[*b])) ++*b;
  while (*e > *b && IsSpace(s[*e - 1])) --*e;
}

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Max-Age value: optional '-' then digits only (RFC 6265 5.2.2), clamped.
bool ParseMaxAge(const char* v, size_t n, int64_t* out) {
  size_t i = 0;
  bool neg = n > 0 && v[0] == '-';
  if (neg) ++i;
  if (i >= n) return false;
  int64_t x = 0;
  for (; i < n; ++i) {
    if (v[i] < '0' || v[i] > '9') return false;
    if (x < (int64_t{1} << 40)) x = x * 10 + (v[i] - '0');
  }
  *out = neg ? -x : x;
  return true;
}

// Domain attribute value: leading dot stripped, lower case; false when it is
// empty, too long or holds characters no host name has.
bool NormalizeDomain(const char* v, size_t n, char* out, size_t* out_len) {
  if (n > 0 && v[0] == '.') ++v, --n;
  if (n == 0 || n > kCookieDomainMax) return false;
  for (size_t i = 0; i < n; ++i) {
    char c = LowerAscii(v[i]);
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return false;
    out[i] = c;
  }
  *out_len = n;
  return true;
}

}  // namespace

bool IsHttpRequest(const char* data, size_t n) {
  size_t i = 0;
  while (i < n && i < 10 && data[i] >= 'A' && data[i] <= 'Z') ++i;
  return i >= 3 && i < n && data[i] == ' ';
}

bool IsHttpResponse(const char* data, size_t n) {
  return n >= 12 && memcmp(data, "HTTP/1.", 7) == 0;
}

HttpHeaders ParseHeaderBlock(const char* data, size_t n) {
  if (n > kHeaderScanMax) n = kHeaderScanMax;
  for (size_t i = 0; i < n; ++i) {
    if (data[i] != '\n') continue;
    // The line after this newline is empty ("\n" or "\r\n"): the block ends.
    if ((i + 1 < n && data[i + 1] == '\n') ||
        (i + 2 < n && data[i + 1] == '\r' && data[i + 2] == '\n')) {
      return {data, i + 1};
    }
  }
  return {data, n};
}

bool FindHeader(const HttpHeaders& h, size_t from, const char* name, const char** value,
                size_t* value_len, size_t* next) {
  const size_t name_len = strlen(name);
  // A header line starts after a newline: the first (request or status)
  // line is never a header.
  for (size_t p = from; p < h.end; ++p) {
    if (h.data[p] != '\n') continue;
    size_t b = p + 1;
    if (b + name_len >= h.end || h.data[b + name_len] != ':' ||
        !EqualsNoCase(h.data + b, name_len, name, name_len)) {
      continue;
    }
    size_t v = b + name_len + 1, e = v;
    while (e < h.end && h.data[e] != '\r' && h.data[e] != '\n') ++e;
    *next = e;
    Trim(h.data, &v, &e);
    *value = h.data + v;
    *value_len = e - v;
    return true;
  }
  return false;
}

size_t HttpHost(const char* data, size_t n, char* out, size_t cap) {
  if (!IsHttpRequest(data, n)) return 0;
  const char* v = nullptr;
  size_t len = 0, next = 0;
  if (!FindHeader(ParseHeaderBlock(data, n), 0, "host", &v, &len, &next)) return 0;
  // "name:port" -> "name" (not inside an IPv6 literal "[::1]").
  size_t digits = 0;
  while (digits < len && v[len - 1 - digits] >= '0' && v[len - 1 - digits] <= '9') ++digits;
  if (digits > 0 && digits + 1 < len && v[len - 1 - digits] == ':' && v[len - 2 - digits] != ':') {
    len -= digits + 1;
  }
  if (len > cap) len = cap;
  if (len > 0) memcpy(out, v, len);
  return len;
}

bool NextRequestCookie(const char* v, size_t len, size_t* pos, const char** name,
                       size_t* name_len) {
  size_t i = *pos;
  while (i < len) {
    while (i < len && (IsSpace(v[i]) || v[i] == ';')) ++i;
    size_t start = i;
    while (i < len && v[i] != '=' && v[i] != ';') ++i;
    size_t end = i;
    while (i < len && v[i] != ';') ++i;  // the value: never reported
    Trim(v, &start, &end);
    if (end > start) {
      *pos = i;
      *name = v + start;
      *name_len = end - start;
      return true;
    }
  }
  *pos = len;
  return false;
}

bool ParseSetCookie(const char* v, size_t len, int64_t now_unix_seconds, SetCookie* out) {
  size_t pair_end = 0;
  while (pair_end < len && v[pair_end] != ';') ++pair_end;
  size_t eq = 0;
  while (eq < pair_end && v[eq] != '=') ++eq;
  if (eq == pair_end) return false;  // no '=': not a cookie (RFC 6265 5.2 step 2)
  size_t nb = 0, ne = eq;
  Trim(v, &nb, &ne);
  if (ne == nb) return false;
  out->name = v + nb;
  out->name_len = ne - nb;
  out->has_max_age = false;
  out->max_age = 0;
  out->domain_len = 0;
  bool max_age_seen = false, expires_seen = false;
  int64_t max_age = 0, expires = 0;
  size_t i = pair_end;
  while (i < len) {
    size_t ab = i + 1, ae = ab;  // after the ';'
    while (ae < len && v[ae] != ';') ++ae;
    i = ae;
    size_t kb = ab, ke = ab;
    while (ke < ae && v[ke] != '=') ++ke;
    size_t vb = ke < ae ? ke + 1 : ae, ve = ae;
    Trim(v, &kb, &ke);
    Trim(v, &vb, &ve);
    const char* key = v + kb;
    size_t key_len = ke - kb;
    if (EqualsNoCase(key, key_len, "max-age", 7)) {
      max_age_seen |= ParseMaxAge(v + vb, ve - vb, &max_age);
    } else if (EqualsNoCase(key, key_len, "expires", 7)) {
      expires_seen |= ParseHttpDate(v + vb, ve - vb, &expires);
    } else if (EqualsNoCase(key, key_len, "domain", 6)) {
      // The last valid Domain attribute wins (RFC 6265 5.3 step 1).
      char domain[kCookieDomainMax];
      size_t domain_len = 0;
      if (NormalizeDomain(v + vb, ve - vb, domain, &domain_len)) {
        memcpy(out->domain, domain, domain_len);
        out->domain_len = domain_len;
      }
    }
  }
  if (max_age_seen) {  // Max-Age wins over Expires (RFC 6265 5.3 step 3)
    out->has_max_age = true;
    out->max_age = max_age;
  } else if (expires_seen) {
    out->has_max_age = true;
    out->max_age = expires - now_unix_seconds;
  }
  return true;
}

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
    while (i < n && k < max_digits && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0'), ++k;
    *out = v;
    return k > 0;
  };
  int64_t day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  if (!number(2, &day) || i + 5 > n || (s[i] != ' ' && s[i] != '-')) return false;
  ++i;
  char mon[3] = {LowerAscii(s[i]), LowerAscii(s[i + 1]), LowerAscii(s[i + 2])};
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

size_t ParseSni(const char* buf, size_t n, char* out, size_t cap) {
  const auto* d = reinterpret_cast<const uint8_t*>(buf);
  if (n < 5 + 4 + 2 + 32 + 1 || d[0] != 0x16 || d[1] != 0x03 || d[5] != 0x01) return 0;
  size_t end = 5 + static_cast<size_t>(Be16(d + 3));
  if (end > n) end = n;  // a ClientHello cut by the write: parse what is there
  size_t p = 5 + 4 + 2 + 32;
  if (p + 1 > end) return 0;
  p += 1 + d[p];  // session id
  if (p + 2 > end) return 0;
  p += 2 + Be16(d + p);  // cipher suites
  if (p + 1 > end) return 0;
  p += 1 + d[p];  // compression methods
  if (p + 2 > end) return 0;
  size_t ext_end = p + 2 + Be16(d + p);
  if (ext_end > end) ext_end = end;
  p += 2;
  while (p + 4 <= ext_end) {
    uint16_t type = Be16(d + p), len = Be16(d + p + 2);
    p += 4;
    if (type == 0 && p + 5 <= ext_end && d[p + 2] == 0) {  // server_name, host_name
      size_t name_len = Be16(d + p + 3);
      if (p + 5 + name_len > ext_end || name_len == 0) return 0;
      if (name_len > cap) name_len = cap;
      memcpy(out, d + p + 5, name_len);
      return name_len;
    }
    p += len;
  }
  return 0;
}

}  // namespace idflow::tap

#include "agent/tap/sniff/set_cookie.h"

#include <string.h>

#include "agent/tap/sniff/ascii.h"
#include "agent/tap/sniff/http_date.h"

namespace idflow::tap {
namespace {

// Max-Age value: optional '-' then digits only (RFC 6265 5.2.2), clamped.
bool ParseMaxAge(const char* v, size_t n, int64_t* out) {
  size_t i = 0;
  bool neg = n > 0 && v[0] == '-';
  if (neg) ++i;
  if (i >= n) return false;
  int64_t x = 0;
  for (; i < n; ++i) {
    if (!ascii::IsDigit(v[i])) return false;
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
    char c = ascii::Lower(v[i]);
    bool ok = (c >= 'a' && c <= 'z') || ascii::IsDigit(c) || c == '.' || c == '-' || c == '_';
    if (!ok) return false;
    out[i] = c;
  }
  *out_len = n;
  return true;
}

}  // namespace

bool ParseSetCookie(const char* v, size_t len, int64_t now_unix_seconds, SetCookie* out) {
  size_t pair_end = 0;
  while (pair_end < len && v[pair_end] != ';') ++pair_end;
  size_t eq = 0;
  while (eq < pair_end && v[eq] != '=') ++eq;
  if (eq == pair_end) return false;  // no '=': not a cookie (RFC 6265 5.2 step 2)
  size_t nb = 0, ne = eq;
  ascii::Trim(v, &nb, &ne);
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
    ascii::Trim(v, &kb, &ke);
    ascii::Trim(v, &vb, &ve);
    const char* key = v + kb;
    size_t key_len = ke - kb;
    if (ascii::EqualsNoCase(key, key_len, "max-age", 7)) {
      max_age_seen |= ParseMaxAge(v + vb, ve - vb, &max_age);
    } else if (ascii::EqualsNoCase(key, key_len, "expires", 7)) {
      expires_seen |= ParseHttpDate(v + vb, ve - vb, &expires);
    } else if (ascii::EqualsNoCase(key, key_len, "domain", 6)) {
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

}  // namespace idflow::tap

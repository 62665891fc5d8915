// Set-Cookie header values (RFC 6265 section 5.2): the cookie's name, its
// lifetime and its Domain. The value is never looked at. Pure: no
// allocation, no libstdc++ runtime (compiled into libidflow-tap.so).
#ifndef IDFLOW_AGENT_TAP_SNIFF_SET_COOKIE_H_
#define IDFLOW_AGENT_TAP_SNIFF_SET_COOKIE_H_

#include <stddef.h>
#include <stdint.h>

namespace idflow::tap {

// Longest cookie Domain kept (a DNS name); longer ones are ignored.
inline constexpr size_t kCookieDomainMax = 255;

struct SetCookie {
  const char* name;  // points into the parsed value
  size_t name_len;
  bool has_max_age;               // Max-Age, else a parsable Expires, was given
  int64_t max_age;                // seconds; Max-Age wins over Expires
  size_t domain_len;              // 0: host-only cookie
  char domain[kCookieDomainMax];  // lower case, leading dot stripped
};

// Parses one Set-Cookie header value; Expires is made relative to
// `now_unix_seconds`. False when the header sets no cookie (no '=' or an
// empty name).
bool ParseSetCookie(const char* value, size_t len, int64_t now_unix_seconds, SetCookie* out);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_SNIFF_SET_COOKIE_H_

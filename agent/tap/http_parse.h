// Protocol parsing for the tap: HTTP/1 request and response headers (Host,
// Cookie, Set-Cookie) and the TLS ClientHello's server name. Pure functions
// over the bytes of one hooked call: no allocation, no exceptions, no
// libstdc++ runtime (the tap links none), so the same code is compiled into
// libidflow-tap.so and into tests/tap/http_parse_test.cc.
//
// Header lookups never look past the blank line that ends the HTTP/1 header
// block: a body line "Host: x" is body, not a header.
#ifndef IDFLOW_AGENT_TAP_HTTP_PARSE_H_
#define IDFLOW_AGENT_TAP_HTTP_PARSE_H_

#include <stddef.h>
#include <stdint.h>

namespace idflow::tap {

// Header blocks are searched within this many bytes of the call at most.
inline constexpr size_t kHeaderScanMax = 16 * 1024;
// Longest cookie Domain kept (a DNS name); longer ones are ignored.
inline constexpr size_t kCookieDomainMax = 255;

// "GET / HTTP/1.1..." style: 3 to 10 upper-case letters then a space.
bool IsHttpRequest(const char* data, size_t n);
// "HTTP/1.x ..." at the start of the buffer.
bool IsHttpResponse(const char* data, size_t n);

// The header block of a request or response: [0, end). `end` stops before
// the blank line ending the headers, or at min(n, kHeaderScanMax) when the
// call holds no blank line (the rest of the block is in a later call).
struct HttpHeaders {
  const char* data;
  size_t end;
};
HttpHeaders ParseHeaderBlock(const char* data, size_t n);

// The next header named `name` (lower case, no colon) whose line starts at
// or after `from`; the value is trimmed of spaces and tabs. `*next` is where
// to continue for the following one. False when there is none.
bool FindHeader(const HttpHeaders& h, size_t from, const char* name, const char** value,
                size_t* value_len, size_t* next);

// Host header of an HTTP request, port stripped ("[::1]:80" keeps the
// brackets), truncated to `cap`; 0 if the buffer is not a request or has none.
size_t HttpHost(const char* data, size_t n, char* out, size_t cap);

// Iterates the cookie names of a Cookie header value ("a=1; b=2"): returns
// false at the end. Values are skipped, never returned.
bool NextRequestCookie(const char* value, size_t len, size_t* pos, const char** name,
                       size_t* name_len);

// One Set-Cookie header value, RFC 6265 section 5.2.
struct SetCookie {
  const char* name;
  size_t name_len;
  bool has_max_age;               // Max-Age, else a parsable Expires, was given
  int64_t max_age;                // seconds; Max-Age wins over Expires
  size_t domain_len;              // 0: host-only cookie
  char domain[kCookieDomainMax];  // lower case, leading dot stripped
};
// False when the header sets no cookie (no '=' or an empty name).
bool ParseSetCookie(const char* value, size_t len, int64_t now_unix_seconds, SetCookie* out);

// An HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT", also with '-' between day,
// month and year, two-digit years) as unix seconds.
bool ParseHttpDate(const char* s, size_t n, int64_t* unix_seconds);

// server_name of a TLS ClientHello at the start of `buf` (a record cut short
// by the write is parsed as far as it goes), truncated to `cap`; 0 if none.
size_t ParseSni(const char* buf, size_t n, char* out, size_t cap);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_HTTP_PARSE_H_

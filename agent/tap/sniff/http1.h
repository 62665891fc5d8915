// HTTP/1 sniffing for the tap: request and response header blocks (Host,
// Cookie, Set-Cookie lines), and a response's header lines followed across
// the reads of a stream. Pure functions over the bytes of hooked calls: no
// allocation, no libstdc++ runtime (compiled into libidflow-tap.so).
//
// Header lookups never look past the blank line that ends the header block:
// a body line "Host: x" is body, not a header.
#ifndef IDFLOW_AGENT_TAP_SNIFF_HTTP1_H_
#define IDFLOW_AGENT_TAP_SNIFF_HTTP1_H_

#include <stddef.h>
#include <stdint.h>

namespace idflow::tap {

// Header blocks are searched within this many bytes at most.
inline constexpr size_t kHeaderScanMax = 16 * 1024;

// "GET / HTTP/1.1..." style: 3 to 10 upper-case letters then a space.
bool IsHttpRequest(const char* data, size_t n);
// "HTTP/1.x ..." at the start of the buffer (at least 12 bytes).
bool IsHttpResponse(const char* data, size_t n);

// The header block of a request or response held by one call: [0, end).
// `end` stops before the blank line ending the headers, or at
// min(n, kHeaderScanMax) when the call holds no blank line (the rest of the
// block is in a later call).
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

// The value of `line` (one header line, no line ending) when it is header
// `name` (lower case, no colon), trimmed like FindHeader's.
bool HeaderLineValue(const char* line, size_t len, const char* name, const char** value,
                     size_t* value_len);

// Host header of an HTTP request, port stripped ("[::1]:80" keeps the
// brackets), truncated to `cap`; 0 if the buffer is not a request or has none.
size_t HttpHost(const char* data, size_t n, char* out, size_t cap);

// Iterates the cookie names of a Cookie header value ("a=1; b=2"): returns
// false at the end. Values are skipped, never returned.
bool NextRequestCookie(const char* value, size_t len, size_t* pos, const char** name,
                       size_t* name_len);

// --- A response's header lines across reads.
//
// A response header block can be split over several reads (a small buffer,
// a slow server, TLS records). The stream keeps a ResponseLines state and a
// carry buffer of kResponseLineMax bytes for the unfinished last line; each
// read is fed in order and every complete header line is handed out once.

// Longest header line carried from one read to the next; a longer one is
// skipped (its start was in an earlier read).
inline constexpr size_t kResponseLineMax = 1024;

struct ResponseLines {
  uint8_t phase = 0;      // idle, in the status line, in the headers
  bool skipping = false;  // the unfinished line outgrew the carry
  uint16_t len = 0;       // bytes of the unfinished line in the carry
  uint32_t seen = 0;      // bytes of the header block consumed
};

// Called with each header line, without its line ending; never the status
// line.
using HeaderLineFn = void (*)(void* ctx, const char* line, size_t len);

// Feeds the bytes of one read. An idle state starts only on a read that
// begins a response (IsHttpResponse); other reads are ignored. `carry`
// (kResponseLineMax bytes, kept with the state) receives the unfinished last
// line; with carry == nullptr no later read will be fed, and that line is
// handed out as it is. Returns true while the header block is unfinished:
// keep the state and carry for the stream's next read. False once the block
// ended (blank line, or kHeaderScanMax bytes) or never started.
bool FeedResponseLines(ResponseLines* s, char* carry, const char* data, size_t n, HeaderLineFn fn,
                       void* ctx);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_SNIFF_HTTP1_H_

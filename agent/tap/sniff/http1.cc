#include "agent/tap/sniff/http1.h"

#include <string.h>

#include "agent/tap/sniff/ascii.h"

namespace idflow::tap {
namespace {

enum Phase : uint8_t { kIdle = 0, kStatusLine = 1, kHeaderLines = 2 };

// The value of a header line whose name (name_len bytes) matched: from the
// colon to the first CR or LF, trimmed.
void LineValue(const char* line, size_t end, size_t colon, const char** value, size_t* value_len,
               size_t* stop) {
  size_t v = colon + 1, e = v;
  while (e < end && line[e] != '\r' && line[e] != '\n') ++e;
  *stop = e;
  ascii::Trim(line, &v, &e);
  *value = line + v;
  *value_len = e - v;
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
        !ascii::EqualsNoCase(h.data + b, name_len, name, name_len)) {
      continue;
    }
    LineValue(h.data, h.end, b + name_len, value, value_len, next);
    return true;
  }
  return false;
}

bool HeaderLineValue(const char* line, size_t len, const char* name, const char** value,
                     size_t* value_len) {
  const size_t name_len = strlen(name);
  if (name_len >= len || line[name_len] != ':' ||
      !ascii::EqualsNoCase(line, name_len, name, name_len)) {
    return false;
  }
  size_t stop = 0;
  LineValue(line, len, name_len, value, value_len, &stop);
  return true;
}

size_t HttpHost(const char* data, size_t n, char* out, size_t cap) {
  if (!IsHttpRequest(data, n)) return 0;
  const char* v = nullptr;
  size_t len = 0, next = 0;
  if (!FindHeader(ParseHeaderBlock(data, n), 0, "host", &v, &len, &next)) return 0;
  // "name:port" -> "name" (not inside an IPv6 literal "[::1]").
  size_t digits = 0;
  while (digits < len && ascii::IsDigit(v[len - 1 - digits])) ++digits;
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
    while (i < len && (ascii::IsSpace(v[i]) || v[i] == ';')) ++i;
    size_t start = i;
    while (i < len && v[i] != '=' && v[i] != ';') ++i;
    size_t end = i;
    while (i < len && v[i] != ';') ++i;  // the value: never reported
    ascii::Trim(v, &start, &end);
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

bool FeedResponseLines(ResponseLines* s, char* carry, const char* data, size_t n, HeaderLineFn fn,
                       void* ctx) {
  if (s->phase == kIdle) {
    if (!IsHttpResponse(data, n)) return false;
    *s = ResponseLines{};
    s->phase = kStatusLine;
  }
  if (carry == nullptr) s->len = 0, s->skipping = false;  // nothing could have been kept
  size_t i = 0;
  bool ended = false;
  while (i < n && !ended) {
    const char* nl = static_cast<const char*>(memchr(data + i, '\n', n - i));
    const size_t seg_end = nl != nullptr ? static_cast<size_t>(nl - data) : n;
    const size_t seg_len = seg_end - i;
    if (s->seen + seg_len >= kHeaderScanMax) {  // block too long: stop looking
      ended = true;
      break;
    }
    // The line: this segment, after what an earlier read left in the carry.
    const char* line = data + i;
    size_t len = seg_len;
    if (s->skipping) {
      line = nullptr;  // began in an earlier read and outgrew the carry
    } else if (s->len > 0) {
      if (s->len + seg_len > kResponseLineMax) {
        line = nullptr;
      } else {
        memcpy(carry + s->len, data + i, seg_len);
        line = carry;
        len = s->len + seg_len;
      }
    }
    s->seen += static_cast<uint32_t>(seg_len);
    if (nl == nullptr && carry != nullptr) {  // unfinished: wait for the next read
      if (len > kResponseLineMax) line = nullptr;
      s->skipping = line == nullptr;
      s->len = 0;
      if (line != nullptr) {
        if (line != carry) memcpy(carry, line, len);
        s->len = static_cast<uint16_t>(len);
      }
      return true;
    }
    s->len = 0;
    s->skipping = false;
    s->seen += 1;
    i = seg_end + 1;
    if (line == nullptr) continue;
    if (len > 0 && line[len - 1] == '\r') --len;
    if (len == 0) {  // the blank line: the header block ends
      ended = true;
    } else if (s->phase == kStatusLine) {
      s->phase = kHeaderLines;
    } else {
      fn(ctx, line, len);
    }
  }
  // The block goes on in the next read unless it ended here or no next
  // read will be fed.
  const bool more = !ended && carry != nullptr;
  if (!more) *s = ResponseLines{};
  return more;
}

}  // namespace idflow::tap

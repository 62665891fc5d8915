// Incoming bytes: Set-Cookie headers of HTTP responses, across reads
// (observe.h).
#include <string.h>
#include <time.h>

#include "agent/tap/core/state.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/observe/events.h"
#include "agent/tap/observe/observe.h"
#include "agent/tap/sniff/http1.h"
#include "agent/tap/sniff/set_cookie.h"

namespace idflow::tap {
namespace {

using agent::TapWireEvent;

static_assert(kCookieDomainMax == agent::kTapCookieDomainMax);

// Set-Cookie headers of an HTTP response, one header line at a time
// (tap/sniff/http1.h FeedResponseLines).
struct IncomingCookies {
  const Call* call;
  int64_t now_s;
  int sent;
  bool common_ready;
  TapWireEvent ev;
};

void OnResponseLine(void* ctx, const char* line, size_t line_len) {
  auto* in = static_cast<IncomingCookies*>(ctx);
  const char* v = nullptr;
  size_t len = 0;
  if (in->sent >= kMaxCookiesPerCall || !HeaderLineValue(line, line_len, "set-cookie", &v, &len)) {
    return;
  }
  SetCookie sc;
  if (!ParseSetCookie(v, len, in->now_s, &sc)) return;
  uint8_t flags = sc.has_max_age ? agent::kTapCookieHasMaxAge : agent::kTapCookieSession;
  if (!in->common_ready) {
    FillCommon(*in->call, nullptr, 0, &in->ev);
    in->common_ready = true;
  }
  SendCookie(in->ev, agent::kTapCookieIn, sc.name, sc.name_len, flags, sc.max_age, sc.domain,
             sc.domain_len);
  ++in->sent;
}

}  // namespace

// One read of a stream that begins an HTTP response or continues one whose
// header block did not end in an earlier read (the stream's response carry).
// Without a carry (pool exhausted, fd unknown) the read is parsed alone.
void OnIncoming(const Call& c, const char* data, size_t n) {
  IncomingCookies in;
  in.call = &c;
  in.now_s = NowMs(CLOCK_REALTIME) / 1000;
  in.sent = 0;
  in.common_ready = false;
  const int tls = c.tls_channel != 0 ? 1 : 0;
  auto* slot = g_responses.Lock(c.fd, tls, /*claim=*/IsHttpResponse(data, n));
  if (slot == nullptr) {
    ResponseLines alone;
    FeedResponseLines(&alone, nullptr, data, n, OnResponseLine, &in);
    return;
  }
  ResponseCarry& r = slot->payload;
  if (IsHttpResponse(data, n)) r.Reset();  // a new response on the stream
  bool more = FeedResponseLines(&r.lines, r.line, data, n, OnResponseLine, &in);
  g_responses.Unlock(slot);
  if (!more) g_responses.Release(c.fd, tls);
}

}  // namespace idflow::tap

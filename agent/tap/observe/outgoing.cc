// Outgoing bytes: scanned with the stream carry (split identifiers), HTTP
// request cookies (observe.h).
#include <hs/hs_runtime.h>
#include <string.h>

#include "agent/tap/core/state.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/observe/events.h"
#include "agent/tap/observe/observe.h"
#include "agent/tap/sniff/http1.h"

namespace idflow::tap {
namespace {

using agent::TapWireEvent;

// Scan of carry + new bytes: matches that end inside the carry were reported
// by the previous call; those that straddle the boundary are split matches.
struct JointMatches {
  size_t boundary;  // carry length
  bool want_main;   // the joint buffer holds all the new bytes
  MatchSet split;
  MatchSet main;  // offsets relative to the joint buffer
};

int OnJointMatch(unsigned int id, unsigned long long from, unsigned long long to, unsigned int,
                 void* ctx) {
  auto* j = static_cast<JointMatches*>(ctx);
  if (to <= j->boundary) return 0;
  if (from < j->boundary) {
    AddMatch(&j->split, id, from, to);
  } else if (j->want_main) {
    AddMatch(&j->main, id, from, to);
  }
  return 0;
}

// Cookie names of an outgoing HTTP request ("Cookie: a=1; b=2"), from every
// Cookie header of the header block.
void ReportRequestCookies(const Call& c, const char* data, size_t n, TapWireEvent* ev,
                          bool* common_ready) {
  const HttpHeaders headers = ParseHeaderBlock(data, n);
  int sent = 0;
  size_t from = 0;
  const char* v = nullptr;
  size_t len = 0;
  while (sent < kMaxCookiesPerCall && FindHeader(headers, from, "cookie", &v, &len, &from)) {
    size_t pos = 0;
    const char* name = nullptr;
    size_t name_len = 0;
    while (sent < kMaxCookiesPerCall && NextRequestCookie(v, len, &pos, &name, &name_len)) {
      if (!*common_ready) {
        FillCommon(c, data, n, ev);
        *common_ready = true;
      }
      SendCookie(*ev, agent::kTapCookieOut, name, name_len, 0, 0, nullptr, 0);
      ++sent;
    }
  }
}

}  // namespace

// Scans what a hooked call actually sent (n contiguous bytes) and reports.
void ScanOutgoing(const Call& c, const char* data, size_t n) {
  if (n == 0 || !EnsureThreadResources()) return;
  if (c.tls_channel == 0 && c.kind == kFdTcp) RememberSni(c.fd, data, n);
  bool capped = false;
  if (n > g_scan_cap) {
    n = g_scan_cap;
    capped = true;
    g_counters.cap_hits.fetch_add(1, std::memory_order_relaxed);
  }
  g_counters.calls_scanned.fetch_add(1, std::memory_order_relaxed);
  g_counters.bytes_scanned.fetch_add(n, std::memory_order_relaxed);

  bool stream = c.kind == kFdTcp || c.kind == kFdUnixStream;
  SendCarries::Slot* slot = nullptr;
  if (stream) {
    slot = g_carry.Lock(c.fd, c.tls_channel != 0 ? 1 : 0, /*claim=*/true);
    if (slot == nullptr) g_counters.stream_fallbacks.fetch_add(1, std::memory_order_relaxed);
  }
  SendCarry* carry = slot != nullptr ? &slot->payload : nullptr;
  char joint[2 * kCarryMax];
  size_t joint_len = 0;
  JointMatches jm;
  jm.split.count = 0;
  jm.main.count = 0;
  jm.boundary = 0;
  jm.want_main = false;
  MatchSet main;
  main.count = 0;
  bool main_in_joint = false;
  if (carry != nullptr && carry->len > 0) {
    size_t take = n < kCarryMax ? n : kCarryMax;
    memcpy(joint, carry->bytes, carry->len);
    memcpy(joint + carry->len, data, take);
    joint_len = carry->len + take;
    jm.boundary = carry->len;
    jm.want_main = take == n;  // small call: one scan covers everything
    main_in_joint = jm.want_main;
    hs_scan(g_db, joint, static_cast<unsigned int>(joint_len), 0, t_scratch, OnJointMatch, &jm);
  }
  if (!main_in_joint) {
    hs_scan(g_db, data, static_cast<unsigned int>(n), 0, t_scratch, OnMatch, &main);
  }
  if (carry != nullptr) {
    // Keep the last kCarryMax bytes of (carry + data) for the next call.
    if (capped) {
      carry->len = 0;  // the bytes past the cap were not looked at
    } else if (n >= kCarryMax) {
      memcpy(carry->bytes, data + n - kCarryMax, kCarryMax);
      carry->len = kCarryMax;
    } else {
      size_t keep_old = carry->len + n > kCarryMax ? kCarryMax - n : carry->len;
      memmove(carry->bytes, carry->bytes + carry->len - keep_old, keep_old);
      memcpy(carry->bytes + keep_old, data, n);
      carry->len = static_cast<uint16_t>(keep_old + n);
    }
    g_carry.Unlock(slot);
  }

  bool http_request = (c.tls_channel != 0 || c.kind == kFdTcp) && IsHttpRequest(data, n);
  int total = jm.split.count + jm.main.count + main.count;
  if (total == 0 && !http_request) return;

  // Only now pay for verifying the cached kind (an fd closed behind our back,
  // e.g. by fclose, and reused).
  if (c.fd >= 0 && c.fd < kFdTableSize && c.tls_channel == 0 && ClassifySlow(c.fd) != c.kind) {
    ResetFd(c.fd);
    return;
  }
  TapWireEvent ev;
  bool common_ready = false;
  if (total > 0) {
    FillCommon(c, data, n, &ev);
    common_ready = true;
    for (int i = 0; i < jm.split.count; ++i) {
      SendMatch(&ev, joint, joint_len, jm.split.id[i], jm.split.from[i], jm.split.to[i], 0, true);
    }
    for (int i = 0; i < jm.main.count; ++i) {
      SendMatch(&ev, joint, joint_len, jm.main.id[i], jm.main.from[i], jm.main.to[i],
                jm.main.from[i] - jm.boundary, false);
    }
    for (int i = 0; i < main.count; ++i) {
      SendMatch(&ev, data, n, main.id[i], main.from[i], main.to[i], main.from[i], false);
    }
  }
  if (http_request) ReportRequestCookies(c, data, n, &ev, &common_ready);
}

// Gathers an iovec (up to the cap) and scans it.
void ScanIov(const Call& c, const iovec* iov, size_t iovcnt, size_t sent) {
  if (sent == 0 || iov == nullptr || iovcnt == 0) return;
  if (iov[0].iov_len >= sent || iovcnt == 1) {
    size_t n = iov[0].iov_len < sent ? iov[0].iov_len : sent;
    ScanOutgoing(c, static_cast<const char*>(iov[0].iov_base), n);
    return;
  }
  if (!EnsureThreadResources()) return;
  size_t want = sent < g_scan_cap ? sent : g_scan_cap;
  size_t copied = 0;
  for (size_t i = 0; i < iovcnt && copied < want; ++i) {
    size_t take = iov[i].iov_len < want - copied ? iov[i].iov_len : want - copied;
    if (take > 0) memcpy(t_gather + copied, iov[i].iov_base, take);
    copied += take;
  }
  if (sent > g_scan_cap) g_counters.cap_hits.fetch_add(1, std::memory_order_relaxed);
  ScanOutgoing(c, t_gather, copied);
}

}  // namespace idflow::tap

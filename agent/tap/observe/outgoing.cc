// Outgoing bytes (observe.h): matched inline when the call is small and the
// database is here, otherwise handed to the agent in the ring (a Payload
// record: the bytes, the stream's carry, the destination and the raw call
// chain), where they are matched and become the same events. HTTP request
// cookies are reported from here.
#include <string.h>

#include "agent/tap/attribution/module_table.h"
#include "agent/tap/attribution/stack_walk.h"
#include "agent/tap/channel/agent_channel.h"
#include "agent/tap/core/state.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/observe/events.h"
#include "agent/tap/observe/observe.h"
#include "agent/tap/observe/scan.h"
#include "agent/tap/resolver/names.h"
#include "agent/tap/sniff/http1.h"

namespace idflow::tap {
namespace {

using agent::TapWireEvent;
using agent::TapWirePayload;

// Cookie names of an outgoing HTTP request ("Cookie: a=1; b=2"), from every
// Cookie header of the header block.
void ReportRequestCookies(const Call& c, const char* data, size_t n) {
  const HttpHeaders headers = ParseHeaderBlock(data, n);
  TapWireEvent ev;
  bool common_ready = false;
  int sent = 0;
  size_t from = 0;
  const char* v = nullptr;
  size_t len = 0;
  while (sent < kMaxCookiesPerCall && FindHeader(headers, from, "cookie", &v, &len, &from)) {
    size_t pos = 0;
    const char* name = nullptr;
    size_t name_len = 0;
    while (sent < kMaxCookiesPerCall && NextRequestCookie(v, len, &pos, &name, &name_len)) {
      if (!common_ready) {
        FillCommon(c, data, n, &ev);
        common_ready = true;
      }
      SendCookie(ev, agent::kTapCookieOut, name, name_len, 0, 0, nullptr, 0);
      ++sent;
    }
  }
}

// The fields every record of one call shares: what FillCommon() gives an
// event, with the raw return addresses instead of the resolved chain.
void FillPayload(const Call& c, const char* data, size_t n, TapWirePayload* p) {
  memset(p, 0, sizeof(*p));  // no stale stack bytes go to shared memory
  agent::FillTapHeader(&p->header, agent::kTapMsgPayload, 0);
  p->timestamp_ms = static_cast<uint64_t>(NowMs(CLOCK_REALTIME));
  p->pid = static_cast<uint32_t>(g_pid);
  p->tid = static_cast<uint32_t>(ThreadId());
  p->fd = c.fd;
  p->channel = ChannelOf(c.kind, c.tls_channel);
  DestinationCached(c.fd, c.dest, c.dest_len, &p->family, p->addr, &p->port);
  // Name: HTTP Host, else TLS SNI seen on this fd, else what the resolver said.
  p->host_len = static_cast<uint16_t>(HttpHost(data, n, p->host, agent::kTapHostMax));
  if (p->host_len == 0) p->host_len = FdName(c.fd, p->host);
  if (p->host_len == 0) p->host_len = LookupName(p->family, p->addr, p->host);
  if (c.kind == kFdUnix || c.kind == kFdUnixStream) p->peer_len = PeerExeCached(c.fd, p->peer);
  agent::TapRingHeader* ring = OwnRing();
  MaybeSyncModules(ring);
  if (ring != nullptr) {
    p->module_generation = __atomic_load_n(&ring->module_generation, __ATOMIC_ACQUIRE);
  }
  p->frame_count = static_cast<uint8_t>(
      CaptureFrames(p->frames, g_stack_depth < static_cast<int>(agent::kTapFramesMax)
                                   ? g_stack_depth
                                   : static_cast<int>(agent::kTapFramesMax)));
  p->caller = reinterpret_cast<uintptr_t>(c.caller);
}

// Hands data[0, n) (one call, or its part from `offset` on) to the agent in
// chunks of at most kTapPayloadChunkMax, each after the bytes before it.
void HandOver(const Call& c, const char* carry, size_t carry_len, const char* data, size_t n,
              uint64_t offset, bool continued, uint8_t flags = 0) {
  TapWirePayload p;
  FillPayload(c, data, n, &p);
  for (size_t done = 0; done < n;) {
    const size_t take =
        n - done < agent::kTapPayloadChunkMax ? n - done : agent::kTapPayloadChunkMax;
    if (done > 0) {
      carry_len = kCarryMax;  // the call's previous chunk (done >= kTapPayloadChunkMax)
      carry = data + done - kCarryMax;
      continued = true;
    }
    p.call_offset = offset + done;
    p.flags = static_cast<uint8_t>((continued ? agent::kTapPayloadContinued : 0) | flags);
    p.carry_len = static_cast<uint16_t>(carry_len);
    p.data_len = static_cast<uint32_t>(take);
    p.header.length = static_cast<uint32_t>(sizeof(p) + carry_len + take);
    RingPart parts[3] = {{&p, sizeof(p)}, {carry, carry_len}, {data + done, take}};
    if (!HandToRing(parts, 3)) g_counters.events_dropped.fetch_add(1, std::memory_order_relaxed);
    done += take;
  }
}

void ScanOutgoingAt(const Call& c, const char* data, size_t n, uint64_t offset, bool continued) {
  if (n == 0) return;
  if (c.tls_channel == 0 && c.kind == kFdTcp) RememberSni(c.fd, data, n);
  g_counters.calls_scanned.fetch_add(1, std::memory_order_relaxed);
  g_counters.bytes_scanned.fetch_add(n, std::memory_order_relaxed);

  const bool stream = c.kind == kFdTcp || c.kind == kFdUnixStream;
  SendCarries::Slot* slot = nullptr;
  if (stream) {
    slot = g_carry.Lock(c.fd, c.tls_channel != 0 ? 1 : 0, /*claim=*/true);
    if (slot == nullptr) g_counters.stream_fallbacks.fetch_add(1, std::memory_order_relaxed);
  }
  SendCarry* carry = slot != nullptr ? &slot->payload : nullptr;
  const char* carry_bytes = carry != nullptr ? carry->bytes : nullptr;
  const size_t carry_len = carry != nullptr ? carry->len : 0;
  if (!g_nothing_to_scan) {
    bool hand_over = true;
    if (g_db != nullptr && n <= g_inline_max && t_scratch != nullptr) {
      // Small call: matching here costs less than the copy and the
      // attribution; only a call with a match goes to the agent.
      CallMatches m;
      ScanCall(g_db, t_scratch, carry_bytes, carry_len, data, n, &m);
      hand_over = m.total() > 0;
    }
    if (hand_over) HandOver(c, carry_bytes, carry_len, data, n, offset, continued);
  }
  if (carry != nullptr) {
    carry->len = static_cast<uint16_t>(NextCarry(carry->bytes, carry->len, data, n));
    g_carry.Unlock(slot);
  }
  if (offset == 0 && (c.tls_channel != 0 || c.kind == kFdTcp) && IsHttpRequest(data, n)) {
    ReportRequestCookies(c, data, n);
  }
}

}  // namespace

void HandOverAcquired(const Call& c, const char* text, size_t n) {
  if (n > 0 && !g_nothing_to_scan)
    HandOver(c, nullptr, 0, text, n, 0, false, agent::kTapPayloadAcquire);
}

void ScanOutgoing(const Call& c, const char* data, size_t n) {
  if (!EnsureThreadResources()) return;
  ScanOutgoingAt(c, data, n, 0, false);
}

// A gathered call up to one chunk is handed over as one buffer (as a plain
// send would be); a larger one buffer by buffer, each after the previous
// one's bytes (offsets stay those of the call).
void ScanIov(const Call& c, const iovec* iov, size_t iovcnt, size_t sent) {
  if (sent == 0 || iov == nullptr || iovcnt == 0 || !EnsureThreadResources()) return;
  if (iov[0].iov_len >= sent || iovcnt == 1) {
    size_t n = iov[0].iov_len < sent ? iov[0].iov_len : sent;
    ScanOutgoingAt(c, static_cast<const char*>(iov[0].iov_base), n, 0, false);
    return;
  }
  if (sent <= agent::kTapPayloadChunkMax) {
    size_t copied = 0;
    for (size_t i = 0; i < iovcnt && copied < sent; ++i) {
      size_t take = iov[i].iov_len < sent - copied ? iov[i].iov_len : sent - copied;
      if (take > 0) memcpy(t_gather + copied, iov[i].iov_base, take);
      copied += take;
    }
    ScanOutgoingAt(c, t_gather, copied, 0, false);
    return;
  }
  size_t done = 0;
  for (size_t i = 0; i < iovcnt && done < sent; ++i) {
    size_t take = iov[i].iov_len < sent - done ? iov[i].iov_len : sent - done;
    ScanOutgoingAt(c, static_cast<const char*>(iov[i].iov_base), take, done, done > 0);
    done += take;
  }
}

}  // namespace idflow::tap

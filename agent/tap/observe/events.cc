#include "agent/tap/observe/events.h"

#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent/tap/attribution/stack_walk.h"
#include "agent/tap/channel/agent_channel.h"
#include "agent/tap/core/state.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap/resolver/names.h"
#include "agent/tap/sniff/http1.h"

namespace idflow::tap {

using agent::kTapContextMax;
using agent::kTapHostMax;
using agent::TapWireCookie;
using agent::TapWireEvent;

// Fills the fields every event and cookie of one call share.
void FillCommon(const Call& c, const char* data, size_t n, TapWireEvent* ev) {
  memset(ev, 0, sizeof(*ev));
  agent::FillTapHeader(&ev->header, agent::kTapMsgEvent, sizeof(*ev));
  ev->timestamp_ms = static_cast<uint64_t>(NowMs(CLOCK_REALTIME));
  ev->pid = static_cast<uint32_t>(getpid());
  ev->tid = static_cast<uint32_t>(syscall(SYS_gettid));
  ev->action = agent::kTapActionTransmit;
  ev->channel = ChannelOf(c.kind, c.tls_channel);
  Destination(c.fd, c.dest, c.dest_len, &ev->family, ev->addr, &ev->port);
  // Name: HTTP Host, else TLS SNI seen on this fd, else what the resolver said.
  ev->host_len =
      data != nullptr ? static_cast<uint16_t>(HttpHost(data, n, ev->host, kTapHostMax)) : 0;
  if (ev->host_len == 0) ev->host_len = FdName(c.fd, ev->host);
  if (ev->host_len == 0) ev->host_len = LookupName(ev->family, ev->addr, ev->host);
  FillChain(c.caller, &ev->chain);
  if (c.kind == kFdUnix || c.kind == kFdUnixStream) ev->peer_len = PeerExe(c.fd, ev->peer);
}

void SendMatch(TapWireEvent* ev, const char* data, size_t n, uint32_t id, uint64_t from,
               uint64_t to, uint64_t offset, bool split) {
  SetEventMatch(ev, data, n, id, from, to, offset, split);
  if (split) g_counters.split_matches.fetch_add(1, std::memory_order_relaxed);
  SendToAgent(ev, sizeof(*ev));
}

// One cookie message from the common fields of `ev`.
void SendCookie(const TapWireEvent& ev, uint8_t direction, const char* name, size_t name_len,
                uint8_t flags, int64_t max_age, const char* domain, size_t domain_len) {
  TapWireCookie c;
  memset(&c, 0, sizeof(c));
  agent::FillTapHeader(&c.header, agent::kTapMsgCookie, sizeof(c));
  c.timestamp_ms = ev.timestamp_ms;
  c.pid = ev.pid;
  c.tid = ev.tid;
  c.direction = direction;
  c.channel = ev.channel;
  c.family = ev.family;
  memcpy(c.addr, ev.addr, 16);
  c.port = ev.port;
  c.host_len = ev.host_len;
  memcpy(c.host, ev.host, ev.host_len);
  c.chain = ev.chain;
  if (name_len > agent::kTapCookieNameMax) name_len = agent::kTapCookieNameMax;
  c.name_len = static_cast<uint16_t>(name_len);
  memcpy(c.name, name, name_len);
  if (domain_len > agent::kTapCookieDomainMax) domain_len = 0;
  c.domain_len = static_cast<uint16_t>(domain_len);
  memcpy(c.domain, domain, domain_len);
  c.flags = flags;
  c.max_age_seconds = max_age;
  g_counters.cookies.fetch_add(1, std::memory_order_relaxed);
  SendToAgent(&c, sizeof(c));
}

}  // namespace idflow::tap

#include "agent/tap_protocol.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace idflow::agent {
namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("tap message: ", what));
}

// TapChannel mirrors TapWireChannel value for value.
static_assert(static_cast<int>(TapChannel::kGetifaddrs) == kTapChannelGetifaddrs);
static_assert(static_cast<int>(TapChannel::kTlsOpenssl) == kTapChannelTlsOpenssl);

// Textual address from a wire (family, addr); false for an unknown family.
bool WireAddress(uint8_t family, const uint8_t (&addr)[16], std::string* out) {
  char text[INET6_ADDRSTRLEN] = {};
  switch (family) {
    case kTapFamilyNone:
    case kTapFamilyUnix:
      return true;
    case kTapFamilyInet:
      inet_ntop(AF_INET, addr, text, sizeof(text));
      *out = text;
      return true;
    case kTapFamilyInet6:
      inet_ntop(AF_INET6, addr, text, sizeof(text));
      *out = text;
      return true;
    default:
      return false;
  }
}

uint8_t PutWireAddress(const std::string& address, int family, uint8_t (&addr)[16]) {
  if (inet_pton(AF_INET, address.c_str(), addr) == 1) return kTapFamilyInet;
  if (inet_pton(AF_INET6, address.c_str(), addr) == 1) return kTapFamilyInet6;
  return family == kTapFamilyUnix ? kTapFamilyUnix : kTapFamilyNone;
}

// Validates a wire chain strictly and converts it. Rejects counts and lengths
// out of range, paths with a NUL, used bytes beyond the area, non-zero unused
// entries and repeated modules (the tap lists each module once).
bool WireChain(const TapWireChain& w, std::vector<TapModule>* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (w.count > kTapChainMax) return false;
  if (w.reserved1 != 0 || w.reserved0[0] != 0 || w.reserved0[1] != 0 || w.reserved0[2] != 0) {
    return false;
  }
  static constexpr TapWireChainEntry kZero{};
  size_t used = 0;
  out->clear();
  for (size_t i = 0; i < kTapChainMax; ++i) {
    const TapWireChainEntry& e = w.entries[i];
    if (i >= w.count) {
      if (memcmp(&e, &kZero, sizeof(e)) != 0) return false;
      continue;
    }
    if (e.path_len == 0 || e.path_len > kTapModuleMax || e.path_len > kTapChainPathBytes - used ||
        e.build_id_len > kTapBuildIdMax || e.reserved != 0) {
      return false;
    }
    std::string_view path(w.paths + used, e.path_len);
    if (path.find('\0') != std::string_view::npos) return false;
    for (const TapModule& m : *out) {
      if (m.path == path) return false;
    }
    TapModule m;
    m.path.assign(path);
    for (size_t k = 0; k < e.build_id_len; ++k) {
      m.build_id.push_back(kHex[e.build_id[k] >> 4]);
      m.build_id.push_back(kHex[e.build_id[k] & 15]);
    }
    used += e.path_len;
    out->push_back(std::move(m));
  }
  return true;
}

// Lower-case hex to bytes; false if `hex` is not that or too long.
bool HexBytes(std::string_view hex, uint8_t (&out)[kTapBuildIdMax], size_t* n) {
  if (hex.size() % 2 != 0 || hex.size() / 2 > kTapBuildIdMax) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i / 2] = static_cast<uint8_t>(hi << 4 | lo);
  }
  *n = hex.size() / 2;
  return true;
}

// Encodes as much of `chain` as fits, the way the tap truncates; a build id
// that is not hex is left out.
void PutWireChain(const std::vector<TapModule>& chain, TapWireChain* w) {
  for (const TapModule& m : chain) {
    uint8_t id[kTapBuildIdMax];
    size_t id_len = 0;
    if (!HexBytes(m.build_id, id, &id_len)) id_len = 0;
    if (!AppendTapChain(w, m.path.data(), m.path.size(), id, id_len)) break;
  }
}

template <typename T>
std::string AsBytes(const T& pod) {
  return std::string(reinterpret_cast<const char*>(&pod), sizeof(pod));
}

absl::StatusOr<TapMessage> DecodeHello(std::string_view bytes) {
  if (bytes.size() != sizeof(TapWireHello)) return Bad("hello has wrong size");
  TapWireHello w;
  memcpy(&w, bytes.data(), sizeof(w));
  TapHello h;
  h.pid = w.pid;
  h.ppid = w.ppid;
  h.want_patterns = (w.flags & kTapHelloWantPatterns) != 0;
  h.has_ring = (w.flags & kTapHelloRing) != 0;
  std::string scenarios, consents, run_id;
  if (!WireString(w.exe, w.exe_len, &h.exe) ||
      !WireString(w.scenarios, w.scenarios_len, &scenarios) ||
      !WireString(w.consents, w.consents_len, &consents) ||
      !WireString(w.run_id, w.run_id_len, &run_id)) {
    return Bad("hello string length out of range");
  }
  h.scenarios = ParseScenarios(scenarios);
  h.consents = ParseConsents(consents);
  // An invalid run id is dropped, not refused: the process is still observed.
  if (IsValidRunId(run_id)) h.run_id = std::move(run_id);
  return TapMessage{std::move(h)};
}

absl::StatusOr<TapMessage> DecodeEvent(std::string_view bytes) {
  if (bytes.size() != sizeof(TapWireEvent)) return Bad("event has wrong size");
  TapWireEvent w;
  memcpy(&w, bytes.data(), sizeof(w));
  TapEvent e;
  e.timestamp_ms = w.timestamp_ms;
  e.pid = w.pid;
  e.tid = w.tid;
  e.pattern_id = w.pattern_id;
  e.offset = w.offset;
  switch (w.action) {
    case kTapActionTransmit:
      e.action = TapAction::kTransmit;
      break;
    case kTapActionAcquire:
      e.action = TapAction::kAcquire;
      break;
    default:
      return Bad("event has unknown action");
  }
  if (w.channel > kTapChannelLast) return Bad("event has unknown channel");
  e.channel = static_cast<TapChannel>(w.channel);
  if (!WireAddress(w.family, w.addr, &e.address)) return Bad("event has unknown address family");
  e.family = w.family;
  e.port = w.port;
  if (!WireString(w.host, w.host_len, &e.hostname) ||
      !WireString(w.context, w.context_len, &e.context) ||
      !WireString(w.peer, w.peer_len, &e.peer_exe)) {
    return Bad("event string length out of range");
  }
  if (!WireChain(w.chain, &e.call_chain)) return Bad("event call chain malformed");
  e.split = (w.flags & kTapEventSplit) != 0;
  if (w.context_offset > e.context.size()) return Bad("event context offset out of range");
  e.context_offset = w.context_offset;
  return TapMessage{std::move(e)};
}

absl::StatusOr<TapMessage> DecodeStats(std::string_view bytes) {
  if (bytes.size() != sizeof(TapWireStats)) return Bad("stats has wrong size");
  TapWireStats w;
  memcpy(&w, bytes.data(), sizeof(w));
  TapStats s;
  s.pid = w.pid;
  s.events_sent = w.events_sent;
  s.events_dropped = w.events_dropped;
  s.scan_cap_hits = w.scan_cap_hits;
  s.calls_scanned = w.calls_scanned;
  s.bytes_scanned = w.bytes_scanned;
  s.split_matches = w.split_matches;
  s.stream_fallbacks = w.stream_fallbacks;
  s.acquisitions = w.acquisitions;
  s.cookies = w.cookies;
  return TapMessage{s};
}

absl::StatusOr<TapMessage> DecodeCookie(std::string_view bytes) {
  if (bytes.size() != sizeof(TapWireCookie)) return Bad("cookie has wrong size");
  TapWireCookie w;
  memcpy(&w, bytes.data(), sizeof(w));
  TapCookie c;
  c.timestamp_ms = w.timestamp_ms;
  c.pid = w.pid;
  c.tid = w.tid;
  if (w.direction != kTapCookieOut && w.direction != kTapCookieIn) {
    return Bad("cookie has unknown direction");
  }
  c.outgoing = w.direction == kTapCookieOut;
  if (w.channel > kTapChannelLast) return Bad("cookie has unknown channel");
  c.channel = static_cast<TapChannel>(w.channel);
  if (!WireAddress(w.family, w.addr, &c.address)) return Bad("cookie has unknown address family");
  c.family = w.family;
  c.port = w.port;
  if (!WireString(w.host, w.host_len, &c.hostname) || !WireString(w.name, w.name_len, &c.name) ||
      c.name.empty() || w.domain_len > kTapCookieDomainMax ||
      !WireString(w.domain, w.domain_len, &c.domain)) {
    return Bad("cookie string length out of range");
  }
  // Domain is a Set-Cookie attribute; a request's Cookie header has none.
  if (c.outgoing && !c.domain.empty()) return Bad("cookie domain on a request cookie");
  if (!WireChain(w.chain, &c.call_chain)) return Bad("cookie call chain malformed");
  c.session = (w.flags & kTapCookieSession) != 0;
  c.has_max_age = (w.flags & kTapCookieHasMaxAge) != 0;
  c.max_age_seconds = c.has_max_age ? w.max_age_seconds : 0;
  return TapMessage{std::move(c)};
}

absl::StatusOr<TapMessage> DecodePatterns(std::string_view bytes) {
  if (bytes.size() < sizeof(TapWirePatternsChunk)) return Bad("patterns chunk too short");
  TapWirePatternsChunk w;
  memcpy(&w, bytes.data(), sizeof(w));
  std::string_view payload = bytes.substr(sizeof(w));
  if (w.chunk_bytes != payload.size() || w.chunk_bytes > kTapPatternChunkBytes) {
    return Bad("patterns chunk size mismatch");
  }
  if (w.total_bytes > kTapMaxDatabaseBytes || w.offset > w.total_bytes ||
      w.chunk_bytes > w.total_bytes - w.offset) {
    return Bad("patterns chunk out of range");
  }
  TapPatternsChunk c;
  c.generation = w.generation;
  c.total_bytes = w.total_bytes;
  c.offset = w.offset;
  c.pattern_count = w.pattern_count;
  c.data.assign(payload);
  return TapMessage{std::move(c)};
}

}  // namespace

std::string_view ActionName(TapAction a) {
  return a == TapAction::kAcquire ? "acquire" : "transmit";
}

std::string_view ChannelName(TapChannel c) {
  switch (c) {
    case TapChannel::kTcp:
      return "tcp";
    case TapChannel::kUdp:
      return "udp";
    case TapChannel::kUnix:
      return "unix";
    case TapChannel::kTlsOpenssl:
      return "tls-openssl";
    case TapChannel::kTlsGnutls:
      return "tls-gnutls";
    case TapChannel::kSysfs:
      return "sysfs";
    case TapChannel::kIoctl:
      return "ioctl";
    case TapChannel::kGetifaddrs:
      return "getifaddrs";
    case TapChannel::kTlsUprobeOpenssl:
      return "tls-uprobe-openssl";
    case TapChannel::kTlsUprobeGo:
      return "tls-uprobe-go";
    case TapChannel::kOther:
      break;
  }
  return "other";
}

absl::StatusOr<TapMessage> DecodeTapMessage(std::string_view bytes) {
  if (bytes.size() < sizeof(TapWireHeader)) return Bad("shorter than header");
  if (bytes.size() > kTapMaxMessageBytes) return Bad("longer than the maximum message");
  TapWireHeader h;
  memcpy(&h, bytes.data(), sizeof(h));
  if (h.magic != kTapMagic) return Bad("bad magic");
  if (h.version != kTapVersion) return Bad(absl::StrCat("unsupported version ", h.version));
  if (h.length != bytes.size()) return Bad("length field does not match datagram");
  switch (h.type) {
    case kTapMsgHello:
      return DecodeHello(bytes);
    case kTapMsgEvent:
      return DecodeEvent(bytes);
    case kTapMsgStats:
      return DecodeStats(bytes);
    case kTapMsgPatterns:
      return DecodePatterns(bytes);
    case kTapMsgCookie:
      return DecodeCookie(bytes);
    default:
      return Bad(absl::StrCat("unknown type ", h.type));
  }
}

std::vector<std::string> ParseScenarios(std::string_view raw) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(absl::string_view(raw.data(), raw.size()), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

bool IsValidRunId(std::string_view id) {
  if (id.empty() || id.size() > kTapRunIdMax) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
           c == '-';
  });
}

std::map<std::string, bool> ParseConsents(std::string_view raw) {
  std::map<std::string, bool> out;
  for (absl::string_view part : absl::StrSplit(absl::string_view(raw.data(), raw.size()), ',')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, '=');
    absl::string_view key = absl::StripAsciiWhitespace(kv.first);
    std::string value = absl::AsciiStrToLower(absl::StripAsciiWhitespace(kv.second));
    if (key.empty()) continue;
    if (value == "true" || value == "1" || value == "yes") {
      out[std::string(key)] = true;
    } else if (value == "false" || value == "0" || value == "no") {
      out[std::string(key)] = false;
    }
  }
  return out;
}

std::string EncodeHello(const TapHello& hello, std::string_view raw_scenarios,
                        std::string_view raw_consents) {
  TapWireHello w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgHello, sizeof(w));
  w.pid = hello.pid;
  w.ppid = hello.ppid;
  w.flags =
      (hello.want_patterns ? kTapHelloWantPatterns : 0) | (hello.has_ring ? kTapHelloRing : 0);
  w.exe_len = PutWireString(w.exe, hello.exe);
  w.scenarios_len = PutWireString(w.scenarios, raw_scenarios);
  w.consents_len = PutWireString(w.consents, raw_consents);
  w.run_id_len = PutWireString(w.run_id, hello.run_id);
  return AsBytes(w);
}

std::string EncodeEvent(const TapEvent& e) {
  TapWireEvent w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgEvent, sizeof(w));
  w.timestamp_ms = e.timestamp_ms;
  w.offset = e.offset;
  w.pid = e.pid;
  w.tid = e.tid;
  w.pattern_id = e.pattern_id;
  w.action = e.action == TapAction::kAcquire ? kTapActionAcquire : kTapActionTransmit;
  w.channel = static_cast<uint8_t>(e.channel);
  w.family = PutWireAddress(e.address, e.family, w.addr);
  w.port = e.port;
  w.host_len = PutWireString(w.host, e.hostname);
  PutWireChain(e.call_chain, &w.chain);
  w.context_len = PutWireString(w.context, e.context);
  w.context_offset = std::min<uint32_t>(e.context_offset, w.context_len);
  w.peer_len = PutWireString(w.peer, e.peer_exe);
  w.flags = e.split ? kTapEventSplit : 0;
  return AsBytes(w);
}

std::string EncodeStats(const TapStats& s) {
  TapWireStats w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgStats, sizeof(w));
  w.pid = s.pid;
  w.events_sent = s.events_sent;
  w.events_dropped = s.events_dropped;
  w.scan_cap_hits = s.scan_cap_hits;
  w.calls_scanned = s.calls_scanned;
  w.bytes_scanned = s.bytes_scanned;
  w.split_matches = s.split_matches;
  w.stream_fallbacks = s.stream_fallbacks;
  w.acquisitions = s.acquisitions;
  w.cookies = s.cookies;
  return AsBytes(w);
}

std::string EncodeCookie(const TapCookie& c) {
  TapWireCookie w;
  memset(&w, 0, sizeof(w));
  FillTapHeader(&w.header, kTapMsgCookie, sizeof(w));
  w.timestamp_ms = c.timestamp_ms;
  w.pid = c.pid;
  w.tid = c.tid;
  w.direction = c.outgoing ? kTapCookieOut : kTapCookieIn;
  w.channel = static_cast<uint8_t>(c.channel);
  w.family = PutWireAddress(c.address, c.family, w.addr);
  w.port = c.port;
  w.host_len = PutWireString(w.host, c.hostname);
  w.name_len = PutWireString(w.name, c.name);
  if (!c.outgoing) {
    w.domain_len = PutWireString(w.domain, std::string_view(c.domain).substr(
                                               0, std::min(c.domain.size(), kTapCookieDomainMax)));
  }
  PutWireChain(c.call_chain, &w.chain);
  w.flags = static_cast<uint8_t>((c.session ? kTapCookieSession : 0) |
                                 (c.has_max_age ? kTapCookieHasMaxAge : 0));
  w.max_age_seconds = c.has_max_age ? c.max_age_seconds : 0;
  return AsBytes(w);
}

std::vector<std::string> EncodePatterns(std::string_view db, uint32_t generation,
                                        uint32_t pattern_count) {
  std::vector<std::string> out;
  size_t offset = 0;
  do {
    size_t n = std::min(kTapPatternChunkBytes, db.size() - offset);
    TapWirePatternsChunk w;
    memset(&w, 0, sizeof(w));
    FillTapHeader(&w.header, kTapMsgPatterns, static_cast<uint32_t>(sizeof(w) + n));
    w.generation = generation;
    w.total_bytes = static_cast<uint32_t>(db.size());
    w.offset = static_cast<uint32_t>(offset);
    w.chunk_bytes = static_cast<uint32_t>(n);
    w.pattern_count = pattern_count;
    std::string msg = AsBytes(w);
    msg.append(db.substr(offset, n));
    out.push_back(std::move(msg));
    offset += n;
  } while (offset < db.size());
  return out;
}

}  // namespace idflow::agent

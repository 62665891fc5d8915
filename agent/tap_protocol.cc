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

// Copies a (len, array) wire string after checking len against the array.
template <size_t N>
bool WireString(const char (&arr)[N], uint16_t len, std::string* out) {
  if (len > N) return false;
  out->assign(arr, len);
  return true;
}

template <size_t N>
uint16_t PutWireString(char (&arr)[N], std::string_view s) {
  size_t n = std::min(N, s.size());
  memcpy(arr, s.data(), n);
  return static_cast<uint16_t>(n);
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
  std::string scenarios, consents;
  if (!WireString(w.exe, w.exe_len, &h.exe) ||
      !WireString(w.scenarios, w.scenarios_len, &scenarios) ||
      !WireString(w.consents, w.consents_len, &consents)) {
    return Bad("hello string length out of range");
  }
  h.scenarios = ParseScenarios(scenarios);
  h.consents = ParseConsents(consents);
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
  switch (w.channel) {
    case kTapChannelOther:
      e.channel = TapChannel::kOther;
      break;
    case kTapChannelTcp:
      e.channel = TapChannel::kTcp;
      break;
    case kTapChannelUdp:
      e.channel = TapChannel::kUdp;
      break;
    case kTapChannelUnix:
      e.channel = TapChannel::kUnix;
      break;
    default:
      return Bad("event has unknown channel");
  }
  char text[INET6_ADDRSTRLEN] = {};
  switch (w.family) {
    case kTapFamilyNone:
    case kTapFamilyUnix:
      break;
    case kTapFamilyInet:
      inet_ntop(AF_INET, w.addr, text, sizeof(text));
      e.address = text;
      break;
    case kTapFamilyInet6:
      inet_ntop(AF_INET6, w.addr, text, sizeof(text));
      e.address = text;
      break;
    default:
      return Bad("event has unknown address family");
  }
  e.family = w.family;
  e.port = w.port;
  if (!WireString(w.host, w.host_len, &e.hostname) ||
      !WireString(w.module, w.module_len, &e.module) ||
      !WireString(w.context, w.context_len, &e.context)) {
    return Bad("event string length out of range");
  }
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
  return TapMessage{s};
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
  w.flags = hello.want_patterns ? kTapHelloWantPatterns : 0;
  w.exe_len = PutWireString(w.exe, hello.exe);
  w.scenarios_len = PutWireString(w.scenarios, raw_scenarios);
  w.consents_len = PutWireString(w.consents, raw_consents);
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
  switch (e.channel) {
    case TapChannel::kTcp:
      w.channel = kTapChannelTcp;
      break;
    case TapChannel::kUdp:
      w.channel = kTapChannelUdp;
      break;
    case TapChannel::kUnix:
      w.channel = kTapChannelUnix;
      break;
    case TapChannel::kOther:
      w.channel = kTapChannelOther;
      break;
  }
  std::string addr(e.address);
  if (inet_pton(AF_INET, addr.c_str(), w.addr) == 1) {
    w.family = kTapFamilyInet;
  } else if (inet_pton(AF_INET6, addr.c_str(), w.addr) == 1) {
    w.family = kTapFamilyInet6;
  } else {
    w.family = e.family == kTapFamilyUnix ? kTapFamilyUnix : kTapFamilyNone;
  }
  w.port = e.port;
  w.host_len = PutWireString(w.host, e.hostname);
  w.module_len = PutWireString(w.module, e.module);
  w.context_len = PutWireString(w.context, e.context);
  w.context_offset = std::min<uint32_t>(e.context_offset, w.context_len);
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

#include "agent/uprobe/tls_write.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "agent/tap/sniff/http1.h"
#include "agent/uprobe/tls_event.h"

namespace idflow::agent {
namespace {

absl::Status Bad(std::string_view why) {
  return absl::InvalidArgumentError(std::string("TLS probe record: ") + std::string(why));
}

}  // namespace

absl::StatusOr<TlsWrite> ParseTlsRecord(std::string_view record) {
  static_assert(offsetof(idflow_tls_event, data) == IDFLOW_TLS_EVENT_HEADER_BYTES);
  if (record.size() < IDFLOW_TLS_EVENT_HEADER_BYTES) return Bad("shorter than its header");
  if (record.size() > sizeof(idflow_tls_event)) return Bad("longer than a record");
  idflow_tls_event h;
  memcpy(&h, record.data(), IDFLOW_TLS_EVENT_HEADER_BYTES);
  TlsWrite w;
  switch (h.source) {
    case IDFLOW_TLS_SOURCE_OPENSSL:
    case IDFLOW_TLS_SOURCE_OPENSSL_EX:
      w.kind = TlsProbeKind::kOpenssl;
      break;
    case IDFLOW_TLS_SOURCE_GO:
      w.kind = TlsProbeKind::kGo;
      break;
    default:
      return Bad("unknown source");
  }
  if (h.data_len == 0 || h.data_len > IDFLOW_TLS_DATA_MAX || h.data_len > h.len ||
      record.size() != IDFLOW_TLS_EVENT_HEADER_BYTES + h.data_len) {
    return Bad("bad data length");
  }
  if (h.frame_bytes % sizeof(uint64_t) != 0 || h.frame_bytes > sizeof(h.frames)) {
    return Bad("bad frame bytes");
  }
  w.tgid = h.tgid;
  w.tid = h.tid;
  w.len = h.len;
  w.data = record.substr(IDFLOW_TLS_EVENT_HEADER_BYTES, h.data_len);
  w.return_address = h.ret_addr;
  w.cookie = h.cookie;
  if (h.frame_bytes >= sizeof(uint64_t)) w.ip = h.frames[0];
  // frames[0] is the probed function itself; frame-pointer walks from its
  // first instruction skip its caller, which the return address supplies.
  const size_t n = h.frame_bytes / sizeof(uint64_t);
  for (size_t i = 1; i < n; ++i) {
    if (h.frames[i] != 0) w.frames.push_back(h.frames[i]);
  }
  return w;
}

TapChannel TlsProbeChannel(TlsProbeKind kind) {
  return kind == TlsProbeKind::kGo ? TapChannel::kTlsUprobeGo : TapChannel::kTlsUprobeOpenssl;
}

TapRingModule ProbedModule(std::string_view path, uint64_t lo_vaddr, uint64_t hi_vaddr,
                           uint64_t symbol_vaddr, uint64_t ip) {
  TapRingModule m;
  memset(&m, 0, sizeof(m));
  if (path.empty() || path.size() > kTapModuleMax || hi_vaddr <= lo_vaddr || ip < symbol_vaddr ||
      symbol_vaddr < lo_vaddr || symbol_vaddr >= hi_vaddr) {
    return m;
  }
  const uint64_t bias = ip - symbol_vaddr;
  if ((bias & 0xfff) > 1) return m;  // not this symbol: a load bias is page-aligned
  const uint64_t base = bias & ~uint64_t{0xfff};
  if (base + lo_vaddr < base || base + hi_vaddr < base) return m;  // wraps
  m.lo = base + lo_vaddr;
  m.hi = base + hi_vaddr;
  m.path_len = static_cast<uint16_t>(path.size());
  memcpy(m.path, path.data(), path.size());
  return m;
}

std::vector<TapRingModule> ModulesFromMaps(std::string_view maps_in) {
  std::vector<TapRingModule> out;
  const absl::string_view maps(maps_in.data(), maps_in.size());
  for (absl::string_view line : absl::StrSplit(maps, '\n')) {
    // "lo-hi perms offset dev inode   path"
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::MaxSplits(' ', 5), absl::SkipEmpty());
    if (f.size() < 6) continue;
    absl::string_view path = f[5];
    while (!path.empty() && path.front() == ' ') path.remove_prefix(1);
    if (path.empty() || path.front() != '/') continue;  // anonymous, [vdso], [heap]...
    absl::ConsumeSuffix(&path, " (deleted)");
    if (path.size() > kTapModuleMax) continue;
    const size_t dash = f[0].find('-');
    uint64_t lo = 0, hi = 0;
    if (dash == absl::string_view::npos || !absl::SimpleHexAtoi(f[0].substr(0, dash), &lo) ||
        !absl::SimpleHexAtoi(f[0].substr(dash + 1), &hi) || hi <= lo) {
      continue;
    }
    TapRingModule* m = nullptr;
    for (TapRingModule& e : out) {
      if (e.path_len == path.size() && memcmp(e.path, path.data(), path.size()) == 0) m = &e;
    }
    if (m != nullptr) {
      m->lo = std::min(m->lo, lo);
      m->hi = std::max(m->hi, hi);
      continue;
    }
    if (out.size() >= kTapRingModules) continue;
    TapRingModule e;
    memset(&e, 0, sizeof(e));
    e.lo = lo;
    e.hi = hi;
    e.path_len = static_cast<uint16_t>(path.size());
    memcpy(e.path, path.data(), path.size());
    const absl::string_view base = path.substr(path.rfind('/') + 1);
    if (absl::StartsWith(base, "libidflow-tap.so")) e.flags = kTapModuleIsTap;
    out.push_back(e);
  }
  return out;
}

std::string TlsPayloadRecord(const TlsWrite& write, uint64_t timestamp_ms) {
  TapWirePayload p;
  memset(&p, 0, sizeof(p));
  const size_t n = std::min(write.data.size(), kTapPayloadChunkMax);
  FillTapHeader(&p.header, kTapMsgPayload, static_cast<uint32_t>(sizeof(p) + n));
  p.timestamp_ms = timestamp_ms;
  p.pid = write.tgid;
  p.tid = write.tid;
  p.fd = -1;
  p.channel = kTapChannelTlsOpenssl;  // the matcher's TLS; the source renames it
  p.family = kTapFamilyNone;
  p.caller = write.return_address;
  size_t frames = 0;
  if (write.return_address != 0) p.frames[frames++] = write.return_address - 1;
  for (uint64_t f : write.frames) {
    if (frames == kTapFramesMax) break;
    if (f != 0) p.frames[frames++] = f - 1;
  }
  p.frame_count = static_cast<uint8_t>(frames);
  p.data_len = static_cast<uint32_t>(n);
  p.host_len = static_cast<uint16_t>(
      tap::HttpHost(write.data.data(), write.data.size(), p.host, sizeof(p.host)));
  std::string record(reinterpret_cast<const char*>(&p), sizeof(p));
  record.append(write.data.data(), n);
  return record;
}

}  // namespace idflow::agent

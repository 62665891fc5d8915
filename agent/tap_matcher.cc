#include "agent/tap_matcher.h"

#include <hs/hs.h>

#include <cstring>

#include "agent/tap/attribution/call_chain.h"
#include "agent/tap/observe/scan.h"

namespace idflow::agent {
namespace {

absl::Status Bad(std::string_view why) {
  return absl::InvalidArgumentError(std::string("tap payload: ") + std::string(why));
}

struct Table {
  const TapRingModule* modules;
  uint32_t count;
  uint64_t generation;
};

// The entry loaded at `generation` that holds `pc`; failing that, the first
// one loaded after it (an object a record saw before the table caught up).
int FindModule(const Table& t, uint64_t pc) {
  int later = -1;
  for (uint32_t i = 0; i < t.count; ++i) {
    const TapRingModule& m = t.modules[i];
    const uint64_t lo = __atomic_load_n(&m.lo, __ATOMIC_RELAXED);
    const uint64_t hi = __atomic_load_n(&m.hi, __ATOMIC_RELAXED);
    if (pc < lo || pc >= hi) continue;
    const uint64_t loaded = __atomic_load_n(&m.loaded_gen, __ATOMIC_RELAXED);
    const uint64_t unloaded = __atomic_load_n(&m.unloaded_gen, __ATOMIC_RELAXED);
    if (loaded <= t.generation && (unloaded == 0 || unloaded > t.generation)) {
      return static_cast<int>(i);
    }
    if (loaded > t.generation && later < 0) later = static_cast<int>(i);
  }
  return later;
}

// ChainModule::base is the entry index + 1 (unique per entry); the tap's
// own entries map to base 0, which BuildCallChain excludes.
bool Lookup(void* ctx, uintptr_t pc, tap::ChainModule* out) {
  const Table& t = *static_cast<const Table*>(ctx);
  const int i = FindModule(t, pc);
  if (i < 0) return false;
  const uint8_t flags = __atomic_load_n(&t.modules[i].flags, __ATOMIC_RELAXED);
  out->base = (flags & kTapModuleIsTap) != 0 ? 0 : static_cast<uintptr_t>(i) + 1;
  out->name = nullptr;
  return true;
}

}  // namespace

void ResolveTapChain(const uint64_t* frames, size_t count, uint64_t caller, uint64_t generation,
                     const TapRingModule* modules, uint32_t module_count, TapWireChain* chain) {
  Table t{modules, module_count < kTapRingModules ? module_count : kTapRingModules, generation};
  uintptr_t pcs[kTapFramesMax];
  count = count < kTapFramesMax ? count : kTapFramesMax;
  for (size_t i = 0; i < count; ++i) pcs[i] = frames[i];
  tap::ChainModule mods[kTapChainMax];
  size_t n = tap::BuildCallChain(pcs, count, Lookup, &t, /*exclude_base=*/0, mods, kTapChainMax);
  if (n == 0 && caller != 0) {  // no unwind information: at least the direct caller
    uintptr_t pc = caller - 1;
    n = tap::BuildCallChain(&pc, 1, Lookup, &t, 0, mods, kTapChainMax);
  }
  for (size_t i = 0; i < n; ++i) {
    TapRingModule m;  // private copy: the app may write the table meanwhile
    memcpy(&m, &modules[mods[i].base - 1], sizeof(m));
    if (m.path_len == 0 || m.path_len > kTapModuleMax) continue;
    const size_t id_len = m.build_id_len <= kTapBuildIdMax ? m.build_id_len : 0;
    // Each path once (an object loaded twice, e.g. in two namespaces, has
    // two entries): a chain lists modules, and the decoder holds it to that.
    bool seen = false;
    for (size_t k = 0, at = 0; k < chain->count && !seen; at += chain->entries[k++].path_len) {
      seen = chain->entries[k].path_len == m.path_len &&
             memcmp(chain->paths + at, m.path, m.path_len) == 0;
    }
    if (seen) continue;
    if (!AppendTapChain(chain, m.path, m.path_len, m.build_id, id_len))
      break;  // keep the inner part
  }
}

TapPayloadMatcher::~TapPayloadMatcher() {
  if (scratch_ != nullptr) hs_free_scratch(scratch_);
}

absl::Status TapPayloadMatcher::Match(std::string_view record,
                                      const std::shared_ptr<const PatternDb>& db,
                                      const TapRingModule* modules, uint32_t module_count,
                                      std::vector<std::string>* events) {
  TapWirePayload p;
  if (record.size() < sizeof(p)) return Bad("too short");
  memcpy(&p, record.data(), sizeof(p));
  if (p.header.magic != kTapMagic || p.header.version != kTapVersion ||
      p.header.type != kTapMsgPayload || p.header.length != record.size()) {
    return Bad("bad header");
  }
  if (p.carry_len > tap::kCarryMax || p.data_len == 0 || p.data_len > kTapPayloadChunkMax ||
      sizeof(p) + p.carry_len + p.data_len != record.size()) {
    return Bad("bad lengths");
  }
  if (p.frame_count > kTapFramesMax || p.host_len > kTapHostMax || p.peer_len > kTapPeerMax ||
      p.channel > kTapChannelLast ||
      (p.family != kTapFamilyNone && p.family != kTapFamilyInet && p.family != kTapFamilyInet6 &&
       p.family != kTapFamilyUnix) ||
      ((p.flags & kTapPayloadAcquire) != 0 && (p.carry_len != 0 || p.family != kTapFamilyNone))) {
    return Bad("field out of range");
  }
  if (db == nullptr || db->size() == 0 || db->database() == nullptr) return absl::OkStatus();
  if (db_ != db || scratch_ == nullptr) {
    if (hs_alloc_scratch(db->database(), &scratch_) != HS_SUCCESS) {
      return absl::ResourceExhaustedError("tap payload: no Vectorscan scratch");
    }
    db_ = db;
  }
  const char* carry = record.data() + sizeof(p);
  const char* data = carry + p.carry_len;
  tap::CallMatches m;
  tap::ScanCall(db->database(), scratch_, carry, p.carry_len, data, p.data_len, &m);
  if (m.total() == 0) return absl::OkStatus();

  // What the tap's FillCommon() put in every event of the call.
  TapWireEvent ev;
  memset(&ev, 0, sizeof(ev));
  FillTapHeader(&ev.header, kTapMsgEvent, sizeof(ev));
  ev.timestamp_ms = p.timestamp_ms;
  ev.pid = p.pid;
  ev.tid = p.tid;
  const bool acquire = (p.flags & kTapPayloadAcquire) != 0;
  ev.action = acquire ? kTapActionAcquire : kTapActionTransmit;
  ev.channel = p.channel;
  ev.family = p.family;
  memcpy(ev.addr, p.addr, sizeof(ev.addr));
  ev.port = p.port;
  ev.host_len = p.host_len;
  memcpy(ev.host, p.host, p.host_len);
  ev.peer_len = p.peer_len;
  memcpy(ev.peer, p.peer, p.peer_len);
  ResolveTapChain(p.frames, p.frame_count, p.caller, p.module_generation, modules, module_count,
                  &ev.chain);
  const bool continued = (p.flags & kTapPayloadContinued) != 0;
  auto emit = [&](const char* buf, size_t n, uint32_t id, uint64_t from, uint64_t to,
                  uint64_t offset, bool split) {
    tap::SetEventMatch(&ev, buf, n, id, from, to, offset, split);
    events->emplace_back(reinterpret_cast<const char*>(&ev), sizeof(ev));
  };
  // A match across the carry of a continued record lies inside one call:
  // not split, and its offset is the call's.
  for (int i = 0; i < m.split.count; ++i) {
    const uint64_t offset = continued ? p.call_offset + m.split.from[i] - m.boundary : 0;
    emit(m.joint, m.joint_len, m.split.id[i], m.split.from[i], m.split.to[i], offset, !continued);
  }
  for (int i = 0; i < m.joint_main.count; ++i) {
    emit(m.joint, m.joint_len, m.joint_main.id[i], m.joint_main.from[i], m.joint_main.to[i],
         p.call_offset + m.joint_main.from[i] - m.boundary, false);
  }
  for (int i = 0; i < m.main.count; ++i) {
    emit(data, p.data_len, m.main.id[i], m.main.from[i], m.main.to[i],
         p.call_offset + m.main.from[i], false);
  }
  return absl::OkStatus();
}

}  // namespace idflow::agent

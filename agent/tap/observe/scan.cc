#include "agent/tap/observe/scan.h"

#include <string.h>

namespace idflow::tap {
namespace {

struct JointScan {
  CallMatches* out;
  bool want_main;  // the joint buffer holds all the new bytes
};

// Matches that end inside the carry were reported with the previous call;
// those that straddle the boundary are split matches.
int OnJointMatch(unsigned int id, unsigned long long from, unsigned long long to, unsigned int,
                 void* ctx) {
  auto* j = static_cast<JointScan*>(ctx);
  const size_t boundary = j->out->boundary;
  if (to <= boundary) return 0;
  if (from < boundary) {
    AddMatch(&j->out->split, id, from, to);
  } else if (j->want_main) {
    AddMatch(&j->out->joint_main, id, from, to);
  }
  return 0;
}

}  // namespace

void ScanCall(const hs_database_t* db, hs_scratch_t* scratch, const char* carry, size_t carry_len,
              const char* data, size_t n, CallMatches* out) {
  out->joint_len = 0;
  out->boundary = 0;
  out->split.count = 0;
  out->joint_main.count = 0;
  out->main.count = 0;
  if (carry_len > kCarryMax) carry_len = kCarryMax;
  bool main_in_joint = false;
  if (carry_len > 0) {
    const size_t take = n < kCarryMax ? n : kCarryMax;
    memcpy(out->joint, carry, carry_len);
    memcpy(out->joint + carry_len, data, take);
    out->joint_len = carry_len + take;
    out->boundary = carry_len;
    JointScan j{out, take == n};
    main_in_joint = j.want_main;
    hs_scan(db, out->joint, static_cast<unsigned int>(out->joint_len), 0, scratch, OnJointMatch,
            &j);
  }
  if (!main_in_joint && n > 0) {
    hs_scan(db, data, static_cast<unsigned int>(n), 0, scratch, OnMatch, &out->main);
  }
}

size_t NextCarry(char* carry, size_t carry_len, const char* data, size_t n) {
  if (n >= kCarryMax) {
    memcpy(carry, data + n - kCarryMax, kCarryMax);
    return kCarryMax;
  }
  const size_t keep_old = carry_len + n > kCarryMax ? kCarryMax - n : carry_len;
  memmove(carry, carry + carry_len - keep_old, keep_old);
  memcpy(carry + keep_old, data, n);
  return keep_old + n;
}

void SetEventMatch(agent::TapWireEvent* ev, const char* buf, uint64_t n, uint32_t id, uint64_t from,
                   uint64_t to, uint64_t offset, bool split) {
  constexpr uint64_t kMax = agent::kTapContextMax;
  const uint64_t len = to - from;
  uint64_t start = 0;
  if (len < kMax) {  // centred on the match, clamped to the buffer
    const uint64_t pad = (kMax - len) / 2;
    start = from > pad ? from - pad : 0;
    if (start + kMax > n) start = n > kMax ? n - kMax : 0;
  } else {
    start = from;
  }
  const uint64_t ctx_len = n - start < kMax ? n - start : kMax;
  memcpy(ev->context, buf + start, ctx_len);
  memset(ev->context + ctx_len, 0, kMax - ctx_len);
  ev->context_len = static_cast<uint16_t>(ctx_len);
  ev->context_offset = static_cast<uint32_t>(from - start);
  ev->pattern_id = id;
  ev->offset = offset;
  ev->flags = split ? agent::kTapEventSplit : 0;
}

}  // namespace idflow::tap

#include "agent/drop_counters.h"

#include <zlib.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/log.h"

namespace idflow::agent {
namespace {

using idflow::v1::DropCause;
using idflow::v1::DropCounters;

// Name in the file, cause, and the DropCounters field of each cause.
struct CauseField {
  const char* name;
  DropCause cause;
  uint64_t (DropCounters::*get)() const;
  void (DropCounters::*set)(uint64_t);
};
constexpr CauseField kCauses[] = {
    {"tap", idflow::v1::DROP_CAUSE_TAP, &DropCounters::tap_dropped, &DropCounters::set_tap_dropped},
    {"ingress", idflow::v1::DROP_CAUSE_INGRESS, &DropCounters::ingress_rejected,
     &DropCounters::set_ingress_rejected},
    {"spool", idflow::v1::DROP_CAUSE_SPOOL, &DropCounters::spool_dropped,
     &DropCounters::set_spool_dropped},
    {"disk", idflow::v1::DROP_CAUSE_DISK, &DropCounters::disk_dropped,
     &DropCounters::set_disk_dropped},
    {"dead_letter", idflow::v1::DROP_CAUSE_DEAD_LETTER, &DropCounters::dead_lettered,
     &DropCounters::set_dead_lettered},
};

const CauseField* FieldOf(DropCause cause) {
  for (const auto& f : kCauses) {
    if (f.cause == cause) return &f;
  }
  return nullptr;
}

uint32_t Crc(absl::string_view s) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

// "ring:" + hex id: two fields, so that an older agent's decoder ignores it
// as an unknown cause instead of refusing the file.
constexpr absl::string_view kRingPrefix = "ring:";

}  // namespace

std::string DropCounterStore::Encode(const DropCounters& c, const RingMarks& marks) {
  std::string body;
  for (const auto& k : kCauses) absl::StrAppend(&body, k.name, " ", (c.*k.get)(), "\n");
  for (const auto& [id, upto] : marks) {
    absl::StrAppend(&body, kRingPrefix, absl::Hex(id), " ", upto, "\n");
  }
  return absl::StrCat(body, "crc ", Crc(body), "\n");
}

absl::StatusOr<DropCounters> DropCounterStore::Decode(const std::string& text, RingMarks* marks) {
  size_t crc_at = text.rfind("crc ");
  if (crc_at == std::string::npos) return absl::DataLossError("no crc line");
  absl::string_view body(text.data(), crc_at);
  uint32_t crc = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(text).substr(crc_at + 4)),
                        &crc) ||
      crc != Crc(body)) {
    return absl::DataLossError("crc mismatch");
  }
  DropCounters out;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ');
    uint64_t v = 0;
    if (kv.size() != 2 || !absl::SimpleAtoi(kv[1], &v)) {
      return absl::DataLossError(absl::StrCat("bad line: ", line));
    }
    if (absl::StartsWith(kv[0], kRingPrefix)) {
      uint64_t id = 0;
      if (!absl::SimpleHexAtoi(kv[0].substr(kRingPrefix.size()), &id)) {
        return absl::DataLossError(absl::StrCat("bad line: ", line));
      }
      if (marks != nullptr) (*marks)[id] = v;
      continue;
    }
    for (const auto& k : kCauses) {
      if (kv[0] == k.name) (out.*k.set)(v);
    }  // unknown causes from a newer agent are ignored
  }
  return out;
}

absl::StatusOr<std::unique_ptr<DropCounterStore>> DropCounterStore::Open(
    std::string path, std::chrono::milliseconds persist_interval) {
  std::unique_ptr<DropCounterStore> s(new DropCounterStore(std::move(path), persist_interval));
  if (absl::StatusOr<std::string> text = ReadFile(s->path_); text.ok()) {
    absl::StatusOr<DropCounters> c = Decode(*text, &s->marks_);
    if (!c.ok()) return absl::DataLossError(absl::StrCat(s->path_, ": ", c.status().message()));
    s->counters_ = *c;
  }
  return s;
}

DropCounterStore::~DropCounterStore() { (void)Flush(); }

void DropCounterStore::Add(DropCause cause, uint64_t n) {
  if (n == 0) return;
  std::lock_guard lock(mu_);
  const CauseField* f = FieldOf(cause);
  if (f == nullptr) return;
  (counters_.*f->set)((counters_.*f->get)() + n);
  ++version_;
  if (std::chrono::steady_clock::now() - last_persist_ >= interval_) (void)FlushLocked();
}

DropCounters DropCounterStore::Snapshot() const {
  std::lock_guard lock(mu_);
  return counters_;
}

uint64_t DropCounterStore::Get(DropCause cause) const {
  std::lock_guard lock(mu_);
  const CauseField* f = FieldOf(cause);
  return f ? (counters_.*f->get)() : 0;
}

uint64_t DropCounterStore::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

absl::Status DropCounterStore::Flush() {
  std::lock_guard lock(mu_);
  return FlushLocked();
}

absl::Status DropCounterStore::AddRingDrops(uint64_t ring_id, uint64_t n, uint64_t upto) {
  std::lock_guard lock(mu_);
  counters_.set_tap_dropped(counters_.tap_dropped() + n);
  while (marks_.size() >= kMaxRingMarks && !marks_.contains(ring_id)) marks_.erase(marks_.begin());
  marks_[ring_id] = upto;
  ++version_;
  return FlushLocked();
}

void DropCounterStore::ForgetRing(uint64_t ring_id) {
  std::lock_guard lock(mu_);
  // Not a change worth a write of its own: a stale mark is at most what the
  // ring itself says, and the next write leaves it out.
  marks_.erase(ring_id);
}

uint64_t DropCounterStore::RingDropsCounted(uint64_t ring_id) const {
  std::lock_guard lock(mu_);
  auto it = marks_.find(ring_id);
  return it == marks_.end() ? 0 : it->second;
}

absl::Status DropCounterStore::FlushLocked() {
  if (persisted_version_ == version_) return absl::OkStatus();
  last_persist_ = std::chrono::steady_clock::now();
  absl::Status st = WriteFileAtomic(path_, Encode(counters_, marks_));
  if (!st.ok()) {
    // Kept in memory and retried on the next Add/Flush; logged once per streak
    // (a full disk would otherwise log on every drop it causes).
    if (!error_logged_) LogError("drop counters not persisted: ", st.message());
    error_logged_ = true;
    return st;
  }
  error_logged_ = false;
  persisted_version_ = version_;
  return absl::OkStatus();
}

}  // namespace idflow::agent

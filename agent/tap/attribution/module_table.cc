#include "agent/tap/attribution/module_table.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unwind.h>

#include <atomic>

#include "agent/tap/attribution/stack_walk.h"
#include "agent/tap/core/state.h"
#include "agent/tap/real/real_functions.h"

namespace idflow::tap {
namespace {

using agent::TapRingHeader;
using agent::TapRingModule;

// One writer at a time (the table is append-only; readers never lock).
std::atomic<bool> g_sync_busy{false};
// Loader counters (dl_phdr_info::dlpi_adds/dlpi_subs) at the last sync.
std::atomic<uint64_t> g_adds{0}, g_subs{0};

bool InLoadedSegment(const dl_phdr_info* info, uintptr_t lo, uintptr_t hi) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && lo >= start && hi <= start + ph.p_filesz) return true;
  }
  return false;
}

bool Range(const dl_phdr_info* info, uint64_t* lo, uint64_t* hi) {
  *lo = UINT64_MAX;
  *hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    uint64_t start = info->dlpi_addr + ph.p_vaddr;
    if (start < *lo) *lo = start;
    if (start + ph.p_memsz > *hi) *hi = start + ph.p_memsz;
  }
  return *lo < *hi;
}

struct SyncPass {
  TapRingHeader* ring;
  TapRingModule* table;
  uint64_t count;       // entries in use (ours to append to)
  uint64_t generation;  // of the entries this pass adds or unloads
  bool seen[agent::kTapRingModules];
  bool changed;
};

int SyncOne(dl_phdr_info* info, size_t, void* arg) {
  auto* p = static_cast<SyncPass*>(arg);
  uint64_t lo, hi;
  if (!Range(info, &lo, &hi)) return 0;
  for (uint64_t i = 0; i < p->count; ++i) {
    const TapRingModule& m = p->table[i];
    if (m.unloaded_gen == 0 && m.lo == lo && m.hi == hi) {
      p->seen[i] = true;
      return 0;
    }
  }
  if (p->count >= agent::kTapRingModules) return 0;  // full: those frames go unnamed
  TapRingModule& m = p->table[p->count];
  memset(&m, 0, sizeof(m));
  m.lo = lo;
  m.hi = hi;
  m.loaded_gen = p->generation;
  const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  const char* path = name;
  char resolved[PATH_MAX];
  if (name[0] == '\0') {
    path = g_exe;  // the main program: its real path
  } else if (name[0] != '/' && strchr(name, '/') != nullptr &&
             realpath(name, resolved) != nullptr) {
    path = resolved;  // dlopen'ed by a relative path; once per module
  }
  size_t len = strnlen(path, agent::kTapModuleMax);
  if (len == 0) return 0;
  memcpy(m.path, path, len);
  m.path_len = static_cast<uint16_t>(len);
  m.build_id_len = static_cast<uint8_t>(ReadBuildId(info, m.build_id));
  const uint64_t self = reinterpret_cast<uintptr_t>(&SyncModules);
  if (self >= lo && self < hi) m.flags |= agent::kTapModuleIsTap;
  p->seen[p->count] = true;
  ++p->count;
  p->changed = true;
  return 0;
}

int ReadCounters(dl_phdr_info* info, size_t size, void* arg) {
  auto* out = static_cast<uint64_t*>(arg);
  if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
    out[0] = info->dlpi_adds;
    out[1] = info->dlpi_subs;
  }
  return 1;  // the first object is enough
}

struct Walk {
  uint64_t* pcs;
  int n;
  int max;
};

_Unwind_Reason_Code WalkFrame(_Unwind_Context* ctx, void* arg) {
  auto* w = static_cast<Walk*>(arg);
  uintptr_t ip = _Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  w->pcs[w->n++] = ip - 1;  // inside the call instruction, not after it
  return w->n >= w->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

}  // namespace

size_t ReadBuildId(const dl_phdr_info* info, uint8_t* out) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type != PT_NOTE || !InLoadedSegment(info, start, start + ph.p_filesz)) continue;
    const size_t align = ph.p_align == 8 ? 8 : 4;
    size_t off = 0;
    while (off + sizeof(ElfW(Nhdr)) <= ph.p_filesz) {
      ElfW(Nhdr) nh;
      memcpy(&nh, reinterpret_cast<const char*>(start + off), sizeof(nh));
      size_t name_off = off + sizeof(nh);
      size_t desc_off = name_off + ((nh.n_namesz + align - 1) & ~(align - 1));
      size_t next = desc_off + ((nh.n_descsz + align - 1) & ~(align - 1));
      if (desc_off > ph.p_filesz || nh.n_descsz > ph.p_filesz - desc_off || next <= off) break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
          memcmp(reinterpret_cast<const char*>(start + name_off), "GNU", 4) == 0) {
        if (nh.n_descsz > 0 && nh.n_descsz <= agent::kTapBuildIdMax) {
          memcpy(out, reinterpret_cast<const char*>(start + desc_off), nh.n_descsz);
          return nh.n_descsz;
        }
        return 0;
      }
      off = next;
    }
  }
  return 0;
}

void SyncModules(TapRingHeader* ring) {
  if (ring == nullptr) return;
  while (g_sync_busy.exchange(true, std::memory_order_acquire)) sched_yield();
  uint64_t counters[2] = {0, 0};
  dl_iterate_phdr(ReadCounters, counters);
  static_assert(sizeof(SyncPass) < 4096, "on the hook's stack");
  SyncPass p;
  memset(&p, 0, sizeof(p));
  p.ring = ring;
  p.table = agent::TapRingModules(ring, ring->slot_count);
  p.count = __atomic_load_n(&ring->module_count, __ATOMIC_RELAXED);
  const uint64_t gen = __atomic_load_n(&ring->module_generation, __ATOMIC_RELAXED);
  p.generation = gen + 1;
  dl_iterate_phdr(SyncOne, &p);
  const uint64_t before = __atomic_load_n(&ring->module_count, __ATOMIC_RELAXED);
  for (uint64_t i = 0; i < before; ++i) {
    if (!p.seen[i] && p.table[i].unloaded_gen == 0) {
      __atomic_store_n(&p.table[i].unloaded_gen, p.generation, __ATOMIC_RELAXED);
      p.changed = true;
    }
  }
  if (p.changed) {
    // Entries first, then their count, then the generation records stamp.
    __atomic_store_n(&ring->module_count, p.count, __ATOMIC_RELEASE);
    __atomic_store_n(&ring->module_generation, p.generation, __ATOMIC_RELEASE);
  }
  g_adds.store(counters[0], std::memory_order_relaxed);
  g_subs.store(counters[1], std::memory_order_relaxed);
  g_sync_busy.store(false, std::memory_order_release);
}

void MaybeSyncModules(TapRingHeader* ring) {
  if (ring == nullptr || !EnterDl()) return;
  uint64_t counters[2] = {0, 0};
  dl_iterate_phdr(ReadCounters, counters);
  const bool moved = counters[0] != g_adds.load(std::memory_order_relaxed) ||
                     counters[1] != g_subs.load(std::memory_order_relaxed);
  if (moved) SyncModules(ring);
  LeaveDl();
}

void CopyModules(const TapRingHeader* from, TapRingHeader* to) {
  const uint64_t n = __atomic_load_n(&from->module_count, __ATOMIC_ACQUIRE);
  memcpy(agent::TapRingModules(to, to->slot_count),
         agent::TapRingModules(const_cast<TapRingHeader*>(from), from->slot_count),
         n * sizeof(TapRingModule));
  to->module_count = n;
  to->module_generation = from->module_generation;
}

int CaptureFrames(uint64_t* pcs, int max) {
  Walk w{pcs, 0, max};
  _Unwind_Backtrace(WalkFrame, &w);
  return w.n;
}

}  // namespace idflow::tap

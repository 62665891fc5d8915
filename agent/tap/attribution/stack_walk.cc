#include "agent/tap/attribution/stack_walk.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>

#include "agent/tap/attribution/call_chain.h"
#include "agent/tap/attribution/module_table.h"
#include "agent/tap/core/state.h"
#include "agent/tap/real/real_functions.h"

namespace idflow::tap {
namespace {

using agent::kTapModuleMax;

// See EnterDl(): loader calls in flight, and a fork() in progress.
std::atomic<int> g_dl_users{0};
std::atomic<bool> g_forking{false};

constexpr int kModuleCacheSize = 128;
enum ModuleState : uint8_t { kModuleFree = 0, kModuleFilling = 1, kModuleReady = 2 };
struct ModuleEntry {
  std::atomic<uint8_t> state{kModuleFree};
  uintptr_t base = 0;
  uint16_t name_len = 0;
  uint16_t path_len = 0;
  uint8_t build_id_len = 0;
  char name[kTapModuleMax] = {};  // dladdr's dli_fname: the lookup key with base
  char path[kTapModuleMax] = {};  // absolute
  uint8_t build_id[agent::kTapBuildIdMax] = {};
};
constinit ModuleEntry g_modules[kModuleCacheSize];

// NT_GNU_BUILD_ID of the loaded object containing `pc`, read from its
// PT_NOTE segments in memory (only notes inside a loaded segment are read).
struct BuildIdQuery {
  uintptr_t pc;
  uint8_t* out;
  uint8_t len;
};

int FindBuildId(dl_phdr_info* info, size_t, void* arg) {
  auto* q = static_cast<BuildIdQuery*>(arg);
  bool contains = false;
  for (int i = 0; i < info->dlpi_phnum && !contains; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    contains = ph.p_type == PT_LOAD && q->pc >= start && q->pc < start + ph.p_memsz;
  }
  if (!contains) return 0;
  q->len = static_cast<uint8_t>(ReadBuildId(info, q->out));
  return 1;
}

void FillModule(ModuleEntry* e, const ChainModule& m, size_t name_len) {
  e->base = m.base;
  memcpy(e->name, m.name, name_len);
  e->name_len = static_cast<uint16_t>(name_len);
  const char* path = m.name;
  char resolved[PATH_MAX];
  if (m.base == reinterpret_cast<uintptr_t>(g_main_base) || name_len == 0) {
    path = g_exe;  // dladdr names the executable "" or argv[0]
  } else if (m.name[0] != '/' && realpath(m.name, resolved) != nullptr) {
    path = resolved;  // dlopen'ed by a relative path; rare, so once per module
  }
  size_t path_len = strnlen(path, kTapModuleMax);
  memcpy(e->path, path, path_len);
  e->path_len = static_cast<uint16_t>(path_len);
  BuildIdQuery q{m.pc, e->build_id, 0};
  dl_iterate_phdr(FindBuildId, &q);
  e->build_id_len = q.len;
}

// The entry of module `m`, filled if new; nullptr when the table is full.
const ModuleEntry* CachedModule(const ChainModule& m) {
  const char* name = m.name != nullptr ? m.name : "";
  size_t name_len = strnlen(name, kTapModuleMax + 1);
  if (name_len > kTapModuleMax) return nullptr;
  size_t h = static_cast<size_t>((m.base >> 12) % kModuleCacheSize);
  for (int i = 0; i < kModuleCacheSize; ++i) {
    ModuleEntry& e = g_modules[(h + i) % kModuleCacheSize];
    uint8_t s = e.state.load(std::memory_order_acquire);
    if (s == kModuleFree &&
        e.state.compare_exchange_strong(s, kModuleFilling, std::memory_order_acquire)) {
      ChainModule named = m;
      named.name = name;
      FillModule(&e, named, name_len);
      e.state.store(kModuleReady, std::memory_order_release);
      return &e;
    }
    if (s == kModuleReady && e.base == m.base && e.name_len == name_len &&
        memcmp(e.name, name, name_len) == 0) {
      return &e;
    }
  }
  return nullptr;
}

bool DladdrLookup(void*, uintptr_t pc, ChainModule* out) {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(pc), &info) == 0 || info.dli_fbase == nullptr) return false;
  out->base = reinterpret_cast<uintptr_t>(info.dli_fbase);
  out->name = info.dli_fname;
  return true;
}

void AtForkPrepareImpl() {
  g_forking.store(true);
  for (int i = 0; i < 200000 && g_dl_users.load() != 0; ++i) sched_yield();
}

void AtForkParentImpl() { g_forking.store(false); }

void AtForkChildImpl() {
  g_dl_users.store(0);
  g_forking.store(false);
}

void FillChainUnfenced(void* caller, agent::TapWireChain* chain) {
  static_assert(sizeof(uintptr_t) == sizeof(uint64_t));
  uint64_t raw[kMaxFrames];
  const int walked = CaptureFrames(raw, g_stack_depth);
  uintptr_t pcs[kMaxFrames];
  for (int i = 0; i < walked; ++i) pcs[i] = static_cast<uintptr_t>(raw[i]);
  const uintptr_t tap = reinterpret_cast<uintptr_t>(TapBase());
  ChainModule mods[agent::kTapChainMax];
  size_t n = BuildCallChain(pcs, static_cast<size_t>(walked), DladdrLookup, nullptr, tap, mods,
                            agent::kTapChainMax);
  if (n == 0 && caller != nullptr) {  // no unwind info: at least the direct caller
    uintptr_t pc = reinterpret_cast<uintptr_t>(caller) - 1;
    n = BuildCallChain(&pc, 1, DladdrLookup, nullptr, tap, mods, agent::kTapChainMax);
  }
  for (size_t i = 0; i < n; ++i) {
    const ModuleEntry* e = CachedModule(mods[i]);
    const char* path = nullptr;
    size_t path_len = 0;
    if (e != nullptr) {
      path = e->path;
      path_len = e->path_len;
    } else {  // table full or name too long: dladdr's name, no build id
      path = mods[i].base == reinterpret_cast<uintptr_t>(g_main_base) || mods[i].name == nullptr
                 ? g_exe
                 : mods[i].name;
      path_len = strnlen(path, kTapModuleMax);
    }
    if (path_len == 0) continue;  // nothing to name it by (e.g. /proc unreadable)
    const uint8_t* build_id = e != nullptr ? e->build_id : nullptr;
    if (!agent::AppendTapChain(chain, path, path_len, build_id,
                               e != nullptr ? e->build_id_len : 0)) {
      break;  // path area full: keep the inner part
    }
  }
}

// Only called when there is something to report: the walk costs a few µs.
// `chain` must be zeroed; it stays empty inside the fork window.
}  // namespace

// fork() fence for the loader (stack_walk.h): a child forked while another thread of the
// parent is inside dladdr/the unwinder/dl_iterate_phdr would inherit the
// loader's lock held and hang on its first attribution. The prepare handler
// waits (bounded) for our own loader calls to finish and keeps new ones out
// until fork returns; an attribution attempted meanwhile is skipped (empty
// chain), never blocked.
bool EnterDl() {
  if (g_forking.load()) return false;
  g_dl_users.fetch_add(1);
  if (g_forking.load()) {
    g_dl_users.fetch_sub(1);
    return false;
  }
  return true;
}

void LeaveDl() { g_dl_users.fetch_sub(1); }

void FillChain(void* caller, agent::TapWireChain* chain) {
  if (!EnterDl()) return;
  FillChainUnfenced(caller, chain);
  LeaveDl();
}

// Constructor only: caches every module loaded at start-up (dladdr on an
// address of each gives the same key as a later lookup), so that hooks do
// the work only for modules dlopen'ed afterwards.
namespace {

int CacheLoadedModule(dl_phdr_info* info, size_t, void*) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    ChainModule m;
    uintptr_t pc = info->dlpi_addr + ph.p_vaddr;
    if (DladdrLookup(nullptr, pc, &m) && m.base != reinterpret_cast<uintptr_t>(TapBase())) {
      m.pc = pc;
      CachedModule(m);
    }
    break;
  }
  return 0;
}

}  // namespace

void CacheLoadedModules() {
  dl_iterate_phdr(CacheLoadedModule, nullptr);
  agent::TapWireChain primer;
  memset(&primer, 0, sizeof(primer));
  FillChain(nullptr, &primer);
}

void AttributionAtForkPrepare() { AtForkPrepareImpl(); }
void AttributionAtForkParent() { AtForkParentImpl(); }
void AttributionAtForkChild() { AtForkChildImpl(); }

}  // namespace idflow::tap

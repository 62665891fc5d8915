#include "agent/tap/resolver/names.h"

#include <netinet/in.h>
#include <string.h>

#include <atomic>

#include "agent/tap/fd/fd_table.h"
#include "agent/tap_protocol.h"

namespace idflow::tap {
namespace {

using agent::kTapHostMax;

struct NameEntry {
  std::atomic<uint32_t> seq{0};  // odd while being written
  uint8_t family = 0;
  uint8_t addr[16] = {};
  uint16_t len = 0;
  char name[kTapHostMax] = {};
};
constinit NameEntry g_names[kNameRing];
constinit std::atomic<uint32_t> g_name_next{0};

}  // namespace

void RememberName(const char* node, const sockaddr* sa) {
  uint8_t family = 0, addr[16] = {};
  uint16_t port = 0;
  if (sa == nullptr || sa->sa_family == AF_UNIX) return;
  if (!FillDest(sa, sa->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6), &family,
                addr, &port)) {
    return;
  }
  NameEntry& e = g_names[g_name_next.fetch_add(1, std::memory_order_relaxed) % kNameRing];
  uint32_t s = e.seq.load(std::memory_order_relaxed);
  if ((s & 1) != 0) return;  // another writer lapped the ring onto this entry
  if (!e.seq.compare_exchange_strong(s, s + 1, std::memory_order_acquire)) return;
  e.family = family;
  memcpy(e.addr, addr, 16);
  size_t n = strnlen(node, kTapHostMax);
  memcpy(e.name, node, n);
  e.len = static_cast<uint16_t>(n);
  e.seq.store(s + 2, std::memory_order_release);
}

uint16_t LookupName(uint8_t family, const uint8_t* addr, char* out) {
  if (family != agent::kTapFamilyInet && family != agent::kTapFamilyInet6) return 0;
  size_t cmp = family == agent::kTapFamilyInet ? 4 : 16;
  uint32_t next = g_name_next.load(std::memory_order_relaxed);
  int count = next < kNameRing ? static_cast<int>(next) : kNameRing;
  for (int i = 1; i <= count; ++i) {  // newest first
    NameEntry& e = g_names[(next - i) % kNameRing];
    uint32_t s = e.seq.load(std::memory_order_acquire);
    if ((s & 1) != 0 || e.family != family || memcmp(e.addr, addr, cmp) != 0) continue;
    uint16_t len = e.len > kTapHostMax ? kTapHostMax : e.len;
    memcpy(out, e.name, len);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (e.seq.load(std::memory_order_relaxed) == s) return len;
  }
  return 0;
}

}  // namespace idflow::tap

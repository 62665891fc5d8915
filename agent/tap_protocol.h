// Wire format between libidflow-tap.so (in the app) and idflow-agent, over a
// Unix SOCK_SEQPACKET socket: one message per send(), never split or merged.
//
// Every message is a fixed-size little-endian POD: TapWireHeader followed by a
// type-specific body, except Patterns chunks whose payload follows the chunk
// header. Strings are (length, fixed array) pairs, never NUL-dependent.
//
// Exchange:
//   tap -> agent   Hello   (first message, exactly once per connection)
//   agent -> tap   Patterns chunks, in order, if Hello asked for them: the
//                  serialized Vectorscan database (hs_serialize_database) cut
//                  into chunks of at most kTapPatternChunkBytes. total_bytes==0
//                  means "no identifiers: nothing to scan". Chunks are used
//                  rather than an SCM_RIGHTS memfd so that the format stays a
//                  plain byte protocol (fuzzable, no fd lifetime rules).
//   tap -> agent   Event*  (one per (pattern, hooked call))
//   tap -> agent   Cookie* (HTTP Cookie / Set-Cookie names and lifetimes;
//                  cookie values never leave the app)
// Events and cookies carry the call chain (TapWireChain): the distinct
// modules on the stack at the hooked call, innermost first. The tap does not
// decide which of them is responsible; the collector does, from policy data.
//   tap -> agent   Stats   (at exit, best effort)
//
// The tap includes this header with IDFLOW_TAP_WIRE_ONLY defined and so sees
// only the POD part; the agent also gets the allocating decode/encode API.
#ifndef IDFLOW_AGENT_TAP_PROTOCOL_H_
#define IDFLOW_AGENT_TAP_PROTOCOL_H_

#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "idflow tap protocol assumes a little-endian host"
#endif

namespace idflow::agent {

inline constexpr uint32_t kTapMagic = 0x50415449;  // "ITAP" in memory
// 3: the call chain replaced the single module; cookies carry Domain.
// 4: Hello carries the QA run id (IDFLOW_RUN_ID).
inline constexpr uint16_t kTapVersion = 4;

// Largest message either side sends; receivers reject anything bigger.
inline constexpr size_t kTapPatternChunkBytes = 32 * 1024;
inline constexpr size_t kTapMaxMessageBytes = 64 * 1024;
// Upper bound on the serialized database the tap accepts (DoS guard).
inline constexpr uint32_t kTapMaxDatabaseBytes = 64u * 1024 * 1024;

inline constexpr size_t kTapExeMax = 1024;
inline constexpr size_t kTapScenarioMax = 512;
inline constexpr size_t kTapConsentMax = 512;
// A QA run id: [A-Za-z0-9._:-], at most this long (IsValidRunId).
inline constexpr size_t kTapRunIdMax = 64;
inline constexpr size_t kTapHostMax = 256;
inline constexpr size_t kTapModuleMax = 1024;
inline constexpr size_t kTapContextMax = 64;
inline constexpr size_t kTapPeerMax = 256;
// Longest identifier form the agent compiles: the tap keeps this many bytes
// minus one per stream to find forms split across two writes.
inline constexpr size_t kTapMaxPatternBytes = 128;
inline constexpr size_t kTapCookieNameMax = 128;
inline constexpr size_t kTapCookieDomainMax = 255;  // longest DNS name

// Call chain bounds: at most kTapChainMax modules, whose paths (each 1 to
// kTapModuleMax bytes, no NUL) are packed in order into kTapChainPathBytes.
// A module that does not fit ends the chain (outer modules are dropped).
inline constexpr size_t kTapChainMax = 8;
inline constexpr size_t kTapChainPathBytes = 2048;
inline constexpr size_t kTapBuildIdMax = 32;  // raw GNU build id bytes (SHA-1: 20)

enum TapMsgType : uint16_t {
  kTapMsgHello = 1,
  kTapMsgPatterns = 2,
  kTapMsgEvent = 3,
  kTapMsgStats = 4,
  kTapMsgCookie = 5,
};

enum TapWireAction : uint8_t { kTapActionTransmit = 1, kTapActionAcquire = 2 };
enum TapWireChannel : uint8_t {
  kTapChannelOther = 0,
  kTapChannelTcp = 1,
  kTapChannelUdp = 2,
  kTapChannelUnix = 3,
  kTapChannelTlsOpenssl = 4,  // plaintext seen in SSL_write/SSL_read
  kTapChannelTlsGnutls = 5,   // plaintext seen in gnutls_record_send/recv
  kTapChannelSysfs = 6,       // acquire: open() of a sysfs address file
  kTapChannelIoctl = 7,       // acquire: SIOCGIFHWADDR / HCIGETDEVINFO
  kTapChannelGetifaddrs = 8,  // acquire: AF_PACKET entries of getifaddrs()
  kTapChannelLast = kTapChannelGetifaddrs,
};
// Protocol-level address families (not the platform's AF_* values).
enum TapWireFamily : uint8_t {
  kTapFamilyNone = 0,
  kTapFamilyInet = 4,
  kTapFamilyInet6 = 6,
  kTapFamilyUnix = 1,
};

inline constexpr uint32_t kTapHelloWantPatterns = 1u << 0;
// The Hello carries two descriptors (SCM_RIGHTS): the tap's event ring (a
// sealed memfd, TapRingHeader + slots) and its doorbell (an eventfd).
inline constexpr uint32_t kTapHelloRing = 1u << 1;

struct TapWireHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t type;      // TapMsgType
  uint32_t length;    // whole message, header included
  uint32_t reserved;  // 0
};
static_assert(sizeof(TapWireHeader) == 16);

struct TapWireHello {
  TapWireHeader header;
  uint32_t pid;
  uint32_t ppid;
  uint32_t flags;  // kTapHelloWantPatterns
  uint16_t exe_len;
  uint16_t scenarios_len;  // raw IDFLOW_SCENARIO ("a,b")
  uint16_t consents_len;   // raw IDFLOW_CONSENT ("k=true,k2=false")
  uint16_t run_id_len;     // raw IDFLOW_RUN_ID
  char exe[kTapExeMax];
  char scenarios[kTapScenarioMax];
  char consents[kTapConsentMax];
  char run_id[kTapRunIdMax];
};
static_assert(sizeof(TapWireHello) ==
              16 + 20 + kTapExeMax + kTapScenarioMax + kTapConsentMax + kTapRunIdMax);

// Followed by chunk_bytes of database payload.
struct TapWirePatternsChunk {
  TapWireHeader header;
  uint32_t generation;   // changes when the agent rebuilds the database
  uint32_t total_bytes;  // size of the whole serialized database
  uint32_t offset;       // of this chunk within it
  uint32_t chunk_bytes;
  uint32_t pattern_count;
  uint32_t reserved;
};
static_assert(sizeof(TapWirePatternsChunk) == 40);

struct TapWireChainEntry {
  uint16_t path_len;     // 1..kTapModuleMax
  uint8_t build_id_len;  // 0..kTapBuildIdMax; 0 = unknown
  uint8_t reserved;      // 0
  uint8_t build_id[kTapBuildIdMax];
};
static_assert(sizeof(TapWireChainEntry) == 4 + kTapBuildIdMax);

// Entries [0, count) are used, innermost first; unused entries are all zero.
// Paths are packed back to back in `paths` (entry i starts where entry i-1
// ends), so their lengths alone place them.
struct TapWireChain {
  uint8_t count;  // 0..kTapChainMax; 0 = not walked (fork window) or nothing found
  uint8_t reserved0[3];
  uint32_t reserved1;
  TapWireChainEntry entries[kTapChainMax];
  char paths[kTapChainPathBytes];
};
static_assert(sizeof(TapWireChain) ==
              8 + kTapChainMax * sizeof(TapWireChainEntry) + kTapChainPathBytes);

// Bytes of `paths` used by the first `count` entries.
inline size_t TapChainPathBytes(const TapWireChain& chain) {
  size_t used = 0;
  for (size_t i = 0; i < chain.count && i < kTapChainMax; ++i) used += chain.entries[i].path_len;
  return used;
}

// Appends one module; false (chain unchanged) when it is full or the path
// does not fit. Shared by the tap and the agent's encoder so that both
// truncate the same way.
inline bool AppendTapChain(TapWireChain* chain, const char* path, size_t path_len,
                           const uint8_t* build_id, size_t build_id_len) {
  if (chain->count >= kTapChainMax || path_len == 0 || path_len > kTapModuleMax) return false;
  size_t used = TapChainPathBytes(*chain);
  if (path_len > kTapChainPathBytes - used) return false;
  for (size_t i = 0; i < path_len; ++i) {
    if (path[i] == '\0') return false;
  }
  TapWireChainEntry& e = chain->entries[chain->count];
  for (size_t i = 0; i < path_len; ++i) chain->paths[used + i] = path[i];
  e.path_len = static_cast<uint16_t>(path_len);
  e.build_id_len = build_id_len <= kTapBuildIdMax ? static_cast<uint8_t>(build_id_len) : 0;
  for (size_t i = 0; i < e.build_id_len; ++i) e.build_id[i] = build_id[i];
  ++chain->count;
  return true;
}

struct TapWireEvent {
  TapWireHeader header;
  uint64_t timestamp_ms;  // unix epoch
  uint64_t offset;        // of the match in the bytes handed to the hooked call
  uint32_t pid;
  uint32_t tid;
  uint32_t pattern_id;
  uint8_t action;   // TapWireAction
  uint8_t channel;  // TapWireChannel
  uint8_t family;   // TapWireFamily
  uint8_t reserved0;
  uint8_t addr[16];  // network order; first 4 bytes for IPv4
  uint16_t port;     // host order
  uint16_t host_len;
  uint16_t reserved1;
  uint16_t context_len;
  uint32_t context_offset;  // offset of the match inside context
  uint32_t flags;           // kTapEvent* bits
  char host[kTapHostMax];
  char context[kTapContextMax];
  uint16_t peer_len;  // unix sockets: executable of the SO_PEERCRED peer
  uint16_t reserved2[3];
  char peer[kTapPeerMax];
  TapWireChain chain;
};
static_assert(sizeof(TapWireEvent) == 16 + 16 + 16 + 16 + 16 + kTapHostMax + kTapContextMax + 8 +
                                          kTapPeerMax + sizeof(TapWireChain));

static_assert(sizeof(TapWireEvent) <= kTapMaxMessageBytes);

// TapWireEvent::flags: the match straddled the previous call's bytes on the
// same stream (found through the per-stream carry).
inline constexpr uint32_t kTapEventSplit = 1u << 0;

enum TapWireCookieDirection : uint8_t { kTapCookieOut = 1, kTapCookieIn = 2 };
inline constexpr uint8_t kTapCookieSession = 1u << 0;    // no Max-Age/Expires
inline constexpr uint8_t kTapCookieHasMaxAge = 1u << 1;  // max_age_seconds is set

// One cookie name seen in an outgoing Cookie header or an incoming
// Set-Cookie header. The value is never carried.
struct TapWireCookie {
  TapWireHeader header;
  uint64_t timestamp_ms;
  int64_t max_age_seconds;  // Max-Age, or Expires minus now; valid with kTapCookieHasMaxAge
  uint32_t pid;
  uint32_t tid;
  uint8_t direction;  // TapWireCookieDirection
  uint8_t channel;    // TapWireChannel
  uint8_t family;     // TapWireFamily
  uint8_t flags;      // kTapCookie* bits
  uint8_t addr[16];
  uint16_t port;
  uint16_t host_len;
  uint16_t domain_len;  // Set-Cookie Domain (lower case, no leading dot); 0 for kTapCookieOut
  uint16_t name_len;
  uint32_t reserved;
  char host[kTapHostMax];
  char domain[kTapCookieDomainMax + 1];  // domain_len <= kTapCookieDomainMax
  char name[kTapCookieNameMax];
  TapWireChain chain;
};
static_assert(sizeof(TapWireCookie) == 16 + 24 + 4 + 16 + 12 + kTapHostMax + kTapCookieDomainMax +
                                           1 + kTapCookieNameMax + sizeof(TapWireChain));

static_assert(sizeof(TapWireCookie) <= kTapMaxMessageBytes);

struct TapWireStats {
  TapWireHeader header;
  uint32_t pid;
  uint32_t reserved;
  uint64_t events_sent;
  uint64_t events_dropped;  // agent socket full/absent
  uint64_t scan_cap_hits;   // formatted stdio output observed only in part (past 4 KiB)
  uint64_t calls_scanned;
  uint64_t bytes_scanned;
  uint64_t split_matches;     // matches found across two calls (stream carry)
  uint64_t stream_fallbacks;  // calls scanned without carry: stream pool exhausted
  uint64_t acquisitions;      // acquire events (sysfs, ioctl, getifaddrs)
  uint64_t cookies;           // cookie messages
};
static_assert(sizeof(TapWireStats) == 16 + 8 + 72);

// Ring only: the bytes of one hooked transmit call (or one chunk of a large
// one), for the agent to match; it builds the same events the tap would
// have (TapEvent). The tap keeps each stream's last bytes (the carry, at
// most kTapMaxPatternBytes - 1) and puts them before the data, so an
// identifier split across two calls is found whichever side scanned them.
// Followed by carry_len bytes of carry, then data_len bytes of data.
inline constexpr uint16_t kTapMsgPayload = 7;
inline constexpr size_t kTapFramesMax = 64;
inline constexpr size_t kTapPayloadChunkMax = 64 * 1024;
// The carry is this call's previous chunk (a match across it is not split).
inline constexpr uint8_t kTapPayloadContinued = 1u << 0;
// An identifier read from the system (channel sysfs, ioctl or getifaddrs):
// its events are acquisitions (the tap had no database to match it).
inline constexpr uint8_t kTapPayloadAcquire = 1u << 1;
struct TapWirePayload {
  TapWireHeader header;  // type kTapMsgPayload; length includes carry and data
  uint64_t timestamp_ms;
  uint64_t call_offset;        // of data[0] in the bytes of the hooked call
  uint64_t module_generation;  // of the module table when the frames were taken
  uint64_t caller;             // the hook's return address (chain when nothing unwinds)
  uint32_t pid;
  uint32_t tid;
  int32_t fd;  // the stream's socket (-1: unknown)
  uint8_t channel;
  uint8_t family;
  uint8_t frame_count;  // 0..kTapFramesMax; 0 = not walked (fork window)
  uint8_t flags;        // kTapPayload*
  uint16_t port;
  uint16_t host_len;
  uint16_t peer_len;
  uint16_t carry_len;  // < kTapMaxPatternBytes
  uint32_t data_len;   // 1..kTapPayloadChunkMax
  uint8_t addr[16];
  char host[kTapHostMax];
  char peer[kTapPeerMax];
  uint64_t frames[kTapFramesMax];  // return addresses - 1, innermost first
};
static_assert(sizeof(TapWirePayload) % 8 == 0);

// ---------------------------------------------------------------------------
// The event ring: a per-process shared-memory queue from the tap (any number
// of app threads, producers) to the agent (one consumer). The tap creates it
// (memfd, sealed against shrinking and growing) and passes it with the Hello;
// it survives agent restarts (the tap hands the same ring to the next agent),
// and its counters reach the agent even when the process dies without Stats.
//
// Bounded MPSC queue after D. Vyukov: slot i holds a `lap` word, written with
// release and read with acquire. With idx = pos % slot_count:
//   lap == pos - idx        free for the producer reserving `pos` (CAS head)
//   lap == pos - idx + 1    committed: the consumer may read `pos`
//   lap == pos - idx + n    released by the consumer for the next lap
// Storing (seq - idx) rather than seq keeps a fresh, all-zero ring valid, so
// pages are touched only as slots are used. A full ring is a counted drop
// (`dropped`), never a wait. Every field is little-endian, accessed with
// __atomic builtins by both sides; the agent treats all of it as untrusted.
//
// A record may span several consecutive slots (a Payload, below): the
// producer reserves them with one CAS (it checks the last one is free: the
// consumer frees in order), writes its data into each slot's data area and
// commits the continuation slots before the first; `length` in the first
// slot gives the span. The consumer frees every slot of the span.
inline constexpr uint32_t kTapRingMagic = 0x52505449;  // "ITPR" in memory
// 2: multi-slot records (Payload) and the module table after the slots.
inline constexpr uint32_t kTapRingVersion = 2;
inline constexpr size_t kTapRingHeaderBytes = 4096;
inline constexpr size_t kTapRingSlotBytes = 3072;
inline constexpr size_t kTapRingSlotHeaderBytes = 16;
inline constexpr size_t kTapRingPayloadMax = kTapRingSlotBytes - kTapRingSlotHeaderBytes;
inline constexpr uint32_t kTapRingMinSlots = 64;
inline constexpr uint32_t kTapRingMaxSlots = 65536;
inline constexpr uint32_t kTapRingDefaultSlots = 2048;  // 6 MiB, touched as used
static_assert(sizeof(TapWireEvent) <= kTapRingPayloadMax);
static_assert(sizeof(TapWireCookie) <= kTapRingPayloadMax);

struct TapRingHeader {
  uint32_t magic;
  uint32_t version;
  uint32_t slot_count;  // power of two, kTapRingMinSlots..kTapRingMaxSlots
  uint32_t slot_bytes;  // kTapRingSlotBytes
  uint64_t ring_id;     // random: names the ring to the agent's journal
  uint32_t pid;         // creator (informational; the agent uses SO_PEERCRED)
  uint32_t reserved0;
  uint64_t module_count;       // tap: module table entries in use (release)
  uint64_t module_generation;  // tap: bumped by each dlopen/dlclose that changed the set
  uint64_t reserved1[2];
  alignas(64) uint64_t head;      // tap: next position to reserve
  alignas(64) uint64_t consumed;  // agent: positions below are journaled
  alignas(64) uint64_t waiting;   // agent: 1 = asleep, ring the doorbell
  alignas(64) uint64_t dropped;   // tap: events not handed over (ring full)
  uint64_t dropped_reported;      // agent: part of `dropped` already counted
};
static_assert(sizeof(TapRingHeader) <= kTapRingHeaderBytes);

struct TapRingSlot {
  uint64_t lap;
  uint32_t length;  // bytes of the record starting here (first slot of a span)
  uint32_t reserved;
  char data[kTapRingPayloadMax];
};
static_assert(sizeof(TapRingSlot) == kTapRingSlotBytes);

// Largest record (a Payload with its carry and a full chunk), and the
// slots a record of `length` bytes spans.
inline constexpr size_t kTapRingRecordMax = 72 * 1024;
inline constexpr uint32_t TapRingSpan(size_t length) {
  return static_cast<uint32_t>((length + kTapRingPayloadMax - 1) / kTapRingPayloadMax);
}
static_assert(TapRingSpan(kTapRingRecordMax) < kTapRingMinSlots);
static_assert(sizeof(TapWirePayload) + kTapMaxPatternBytes + kTapPayloadChunkMax <=
              kTapRingRecordMax);

// The module table, after the slots: every object the process has loaded
// (dl_iterate_phdr at start, then each dlopen), so the agent turns the raw
// return addresses of a Payload into modules. Entries are appended, never
// reused: a dlclose marks its entries unloaded at a generation, and a record
// stamped with an earlier generation still resolves through them. The tap
// writes an entry, then publishes it by raising module_count (release).
inline constexpr uint32_t kTapRingModules = 512;
inline constexpr uint8_t kTapModuleIsTap = 1u << 0;  // the tap itself: never listed
struct TapRingModule {
  uint64_t lo;  // [lo, hi): the object's PT_LOAD segments
  uint64_t hi;
  uint64_t loaded_gen;    // module_generation when it was added
  uint64_t unloaded_gen;  // 0 = loaded; else the generation its dlclose made
  uint16_t path_len;      // 1..kTapModuleMax (the main program: /proc/self/exe)
  uint8_t build_id_len;   // 0..kTapBuildIdMax
  uint8_t flags;          // kTapModule*
  uint32_t reserved;
  uint8_t build_id[kTapBuildIdMax];
  char path[kTapModuleMax];
};
static_assert(sizeof(TapRingModule) == 40 + kTapBuildIdMax + kTapModuleMax);
inline constexpr size_t kTapRingModuleTableBytes = kTapRingModules * sizeof(TapRingModule);
static_assert(kTapRingModuleTableBytes % 4096 == 0);

inline size_t TapRingBytes(uint32_t slot_count) {
  return kTapRingHeaderBytes + static_cast<size_t>(slot_count) * kTapRingSlotBytes +
         kTapRingModuleTableBytes;
}
inline TapRingModule* TapRingModules(void* ring, uint32_t slot_count) {
  return reinterpret_cast<TapRingModule*>(static_cast<char*>(ring) + kTapRingHeaderBytes +
                                          static_cast<size_t>(slot_count) * kTapRingSlotBytes);
}

inline void FillTapHeader(TapWireHeader* h, uint16_t type, uint32_t length) {
  h->magic = kTapMagic;
  h->version = kTapVersion;
  h->type = type;
  h->length = length;
  h->reserved = 0;
}

}  // namespace idflow::agent

#ifndef IDFLOW_TAP_WIRE_ONLY

#include <sys/types.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace idflow::agent {

// Copies a (len, array) wire string after checking len against the array.
template <size_t N>
bool WireString(const char (&arr)[N], uint16_t len, std::string* out) {
  if (len > N) return false;
  out->assign(arr, len);
  return true;
}

// Copies at most N bytes of `s` into a wire array; returns the length kept.
template <size_t N>
uint16_t PutWireString(char (&arr)[N], std::string_view s) {
  size_t n = std::min(N, s.size());
  memcpy(arr, s.data(), n);
  return static_cast<uint16_t>(n);
}

enum class TapAction { kTransmit, kAcquire };
enum class TapChannel {
  kOther,
  kTcp,
  kUdp,
  kUnix,
  kTlsOpenssl,
  kTlsGnutls,
  kSysfs,
  kIoctl,
  kGetifaddrs,
  // Not on the tap's wire (a tap cannot claim them): the agent's TLS uprobe
  // source (agent/uprobe/).
  kTlsUprobeOpenssl,
  kTlsUprobeGo
};

std::string_view ActionName(TapAction a);  // "transmit", "acquire"
// "tcp", "udp", "unix", "tls-openssl", "tls-gnutls", "sysfs", "ioctl",
// "getifaddrs", "tls-uprobe-openssl", "tls-uprobe-go", "other"
std::string_view ChannelName(TapChannel c);

// Credentials of the connected peer (SO_PEERCRED), filled by the ingress.
struct PeerCredentials {
  bool valid = false;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string exe;  // /proc/PID/exe read by the agent at accept ("" if gone)
};

struct TapHello {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  bool want_patterns = true;
  bool has_ring = false;  // kTapHelloRing: descriptors came with the message
  std::string exe;
  std::vector<std::string> scenarios;    // empty entries dropped
  std::map<std::string, bool> consents;  // malformed entries dropped
  std::string run_id;                    // "" when absent or not a valid run id
  PeerCredentials peer;                  // not on the wire: set by TapIngress
};

// One module of a call chain.
struct TapModule {
  std::string path;      // absolute path (the main executable as its real path)
  std::string build_id;  // lower-case hex GNU build id, "" when unknown

  bool operator==(const TapModule&) const = default;
};

struct TapEvent {
  uint64_t timestamp_ms = 0;
  uint32_t pid = 0;
  uint32_t tid = 0;
  TapAction action = TapAction::kTransmit;
  TapChannel channel = TapChannel::kOther;
  int family = 0;       // 0, 4, 6 or 1 (unix), see TapWireFamily
  std::string address;  // textual IP ("127.0.0.1", "::1") or empty
  uint16_t port = 0;
  std::string hostname;  // HTTP Host, else TLS SNI, else the name getaddrinfo resolved
  std::string peer_exe;  // unix sockets: the peer's executable (SO_PEERCRED)
  // Distinct modules on the stack, innermost first (tap excluded), at most
  // kTapChainMax; empty when the stack was not walked (fork window).
  std::vector<TapModule> call_chain;
  uint32_t pattern_id = 0;
  uint64_t offset = 0;
  std::string context;  // RAW bytes around the match: redact before leaving the agent
  uint32_t context_offset = 0;
  bool split = false;  // found across two consecutive calls on one stream
  // Not on the wire: set by TapIngress for events read from a ring, so the
  // journal can record how far the ring was consumed (0: not from a ring).
  uint64_t ring_id = 0;
  uint64_t ring_next = 0;  // ring position after this event
};

struct TapCookie {
  uint64_t timestamp_ms = 0;
  uint32_t pid = 0;
  uint32_t tid = 0;
  bool outgoing = true;  // Cookie request header (true) or Set-Cookie response header
  TapChannel channel = TapChannel::kOther;
  int family = 0;
  std::string address;
  uint16_t port = 0;
  std::string hostname;
  std::vector<TapModule> call_chain;  // as TapEvent::call_chain
  std::string name;
  std::string domain;           // Set-Cookie Domain attribute: lower case, no leading dot
  bool session = false;         // Set-Cookie without Max-Age/Expires
  bool has_max_age = false;     // max_age_seconds is meaningful
  int64_t max_age_seconds = 0;  // Max-Age, or Expires minus the time seen
  uint64_t ring_id = 0;         // as TapEvent
  uint64_t ring_next = 0;
};

struct TapStats {
  uint32_t pid = 0;
  uint64_t events_sent = 0;
  uint64_t events_dropped = 0;
  uint64_t scan_cap_hits = 0;
  uint64_t calls_scanned = 0;
  uint64_t bytes_scanned = 0;
  uint64_t split_matches = 0;
  uint64_t stream_fallbacks = 0;
  uint64_t acquisitions = 0;
  uint64_t cookies = 0;
};

struct TapPatternsChunk {
  uint32_t generation = 0;
  uint32_t total_bytes = 0;
  uint32_t offset = 0;
  uint32_t pattern_count = 0;
  std::string data;
};

struct TapMessage {
  std::variant<TapHello, TapEvent, TapStats, TapPatternsChunk, TapCookie> body;
};

// Decodes one datagram. Rejects (InvalidArgument) anything not exactly
// well-formed: wrong magic/version, length mismatch, out-of-range fields.
absl::StatusOr<TapMessage> DecodeTapMessage(std::string_view bytes);

// Parsers for the raw env strings carried by Hello.
std::vector<std::string> ParseScenarios(std::string_view raw);
std::map<std::string, bool> ParseConsents(std::string_view raw);
// A run id is 1..kTapRunIdMax characters of [A-Za-z0-9._:-].
bool IsValidRunId(std::string_view id);

// Encoders: used by the agent (Patterns) and by tests (the others). Strings
// longer than the wire arrays are truncated.
std::string EncodeHello(const TapHello& hello, std::string_view raw_scenarios,
                        std::string_view raw_consents);
std::string EncodeEvent(const TapEvent& event);
std::string EncodeStats(const TapStats& stats);
std::string EncodeCookie(const TapCookie& cookie);
std::vector<std::string> EncodePatterns(std::string_view serialized_db, uint32_t generation,
                                        uint32_t pattern_count);

}  // namespace idflow::agent

#endif  // IDFLOW_TAP_WIRE_ONLY

#endif  // IDFLOW_AGENT_TAP_PROTOCOL_H_

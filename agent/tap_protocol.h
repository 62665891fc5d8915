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
inline constexpr uint16_t kTapVersion = 2;

// Largest message either side sends; receivers reject anything bigger.
inline constexpr size_t kTapPatternChunkBytes = 32 * 1024;
inline constexpr size_t kTapMaxMessageBytes = 64 * 1024;
// Upper bound on the serialized database the tap accepts (DoS guard).
inline constexpr uint32_t kTapMaxDatabaseBytes = 64u * 1024 * 1024;

inline constexpr size_t kTapExeMax = 1024;
inline constexpr size_t kTapScenarioMax = 512;
inline constexpr size_t kTapConsentMax = 512;
inline constexpr size_t kTapHostMax = 256;
inline constexpr size_t kTapModuleMax = 1024;
inline constexpr size_t kTapContextMax = 64;
inline constexpr size_t kTapPeerMax = 256;
// Longest identifier form the agent compiles: the tap keeps this many bytes
// minus one per stream to find forms split across two writes.
inline constexpr size_t kTapMaxPatternBytes = 128;
inline constexpr size_t kTapCookieNameMax = 128;

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
  uint16_t reserved;
  char exe[kTapExeMax];
  char scenarios[kTapScenarioMax];
  char consents[kTapConsentMax];
};
static_assert(sizeof(TapWireHello) == 16 + 20 + kTapExeMax + kTapScenarioMax + kTapConsentMax);

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
  uint16_t module_len;
  uint16_t context_len;
  uint32_t context_offset;  // offset of the match inside context
  uint32_t flags;           // kTapEvent* bits
  char host[kTapHostMax];
  char module[kTapModuleMax];
  char context[kTapContextMax];
  uint16_t peer_len;  // unix sockets: executable of the SO_PEERCRED peer
  uint16_t reserved2[3];
  char peer[kTapPeerMax];
};
static_assert(sizeof(TapWireEvent) == 16 + 16 + 16 + 16 + 16 + kTapHostMax + kTapModuleMax +
                                          kTapContextMax + 8 + kTapPeerMax);

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
  uint16_t module_len;
  uint16_t name_len;
  uint32_t reserved;
  char host[kTapHostMax];
  char module[kTapModuleMax];
  char name[kTapCookieNameMax];
};
static_assert(sizeof(TapWireCookie) ==
              16 + 24 + 4 + 16 + 12 + kTapHostMax + kTapModuleMax + kTapCookieNameMax);

struct TapWireStats {
  TapWireHeader header;
  uint32_t pid;
  uint32_t reserved;
  uint64_t events_sent;
  uint64_t events_dropped;  // agent socket full/absent
  uint64_t scan_cap_hits;   // calls whose bytes were cut at IDFLOW_TAP_SCAN_CAP
  uint64_t calls_scanned;
  uint64_t bytes_scanned;
  uint64_t split_matches;     // matches found across two calls (stream carry)
  uint64_t stream_fallbacks;  // calls scanned without carry: stream pool exhausted
  uint64_t acquisitions;      // acquire events (sysfs, ioctl, getifaddrs)
  uint64_t cookies;           // cookie messages
};
static_assert(sizeof(TapWireStats) == 16 + 8 + 72);

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

#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace idflow::agent {

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
  kGetifaddrs
};

std::string_view ActionName(TapAction a);  // "transmit", "acquire"
// "tcp", "udp", "unix", "tls-openssl", "tls-gnutls", "sysfs", "ioctl",
// "getifaddrs", "other"
std::string_view ChannelName(TapChannel c);

// Credentials of the connected peer (SO_PEERCRED), filled by the ingress.
struct PeerCredentials {
  bool valid = false;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct TapHello {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  bool want_patterns = true;
  std::string exe;
  std::vector<std::string> scenarios;    // empty entries dropped
  std::map<std::string, bool> consents;  // malformed entries dropped
  PeerCredentials peer;                  // not on the wire: set by TapIngress
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
  std::string module;    // absolute path of the calling module
  uint32_t pattern_id = 0;
  uint64_t offset = 0;
  std::string context;  // RAW bytes around the match: redact before leaving the agent
  uint32_t context_offset = 0;
  bool split = false;  // found across two consecutive calls on one stream
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
  std::string module;
  std::string name;
  bool session = false;         // Set-Cookie without Max-Age/Expires
  bool has_max_age = false;     // max_age_seconds is meaningful
  int64_t max_age_seconds = 0;  // Max-Age, or Expires minus the time seen
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

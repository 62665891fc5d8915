#include "agent/tap_protocol.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Pair;

TapEvent SampleEvent() {
  TapEvent e;
  e.timestamp_ms = 1700000000123;
  e.pid = 42;
  e.tid = 43;
  e.action = TapAction::kTransmit;
  e.channel = TapChannel::kTcp;
  e.address = "127.0.0.1";
  e.port = 8080;
  e.hostname = "api.example.test";
  e.call_chain = {{"/usr/lib/libfoo_sdk.so", "0123456789abcdef0123456789abcdef01234567"},
                  {"/usr/bin/app", ""}};
  e.pattern_id = 7;
  e.offset = 1234;
  e.context = std::string("mac=aa:bb\0cc", 12);
  e.context_offset = 4;
  return e;
}

TEST(TapProtocolTest, EventRoundTrip) {
  std::string bytes = EncodeEvent(SampleEvent());
  EXPECT_EQ(bytes.size(), sizeof(TapWireEvent));
  auto msg = DecodeTapMessage(bytes);
  ASSERT_THAT(msg, IsOk());
  const auto* e = std::get_if<TapEvent>(&msg->body);
  ASSERT_NE(e, nullptr);
  TapEvent want = SampleEvent();
  EXPECT_EQ(e->timestamp_ms, want.timestamp_ms);
  EXPECT_EQ(e->pid, 42u);
  EXPECT_EQ(e->tid, 43u);
  EXPECT_EQ(e->channel, TapChannel::kTcp);
  EXPECT_EQ(e->family, kTapFamilyInet);
  EXPECT_EQ(e->address, "127.0.0.1");
  EXPECT_EQ(e->port, 8080);
  EXPECT_EQ(e->hostname, want.hostname);
  EXPECT_EQ(e->call_chain, want.call_chain);
  EXPECT_EQ(e->pattern_id, 7u);
  EXPECT_EQ(e->offset, 1234u);
  EXPECT_EQ(e->context, want.context);
  EXPECT_EQ(e->context_offset, 4u);
}

TEST(TapProtocolTest, TlsUnixAndAcquireChannelsPeerAndSplitRoundTrip) {
  for (TapChannel ch : {TapChannel::kTlsOpenssl, TapChannel::kTlsGnutls, TapChannel::kUnix,
                        TapChannel::kSysfs, TapChannel::kIoctl, TapChannel::kGetifaddrs}) {
    TapEvent in = SampleEvent();
    in.channel = ch;
    in.peer_exe = "/usr/bin/peer";
    in.split = true;
    auto msg = DecodeTapMessage(EncodeEvent(in));
    ASSERT_THAT(msg, IsOk());
    const auto* e = std::get_if<TapEvent>(&msg->body);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->channel, ch);
    EXPECT_EQ(e->peer_exe, "/usr/bin/peer");
    EXPECT_TRUE(e->split);
  }
  EXPECT_EQ(ChannelName(TapChannel::kTlsOpenssl), "tls-openssl");
  EXPECT_EQ(ChannelName(TapChannel::kTlsGnutls), "tls-gnutls");
  EXPECT_EQ(ChannelName(TapChannel::kSysfs), "sysfs");
  EXPECT_EQ(ChannelName(TapChannel::kIoctl), "ioctl");
  EXPECT_EQ(ChannelName(TapChannel::kGetifaddrs), "getifaddrs");
  // An unknown channel is rejected.
  std::string bytes = EncodeEvent(SampleEvent());
  bytes[offsetof(TapWireEvent, channel)] = static_cast<char>(kTapChannelLast + 1);
  EXPECT_FALSE(DecodeTapMessage(bytes).ok());
}

TEST(TapProtocolTest, CookieRoundTripAndValidation) {
  TapCookie in;
  in.timestamp_ms = 99;
  in.pid = 5;
  in.tid = 6;
  in.outgoing = false;
  in.channel = TapChannel::kTlsOpenssl;
  in.address = "10.0.0.2";
  in.port = 443;
  in.hostname = "ads.example.test";
  in.call_chain = {{"/usr/lib/libsdk.so", "ab"}};
  in.name = "uid";
  in.domain = "example.test";
  in.has_max_age = true;
  in.max_age_seconds = 31536000;
  std::string bytes = EncodeCookie(in);
  ASSERT_EQ(bytes.size(), sizeof(TapWireCookie));
  auto msg = DecodeTapMessage(bytes);
  ASSERT_THAT(msg, IsOk());
  const auto* c = std::get_if<TapCookie>(&msg->body);
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->outgoing);
  EXPECT_EQ(c->channel, TapChannel::kTlsOpenssl);
  EXPECT_EQ(c->address, "10.0.0.2");
  EXPECT_EQ(c->port, 443);
  EXPECT_EQ(c->hostname, "ads.example.test");
  EXPECT_THAT(c->call_chain, ElementsAre(TapModule{"/usr/lib/libsdk.so", "ab"}));
  EXPECT_EQ(c->name, "uid");
  EXPECT_EQ(c->domain, "example.test");
  EXPECT_TRUE(c->has_max_age);
  EXPECT_FALSE(c->session);
  EXPECT_EQ(c->max_age_seconds, 31536000);
  // Empty name, bad direction, over-long name: rejected.
  in.name = "";
  EXPECT_FALSE(DecodeTapMessage(EncodeCookie(in)).ok());
  in.name = "x";
  bytes = EncodeCookie(in);
  bytes[offsetof(TapWireCookie, direction)] = 9;
  EXPECT_FALSE(DecodeTapMessage(bytes).ok());
  bytes = EncodeCookie(in);
  uint16_t too_long = kTapCookieNameMax + 1;
  memcpy(bytes.data() + offsetof(TapWireCookie, name_len), &too_long, 2);
  EXPECT_FALSE(DecodeTapMessage(bytes).ok());
  bytes = EncodeCookie(in);
  too_long = kTapCookieDomainMax + 1;
  memcpy(bytes.data() + offsetof(TapWireCookie, domain_len), &too_long, 2);
  EXPECT_FALSE(DecodeTapMessage(bytes).ok());
  // A request cookie has no Domain attribute: a domain there is malformed.
  bytes = EncodeCookie(in);
  bytes[offsetof(TapWireCookie, direction)] = kTapCookieOut;
  EXPECT_FALSE(DecodeTapMessage(bytes).ok());
}

// Wire chain of a valid event, for tampering.
TapWireEvent WireOf(const TapEvent& e) {
  TapWireEvent w;
  std::string bytes = EncodeEvent(e);
  memcpy(&w, bytes.data(), sizeof(w));
  return w;
}

bool Decodes(const TapWireEvent& w) {
  return DecodeTapMessage(std::string(reinterpret_cast<const char*>(&w), sizeof(w))).ok();
}

TEST(TapProtocolTest, CallChainIsValidatedStrictly) {
  const TapWireEvent good = WireOf(SampleEvent());
  ASSERT_EQ(good.chain.count, 2);
  EXPECT_EQ(good.chain.entries[0].build_id_len, 20);
  EXPECT_EQ(good.chain.entries[1].build_id_len, 0);
  ASSERT_TRUE(Decodes(good));

  TapWireEvent w = good;
  w.chain.count = kTapChainMax + 1;
  EXPECT_FALSE(Decodes(w)) << "count beyond kTapChainMax";
  w = good;
  w.chain.count = 3;  // entry 2 is all zero: an empty path
  EXPECT_FALSE(Decodes(w)) << "empty path";
  w = good;
  w.chain.entries[0].path_len = kTapModuleMax + 1;
  EXPECT_FALSE(Decodes(w)) << "path longer than kTapModuleMax";
  w = good;
  w.chain.count = kTapChainMax;
  for (auto& e : w.chain.entries) e.path_len = kTapModuleMax;
  EXPECT_FALSE(Decodes(w)) << "paths beyond the path area";
  w = good;
  w.chain.entries[1].build_id_len = kTapBuildIdMax + 1;
  EXPECT_FALSE(Decodes(w)) << "build id too long";
  w = good;
  w.chain.paths[3] = '\0';
  EXPECT_FALSE(Decodes(w)) << "NUL inside a path";
  w = good;
  w.chain.entries[5].path_len = 1;
  EXPECT_FALSE(Decodes(w)) << "non-zero unused entry";
  w = good;
  w.chain.reserved1 = 1;
  EXPECT_FALSE(Decodes(w)) << "non-zero reserved field";
  w = good;
  w.chain.entries[0].reserved = 1;
  EXPECT_FALSE(Decodes(w)) << "non-zero reserved entry byte";

  // The same module twice: the tap lists each module once.
  TapEvent dup = SampleEvent();
  dup.call_chain = {{"/a.so", ""}, {"/a.so", ""}};
  EXPECT_FALSE(Decodes(WireOf(dup)));

  // An empty chain (fork window) is valid.
  TapEvent none = SampleEvent();
  none.call_chain.clear();
  auto msg = DecodeTapMessage(EncodeEvent(none));
  ASSERT_THAT(msg, IsOk());
  EXPECT_TRUE(std::get<TapEvent>(msg->body).call_chain.empty());
}

TEST(TapProtocolTest, EncoderTruncatesTheChainLikeTheTap) {
  TapEvent e = SampleEvent();
  e.call_chain.clear();
  for (int i = 0; i < 12; ++i) e.call_chain.push_back({"/lib/m" + std::to_string(i) + ".so", ""});
  auto msg = DecodeTapMessage(EncodeEvent(e));
  ASSERT_THAT(msg, IsOk());
  const auto& chain = std::get<TapEvent>(msg->body).call_chain;
  ASSERT_EQ(chain.size(), kTapChainMax);
  EXPECT_EQ(chain.front().path, "/lib/m0.so");  // innermost kept
  EXPECT_EQ(chain.back().path, "/lib/m7.so");

  // Paths that overflow the area: the chain ends before the first that does
  // not fit.
  e.call_chain = {{"/" + std::string(kTapModuleMax - 1, 'a'), ""},
                  {"/" + std::string(kTapModuleMax - 1, 'b'), ""},
                  {"/" + std::string(kTapModuleMax - 1, 'c'), ""}};
  msg = DecodeTapMessage(EncodeEvent(e));
  ASSERT_THAT(msg, IsOk());
  EXPECT_EQ(std::get<TapEvent>(msg->body).call_chain.size(), kTapChainPathBytes / kTapModuleMax);
}

TEST(TapProtocolTest, Ipv6Event) {
  TapEvent e = SampleEvent();
  e.address = "2001:db8::1";
  auto msg = DecodeTapMessage(EncodeEvent(e));
  ASSERT_THAT(msg, IsOk());
  EXPECT_EQ(std::get<TapEvent>(msg->body).address, "2001:db8::1");
  EXPECT_EQ(std::get<TapEvent>(msg->body).family, kTapFamilyInet6);
}

TEST(TapProtocolTest, HelloRoundTripParsesScenariosAndConsents) {
  TapHello h;
  h.pid = 10;
  h.ppid = 1;
  h.exe = "/usr/bin/app";
  auto msg = DecodeTapMessage(
      EncodeHello(h, "casting, ,discovery", "user_experience_program=false,ads=TRUE,bad,=x"));
  ASSERT_THAT(msg, IsOk());
  const auto& got = std::get<TapHello>(msg->body);
  EXPECT_EQ(got.pid, 10u);
  EXPECT_EQ(got.ppid, 1u);
  EXPECT_EQ(got.exe, "/usr/bin/app");
  EXPECT_TRUE(got.want_patterns);
  EXPECT_THAT(got.scenarios, ElementsAre("casting", "discovery"));
  EXPECT_THAT(got.consents, ElementsAre(Pair("ads", true), Pair("user_experience_program", false)));
}

TEST(TapProtocolTest, StatsRoundTrip) {
  TapStats s;
  s.pid = 5;
  s.events_dropped = 3;
  s.scan_cap_hits = 2;
  s.events_sent = 9;
  auto msg = DecodeTapMessage(EncodeStats(s));
  ASSERT_THAT(msg, IsOk());
  const auto& got = std::get<TapStats>(msg->body);
  EXPECT_EQ(got.pid, 5u);
  EXPECT_EQ(got.events_dropped, 3u);
  EXPECT_EQ(got.scan_cap_hits, 2u);
  EXPECT_EQ(got.events_sent, 9u);
}

TEST(TapProtocolTest, PatternsChunkedAndReassembled) {
  std::string db(100000, '\0');
  for (size_t i = 0; i < db.size(); ++i) db[i] = static_cast<char>(i * 7);
  auto chunks = EncodePatterns(db, 3, 1000);
  ASSERT_EQ(chunks.size(), 4u);
  std::string out;
  for (const auto& c : chunks) {
    EXPECT_LE(c.size(), kTapMaxMessageBytes);
    auto msg = DecodeTapMessage(c);
    ASSERT_THAT(msg, IsOk());
    const auto& chunk = std::get<TapPatternsChunk>(msg->body);
    EXPECT_EQ(chunk.total_bytes, db.size());
    EXPECT_EQ(chunk.offset, out.size());
    EXPECT_EQ(chunk.generation, 3u);
    EXPECT_EQ(chunk.pattern_count, 1000u);
    out += chunk.data;
  }
  EXPECT_EQ(out, db);
  auto empty = EncodePatterns("", 1, 0);
  ASSERT_EQ(empty.size(), 1u);
  auto msg = DecodeTapMessage(empty[0]);
  ASSERT_THAT(msg, IsOk());
  EXPECT_EQ(std::get<TapPatternsChunk>(msg->body).total_bytes, 0u);
}

TEST(TapProtocolTest, RejectsTruncatedAndGarbage) {
  std::string ev = EncodeEvent(SampleEvent());
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, ev.size() - 1}) {
    EXPECT_THAT(DecodeTapMessage(ev.substr(0, n)), StatusIs(absl::StatusCode::kInvalidArgument))
        << n;
  }
  EXPECT_THAT(DecodeTapMessage(ev + "x"), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string bad_magic = ev;
  bad_magic[0] ^= 1;
  EXPECT_THAT(DecodeTapMessage(bad_magic), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string bad_version = ev;
  bad_version[4] = 9;
  EXPECT_THAT(DecodeTapMessage(bad_version), StatusIs(absl::StatusCode::kInvalidArgument));
  bad_version[4] = 2;  // the single-module format before the call chain
  EXPECT_THAT(DecodeTapMessage(bad_version), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string bad_type = ev;
  bad_type[6] = 99;
  EXPECT_THAT(DecodeTapMessage(bad_type), StatusIs(absl::StatusCode::kInvalidArgument));

  // Out-of-range string length inside an otherwise well-framed event.
  TapWireEvent w;
  memcpy(&w, ev.data(), sizeof(w));
  w.host_len = kTapHostMax + 1;
  std::string bad_len(reinterpret_cast<const char*>(&w), sizeof(w));
  EXPECT_THAT(DecodeTapMessage(bad_len), StatusIs(absl::StatusCode::kInvalidArgument));
  memcpy(&w, ev.data(), sizeof(w));
  w.context_offset = 65;
  EXPECT_FALSE(DecodeTapMessage(std::string(reinterpret_cast<const char*>(&w), sizeof(w))).ok());
  memcpy(&w, ev.data(), sizeof(w));
  w.family = 77;
  EXPECT_FALSE(DecodeTapMessage(std::string(reinterpret_cast<const char*>(&w), sizeof(w))).ok());

  // Patterns chunk claiming more than it carries.
  std::string chunk = EncodePatterns("abcdef", 1, 1)[0];
  TapWirePatternsChunk c;
  memcpy(&c, chunk.data(), sizeof(c));
  c.offset = 4;
  memcpy(chunk.data(), &c, sizeof(c));
  EXPECT_FALSE(DecodeTapMessage(chunk).ok());
}

// Whatever a mutated datagram decodes to respects every bound of the wire
// format, and encodes back to what the decoder produced (the decoder accepts
// nothing the format cannot represent).
void ExpectWellFormed(const TapMessage& m) {
  auto chain_ok = [](const std::vector<TapModule>& chain) {
    EXPECT_LE(chain.size(), kTapChainMax);
    size_t bytes = 0;
    for (const TapModule& mod : chain) {
      EXPECT_FALSE(mod.path.empty());
      EXPECT_LE(mod.path.size(), kTapModuleMax);
      EXPECT_EQ(mod.path.find('\0'), std::string::npos);
      EXPECT_LE(mod.build_id.size(), 2 * kTapBuildIdMax);
      bytes += mod.path.size();
    }
    EXPECT_LE(bytes, kTapChainPathBytes);
  };
  if (const auto* e = std::get_if<TapEvent>(&m.body)) {
    EXPECT_LE(e->hostname.size(), kTapHostMax);
    EXPECT_LE(e->context.size(), kTapContextMax);
    EXPECT_LE(e->context_offset, e->context.size());
    EXPECT_LE(e->peer_exe.size(), kTapPeerMax);
    chain_ok(e->call_chain);
    auto again = DecodeTapMessage(EncodeEvent(*e));
    ASSERT_THAT(again, IsOk());
    const auto& e2 = std::get<TapEvent>(again->body);
    EXPECT_EQ(e2.call_chain, e->call_chain);
    EXPECT_EQ(e2.hostname, e->hostname);
    EXPECT_EQ(e2.context, e->context);
    EXPECT_EQ(e2.channel, e->channel);
  } else if (const auto* c = std::get_if<TapCookie>(&m.body)) {
    EXPECT_FALSE(c->name.empty());
    EXPECT_LE(c->name.size(), kTapCookieNameMax);
    EXPECT_LE(c->domain.size(), kTapCookieDomainMax);
    EXPECT_TRUE(c->domain.empty() || !c->outgoing);
    chain_ok(c->call_chain);
    auto again = DecodeTapMessage(EncodeCookie(*c));
    ASSERT_THAT(again, IsOk());
    const auto& c2 = std::get<TapCookie>(again->body);
    EXPECT_EQ(c2.call_chain, c->call_chain);
    EXPECT_EQ(c2.name, c->name);
    EXPECT_EQ(c2.domain, c->domain);
  } else if (const auto* h = std::get_if<TapHello>(&m.body)) {
    EXPECT_LE(h->exe.size(), kTapExeMax);
  } else if (const auto* p = std::get_if<TapPatternsChunk>(&m.body)) {
    EXPECT_LE(p->data.size(), kTapPatternChunkBytes);
    EXPECT_LE(p->offset + p->data.size(), p->total_bytes);
  }
}

TEST(TapProtocolTest, RandomMutationsDecodeOnlyToWellFormedMessages) {
  std::mt19937 rng(1234);
  TapCookie cookie;
  cookie.outgoing = false;
  cookie.name = "sid";
  cookie.domain = "example.test";
  cookie.call_chain = {{"/usr/lib/libsdk.so", "ab"}, {"/usr/bin/app", ""}};
  const std::string valid[] = {EncodeEvent(SampleEvent()), EncodeCookie(cookie),
                               EncodeStats(TapStats{}), EncodeHello(TapHello{}, "a", "b=true"),
                               EncodePatterns("xyz", 1, 1)[0]};
  // Mutations land in the header, the fixed fields and the chain alike.
  int decoded = 0, rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = valid[i % 5];
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t at = rng() % (rng() % 2 == 0 ? std::min<size_t>(64, s.size()) : s.size());
      s[at] = static_cast<char>(rng());
    }
    if (rng() % 8 == 0) s.resize(rng() % (s.size() + 1));
    auto msg = DecodeTapMessage(s);
    if (!msg.ok()) {
      EXPECT_EQ(msg.status().code(), absl::StatusCode::kInvalidArgument);
      ++rejected;
      continue;
    }
    ++decoded;
    ExpectWellFormed(*msg);
    if (::testing::Test::HasFailure()) break;
  }
  // Both outcomes happen: the mutations reach validated fields and fields
  // that may hold any value.
  EXPECT_GT(decoded, 1000);
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace idflow::agent

#include "agent/tap_protocol.h"

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
  e.module = "/usr/lib/libfoo_sdk.so";
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
  EXPECT_EQ(e->module, want.module);
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
  in.module = "/usr/lib/libsdk.so";
  in.name = "uid";
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
  EXPECT_EQ(c->module, "/usr/lib/libsdk.so");
  EXPECT_EQ(c->name, "uid");
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
  std::string bad_type = ev;
  bad_type[6] = 99;
  EXPECT_THAT(DecodeTapMessage(bad_type), StatusIs(absl::StatusCode::kInvalidArgument));

  // Out-of-range string length inside an otherwise well-framed event.
  TapWireEvent w;
  memcpy(&w, ev.data(), sizeof(w));
  w.module_len = kTapModuleMax + 1;
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

TEST(TapProtocolTest, RandomInputNeverCrashes) {
  std::mt19937 rng(1234);
  std::string valid[] = {EncodeEvent(SampleEvent()), EncodeStats(TapStats{}),
                         EncodeHello(TapHello{}, "a", "b=true"), EncodePatterns("xyz", 1, 1)[0]};
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = valid[i % 4];
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) s[rng() % s.size()] = static_cast<char>(rng());
    if (rng() % 8 == 0) s.resize(rng() % (s.size() + 1));
    ok += DecodeTapMessage(s).ok() ? 1 : 0;
  }
  SUCCEED() << ok << " mutated messages still decoded";
}

}  // namespace
}  // namespace idflow::agent

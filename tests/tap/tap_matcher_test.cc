// The agent's side of handed-over calls: call chains from the ring's module
// table (generations, the tap excluded) and what a malformed Payload record
// gets.
#include "agent/tap_matcher.h"

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace idflow::agent {
namespace {

TapRingModule Module(uint64_t lo, uint64_t hi, const std::string& path, uint64_t loaded,
                     uint64_t unloaded = 0, uint8_t flags = 0) {
  TapRingModule m;
  memset(&m, 0, sizeof(m));
  m.lo = lo;
  m.hi = hi;
  m.loaded_gen = loaded;
  m.unloaded_gen = unloaded;
  m.flags = flags;
  m.path_len = static_cast<uint16_t>(path.size());
  memcpy(m.path, path.data(), path.size());
  m.build_id_len = 2;
  m.build_id[0] = 0xab;
  m.build_id[1] = static_cast<uint8_t>(lo >> 12);
  return m;
}

std::vector<std::string> Paths(const TapWireChain& chain) {
  std::vector<std::string> out;
  size_t at = 0;
  for (size_t i = 0; i < chain.count; ++i) {
    out.emplace_back(chain.paths + at, chain.entries[i].path_len);
    at += chain.entries[i].path_len;
  }
  return out;
}

class ChainTest : public ::testing::Test {
 protected:
  // The program, the tap, libsdk.so unloaded by a dlclose at generation 3
  // and libother.so loaded at the same addresses afterwards.
  std::vector<TapRingModule> table_ = {
      Module(0x1000, 0x2000, "/usr/bin/app", 1),
      Module(0x3000, 0x4000, "/usr/lib/libidflow-tap.so", 1, 0, kTapModuleIsTap),
      Module(0x5000, 0x6000, "/opt/libsdk.so", 1, 3),
      Module(0x5000, 0x6000, "/opt/libother.so", 3),
      Module(0x7000, 0x8000, "/lib/libc.so.6", 1),
  };
  TapWireChain Resolve(const std::vector<uint64_t>& frames, uint64_t generation,
                       uint64_t caller = 0) {
    TapWireChain chain;
    memset(&chain, 0, sizeof(chain));
    ResolveTapChain(frames.data(), frames.size(), caller, generation, table_.data(),
                    static_cast<uint32_t>(table_.size()), &chain);
    return chain;
  }
};

TEST_F(ChainTest, InnermostFirstDistinctWithoutTheTap) {
  const TapWireChain chain = Resolve({0x3100, 0x5100, 0x1100, 0x5200, 0x7100, 0x9999}, 2);
  EXPECT_EQ(Paths(chain),
            (std::vector<std::string>{"/opt/libsdk.so", "/usr/bin/app", "/lib/libc.so.6"}));
  EXPECT_EQ(chain.entries[0].build_id_len, 2);
  EXPECT_EQ(chain.entries[0].build_id[1], 0x05);
}

// A record stamped before the dlclose names the object it ran in; one
// stamped after names the object loaded at the same addresses since.
TEST_F(ChainTest, GenerationsKeepUnloadedObjectsForEarlierRecords) {
  EXPECT_EQ(Paths(Resolve({0x5100}, 2)), std::vector<std::string>{"/opt/libsdk.so"});
  EXPECT_EQ(Paths(Resolve({0x5100}, 3)), std::vector<std::string>{"/opt/libother.so"});
  // Seen by a record before the table caught up with its dlopen.
  table_.push_back(Module(0xa000, 0xb000, "/opt/late.so", 5));
  EXPECT_EQ(Paths(Resolve({0xa100}, 4)), std::vector<std::string>{"/opt/late.so"});
}

// Found by fuzz_tap_payload: two entries with one path (an object loaded
// twice) gave a chain the decoder refuses; each path is listed once.
TEST_F(ChainTest, AnObjectLoadedTwiceIsListedOnce) {
  table_.push_back(Module(0xa000, 0xb000, "/usr/bin/app", 1));
  EXPECT_EQ(Paths(Resolve({0x1100, 0xa100, 0x7100}, 2)),
            (std::vector<std::string>{"/usr/bin/app", "/lib/libc.so.6"}));
}

TEST_F(ChainTest, NothingUnwoundFallsBackToTheCaller) {
  EXPECT_EQ(Paths(Resolve({}, 1, 0x1101)), std::vector<std::string>{"/usr/bin/app"});
  EXPECT_EQ(Resolve({0x3100}, 1).count, 0u);  // the tap alone, no caller: empty
}

TEST_F(ChainTest, AtMostEightModules) {
  table_.clear();
  std::vector<uint64_t> frames;
  for (uint64_t i = 0; i < 12; ++i) {
    table_.push_back(Module(0x10000 * (i + 1), 0x10000 * (i + 1) + 0x1000,
                            "/lib/l" + std::to_string(i) + ".so", 1));
    frames.push_back(0x10000 * (i + 1) + 0x10);
  }
  EXPECT_EQ(Resolve(frames, 1).count, kTapChainMax);
}

std::string Payload(const std::string& data, const std::string& carry = "") {
  TapWirePayload p;
  memset(&p, 0, sizeof(p));
  p.carry_len = static_cast<uint16_t>(carry.size());
  p.data_len = static_cast<uint32_t>(data.size());
  p.channel = kTapChannelTcp;
  FillTapHeader(&p.header, kTapMsgPayload,
                static_cast<uint32_t>(sizeof(p) + carry.size() + data.size()));
  std::string r(reinterpret_cast<const char*>(&p), sizeof(p));
  return r + carry + data;
}

TEST(TapPayloadMatcherTest, MalformedRecordsAreRefused) {
  TapPayloadMatcher matcher;
  std::vector<std::string> events;
  auto match = [&](const std::string& r) { return matcher.Match(r, nullptr, nullptr, 0, &events); };
  EXPECT_TRUE(match(Payload("hello")).ok());  // no database: nothing to find
  std::string r = Payload("hello");
  EXPECT_FALSE(match(r.substr(0, 40)).ok());
  EXPECT_FALSE(match(r + "x").ok());  // length disagrees with the header
  EXPECT_FALSE(match(Payload("")).ok());
  EXPECT_FALSE(match(Payload("x", std::string(kTapMaxPatternBytes, 'c'))).ok());
  TapWirePayload p;
  memcpy(&p, r.data(), sizeof(p));
  p.frame_count = kTapFramesMax + 1;
  std::string bad_frames = r;
  memcpy(bad_frames.data(), &p, sizeof(p));
  EXPECT_FALSE(match(bad_frames).ok());
  memcpy(&p, r.data(), sizeof(p));
  p.channel = kTapChannelLast + 1;
  std::string bad_channel = r;
  memcpy(bad_channel.data(), &p, sizeof(p));
  EXPECT_FALSE(match(bad_channel).ok());
  EXPECT_TRUE(events.empty());
}

}  // namespace
}  // namespace idflow::agent

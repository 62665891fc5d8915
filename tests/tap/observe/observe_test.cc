// The tap core end to end inside one process, without LD_PRELOAD: hooked
// calls handed to agent/tap/observe/ with a pattern database, records read
// back from this process's ring with the agent's reader (handed-over calls
// matched by the agent's TapPayloadMatcher). Runs under the sanitizer
// stages (the .so never does).
#include "agent/tap/observe/observe.h"

#include <hs/hs.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <variant>
#include <vector>

#include "agent/pattern_db.h"
#include "agent/tap/channel/agent_channel.h"
#include "agent/tap/core/state.h"
#include "agent/tap/fd/fd_table.h"
#include "agent/tap_matcher.h"
#include "agent/tap_protocol.h"
#include "agent/tap_ring.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow::tap {
namespace {

using ::testing::ElementsAre;

// The core as Init() leaves it with `db` from the agent, and a reader of its
// ring standing in for the agent.
class TapCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent::Identity id;
    id.digest_key = "k";
    id.identifiers = {{"mac_address", "eth0", "00:1a:2b:3c:4d:5e", "identity_file"}};
    auto db = agent::PatternDb::Build(id);
    ASSERT_TRUE(db.ok());
    patterns_ = std::make_shared<const agent::PatternDb>(std::move(*db));
    ASSERT_EQ(hs_deserialize_database(patterns_->serialized().data(),
                                      patterns_->serialized().size(), &g_db),
              HS_SUCCESS);
    ASSERT_EQ(hs_alloc_scratch(g_db, &g_proto_scratch), HS_SUCCESS);
    g_ring_slots = 256;
    g_pid = getpid();
    g_ring_mode = true;
    ASSERT_TRUE(CreateRing());
    auto reader = agent::TapRingReader::Attach(dup(RingFd()), dup(DoorbellFd()));
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = std::move(*reader);
    g_state.store(kReady);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sockets_), 0);
  }

  void TearDown() override {
    g_state.store(kUninit);
    reader_.reset();
    DestroyRing();
    for (int fd : sockets_) {
      ResetFd(fd);
      close(fd);
    }
    hs_free_scratch(t_scratch);
    free(t_gather);
    t_scratch = nullptr;
    t_gather = nullptr;
    hs_free_scratch(g_proto_scratch);
    hs_free_database(g_db);
    g_proto_scratch = nullptr;
    g_db = nullptr;
  }

  std::vector<agent::TapMessage> Drain() {
    std::vector<agent::TapMessage> out;
    std::string record;
    while (reader_->Next(&record) == agent::TapRingReader::Read::kRecord) {
      ++records_;
      agent::TapWireHeader h;
      memcpy(&h, record.data(), sizeof(h));
      std::vector<std::string> wire;
      if (h.type == agent::kTapMsgPayload) {
        ++payloads_;
        absl::Status st =
            matcher_.Match(record, patterns_, reader_->modules(), reader_->module_count(), &wire);
        EXPECT_TRUE(st.ok()) << st;
      } else {
        wire.push_back(record);
      }
      for (const std::string& w : wire) {
        auto msg = agent::DecodeTapMessage(w);
        EXPECT_TRUE(msg.ok()) << msg.status();
        if (msg.ok()) out.push_back(*msg);
      }
      reader_->Release();
    }
    return out;
  }

  std::vector<agent::TapEvent> Events() {
    std::vector<agent::TapEvent> out;
    for (const auto& m : Drain()) {
      if (const auto* e = std::get_if<agent::TapEvent>(&m.body)) out.push_back(*e);
    }
    return out;
  }

  std::shared_ptr<const agent::PatternDb> patterns_;
  agent::TapPayloadMatcher matcher_;
  std::unique_ptr<agent::TapRingReader> reader_;
  int sockets_[2] = {-1, -1};
  int records_ = 0;   // ring records read
  int payloads_ = 0;  // of which handed-over calls
};

const std::string kBytes("\x00\x1a\x2b\x3c\x4d\x5e", 6);

TEST_F(TapCoreTest, ByteFormWithALeadingZeroIsReported) {
  const std::string payload = "bin:" + kBytes + ":end";
  ObserveSend(sockets_[0], payload.data(), payload.size(), nullptr, 0, nullptr);
  std::vector<agent::TapEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(patterns_->Lookup(events[0].pattern_id)->encoding, "bytes");
  EXPECT_EQ(events[0].offset, 4u);
  EXPECT_EQ(events[0].channel, agent::TapChannel::kUnix);
  EXPECT_FALSE(events[0].split);
}

TEST_F(TapCoreTest, IdentifierSplitAcrossTwoSendsIsFoundOnce) {
  const std::string mac = "mac=00:1a:2b:3c:4d:5e&";
  ObserveSend(sockets_[0], mac.data(), 10, nullptr, 0, nullptr);
  EXPECT_TRUE(Events().empty());
  ObserveSend(sockets_[0], mac.data() + 10, mac.size() - 10, nullptr, 0, nullptr);
  std::vector<agent::TapEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].split);
  EXPECT_EQ(patterns_->Lookup(events[0].pattern_id)->encoding, "raw");
}

// Small calls are matched inline: one without an identifier costs no
// record; one with an identifier is handed over whole and matched again by
// the agent (which resolves the call chain).
TEST_F(TapCoreTest, SmallCallWithoutIdentifierStaysInTheApp) {
  const std::string clean = "k=v&x=1";
  ObserveSend(sockets_[0], clean.data(), clean.size(), nullptr, 0, nullptr);
  EXPECT_TRUE(Events().empty());
  EXPECT_EQ(records_, 0);
  const std::string mac = "mac=00:1a:2b:3c:4d:5e";
  ObserveSend(sockets_[0], mac.data(), mac.size(), nullptr, 0, nullptr);
  EXPECT_EQ(Events().size(), 1u);
  EXPECT_EQ(payloads_, 1);
}

// No scan cap: a call of 200 KiB is handed over in chunks and every byte is
// matched; an identifier across a chunk boundary is one match of the call
// (not split), at its offset in the call.
TEST_F(TapCoreTest, LargeCallIsMatchedWholeAcrossChunks) {
  std::string big(200 * 1024, 'x');
  const std::string mac = "00:1a:2b:3c:4d:5e";
  const size_t across = agent::kTapPayloadChunkMax - 5;  // straddles the first chunk's end
  const size_t late = 190 * 1024;
  big.replace(across, mac.size(), mac);
  big.replace(late, mac.size(), mac);
  ObserveSend(sockets_[0], big.data(), big.size(), nullptr, 0, nullptr);
  std::vector<agent::TapEvent> events = Events();
  EXPECT_EQ(payloads_, 4);  // 200 KiB in chunks of 64 KiB
  std::vector<uint64_t> offsets;
  for (const auto& e : events) {
    if (patterns_->Lookup(e.pattern_id)->encoding != "raw") continue;
    offsets.push_back(e.offset);
    EXPECT_FALSE(e.split);
    EXPECT_EQ(e.context.substr(e.context_offset, mac.size()), mac);
  }
  EXPECT_THAT(offsets, ElementsAre(across, late));
}

// Without the database (agent slow or absent at start-up) every call is
// handed over; a split across a call matched here and one handed over is
// still found, since the tap keeps the stream's carry either way.
TEST_F(TapCoreTest, WithoutDatabaseEveryCallIsHandedOverAndSplitsAreFound) {
  const std::string mac = "mac=00:1a:2b:3c:4d:5e&";
  ObserveSend(sockets_[0], mac.data(), 10, nullptr, 0, nullptr);  // inline, no match
  EXPECT_EQ(records_, 0);
  hs_database_t* db = g_db;
  g_db = nullptr;
  ObserveSend(sockets_[0], mac.data() + 10, mac.size() - 10, nullptr, 0, nullptr);
  g_db = db;
  std::vector<agent::TapEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].split);
  EXPECT_EQ(payloads_, 1);
}

// An identifier read from the system while the tap has no database is
// handed over too, and reported as an acquisition.
TEST_F(TapCoreTest, AcquisitionWithoutDatabaseIsMatchedByTheAgent) {
  hs_database_t* db = g_db;
  g_db = nullptr;
  const std::string mac = "00:1a:2b:3c:4d:5e";
  OnAcquire(agent::kTapChannelSysfs, mac.data(), mac.size(), nullptr);
  g_db = db;
  std::vector<agent::TapEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].action, agent::TapAction::kAcquire);
  EXPECT_EQ(events[0].channel, agent::TapChannel::kSysfs);
  EXPECT_EQ(events[0].family, 0);
  EXPECT_EQ(events[0].offset, 0u);
}

// A full ring never blocks: the record is counted in the shared `dropped`
// counter, and the ring takes records again once the agent read it.
TEST_F(TapCoreTest, FullRingCountsDropsAndRecovers) {
  const std::string big(agent::kTapPayloadChunkMax, 'y');
  const uint64_t before = g_counters.events_dropped.load();
  for (int i = 0; i < 14; ++i) {  // 22 slots each: the 256-slot ring holds 11
    ObserveSend(sockets_[0], big.data(), big.size(), nullptr, 0, nullptr);
  }
  uint64_t upto = 0;
  EXPECT_EQ(reader_->PendingDrops(&upto), 3u);
  EXPECT_EQ(g_counters.events_dropped.load() - before, 3u);
  Events();
  EXPECT_EQ(records_, 11);
  ObserveSend(sockets_[0], big.data(), big.size(), nullptr, 0, nullptr);
  Events();
  EXPECT_EQ(records_, 12);
}

std::vector<std::string> CookieNames(const std::vector<agent::TapMessage>& msgs,
                                     std::vector<int64_t>* max_ages = nullptr) {
  std::vector<std::string> out;
  for (const auto& m : msgs) {
    if (const auto* c = std::get_if<agent::TapCookie>(&m.body)) {
      out.push_back(c->name);
      if (max_ages != nullptr) max_ages->push_back(c->has_max_age ? c->max_age_seconds : -1);
    }
  }
  return out;
}

// Issue 10: Set-Cookie was parsed only when the response started in the
// buffer read. A response whose header block comes in several reads, one
// header cut in two, gives every cookie, with its attributes.
TEST_F(TapCoreTest, SetCookieAcrossReads) {
  const uint8_t tls = agent::kTapChannelTlsOpenssl;
  const int fd = sockets_[1];
  for (const std::string read :
       {"HTTP/1.1 200 OK\r\nSet-Cookie: first=1; Max-Age=60\r\nX-Pad: y\r\nSet-Cook",
        "ie: second=2; Max-", "Age=120\r\n", "Set-Cookie: third=3\r\n\r\nSet-Cookie: body=4\r\n"}) {
    ObserveReceive(fd, read.data(), read.size(), tls, nullptr);
  }
  std::vector<int64_t> max_ages;
  EXPECT_THAT(CookieNames(Drain(), &max_ages), ElementsAre("first", "second", "third"));
  EXPECT_THAT(max_ages, ElementsAre(60, 120, -1));
  // The header block ended: the stream's carry is free, a body read that
  // looks like headers is not parsed.
  EXPECT_FALSE(g_responses.Has(fd, 1));
  const std::string later = "Set-Cookie: late=5\r\n\r\n";
  ObserveReceive(fd, later.data(), later.size(), tls, nullptr);
  EXPECT_TRUE(CookieNames(Drain()).empty());
}

TEST_F(TapCoreTest, ResponseWithoutAStreamIsParsedAlone) {
  // fd unknown (TLS session without a socket): the read is parsed as it is,
  // the cut last header included, and nothing is kept.
  const std::string read = "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2; Max-";
  ObserveReceive(-1, read.data(), read.size(), agent::kTapChannelTlsGnutls, nullptr);
  EXPECT_THAT(CookieNames(Drain()), ElementsAre("a", "b"));
}

TEST_F(TapCoreTest, ClosingTheFdForgetsItsCarries) {
  const std::string start = "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Max-";
  ObserveReceive(sockets_[1], start.data(), start.size(), agent::kTapChannelTlsOpenssl, nullptr);
  EXPECT_TRUE(g_responses.Has(sockets_[1], 1));
  ResetFd(sockets_[1]);
  EXPECT_FALSE(g_responses.Has(sockets_[1], 1));
  const std::string rest = "Age=5\r\n\r\n";
  ObserveReceive(sockets_[1], rest.data(), rest.size(), agent::kTapChannelTlsOpenssl, nullptr);
  EXPECT_TRUE(CookieNames(Drain()).empty());
}

}  // namespace
}  // namespace idflow::tap

// Control requests on the tap socket: strict decoding (a change is applied
// whole or refused) and the `idflowctl context set` argument syntax.
#include "agent/control_protocol.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

ContextSetRequest Sample() {
  ContextSetRequest r;
  r.pid = 1234;
  r.patch.scenarios = std::vector<std::string>{"casting", "car_connection"};
  r.patch.consents = {{"user_experience_program", false}, {"location", true}};
  r.patch.run_id = "ci-42";
  return r;
}

TEST(ControlProtocolTest, ContextSetRoundTrips) {
  absl::StatusOr<std::string> frame = EncodeContextSet(Sample());
  ASSERT_TRUE(frame.ok()) << frame.status();
  EXPECT_TRUE(IsControlRequest(*frame));
  absl::StatusOr<ControlRequest> req = DecodeControlRequest(*frame);
  ASSERT_TRUE(req.ok()) << req.status();
  const auto& set = std::get<ContextSetRequest>(*req);
  EXPECT_EQ(set.pid, 1234u);
  EXPECT_EQ(set.patch, Sample().patch);
}

TEST(ControlProtocolTest, UnsetPartsStayUnset) {
  ContextSetRequest r;
  r.patch.consents["location"] = false;
  auto req = DecodeControlRequest(*EncodeContextSet(r));
  ASSERT_TRUE(req.ok()) << req.status();
  const auto& set = std::get<ContextSetRequest>(*req);
  EXPECT_EQ(set.pid, 0u);
  EXPECT_FALSE(set.patch.scenarios.has_value());
  EXPECT_FALSE(set.patch.run_id.has_value());
}

TEST(ControlProtocolTest, FlushAndReplyRoundTrip) {
  FlushRunRequest f{"qa-1-2", 5000};
  auto req = DecodeControlRequest(*EncodeFlushRun(f));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(std::get<FlushRunRequest>(*req).run_id, "qa-1-2");
  EXPECT_EQ(std::get<FlushRunRequest>(*req).timeout_ms, 5000u);
  ControlReply r;
  r.code = absl::StatusCode::kDeadlineExceeded;
  r.text = "2 still connected";
  r.seq = 77;
  r.open_processes = 2;
  r.agent_id = "agent-1";
  auto back = DecodeControlReply(EncodeControlReply(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->code, r.code);
  EXPECT_EQ(back->text, r.text);
  EXPECT_EQ(back->seq, 77u);
  EXPECT_EQ(back->open_processes, 2u);
  EXPECT_EQ(back->agent_id, "agent-1");
}

TEST(ControlProtocolTest, WatchTlsRoundTripsAndIsStrict) {
  WatchTlsRequest w;
  w.pid = 4242;
  w.exe = "/usr/bin/node";
  w.under_tap = true;
  w.context.scenarios = std::vector<std::string>{"casting"};
  w.context.consents = {{"analytics", false}};
  w.context.run_id = "qa-7";
  absl::StatusOr<std::string> frame = EncodeWatchTls(w);
  ASSERT_TRUE(frame.ok()) << frame.status();
  EXPECT_TRUE(IsControlRequest(*frame));
  auto req = DecodeControlRequest(*frame);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(std::get<WatchTlsRequest>(*req), w);

  // Only absolute program paths, a pid, known flags.
  WatchTlsRequest relative = w;
  relative.exe = "node";
  EXPECT_FALSE(EncodeWatchTls(relative).ok());
  TapWireWatchTls raw;
  memcpy(&raw, frame->data(), sizeof(raw));
  auto decode = [](TapWireWatchTls x) {
    return DecodeControlRequest(std::string(reinterpret_cast<const char*>(&x), sizeof(x)));
  };
  TapWireWatchTls bad = raw;
  bad.pid = 0;
  EXPECT_FALSE(decode(bad).ok());
  bad = raw;
  bad.exe[0] = 'x';
  EXPECT_FALSE(decode(bad).ok());
  bad = raw;
  bad.flags |= 1u << 20;
  EXPECT_FALSE(decode(bad).ok());
  bad = raw;
  bad.exe_len = kTapModuleMax + 1;
  EXPECT_FALSE(decode(bad).ok());
  bad = raw;
  bad.flags &= ~kContextHasRunId;  // a run id without its flag
  EXPECT_FALSE(decode(bad).ok());
  EXPECT_FALSE(DecodeControlRequest(frame->substr(0, frame->size() - 1)).ok());
}

TEST(ControlProtocolTest, MalformedFramesAreRefused) {
  std::string good = *EncodeContextSet(Sample());
  // Short, long, wrong magic, version, flags, lengths.
  EXPECT_FALSE(DecodeControlRequest(good.substr(0, good.size() - 1)).ok());
  EXPECT_FALSE(DecodeControlRequest(good + "x").ok());
  auto patched = [&](size_t off, const void* v, size_t n) {
    std::string s = good;
    std::memcpy(s.data() + off, v, n);
    return DecodeControlRequest(s);
  };
  uint32_t bad32 = 0xdeadbeef;
  uint16_t bad16 = 0xffff;
  EXPECT_FALSE(patched(offsetof(TapWireContextSet, header.magic), &bad32, 4).ok());
  EXPECT_FALSE(patched(offsetof(TapWireContextSet, header.version), &bad16, 2).ok());
  EXPECT_FALSE(patched(offsetof(TapWireContextSet, flags), &bad32, 4).ok());
  EXPECT_FALSE(patched(offsetof(TapWireContextSet, scenarios_len), &bad16, 2).ok());
  EXPECT_FALSE(patched(offsetof(TapWireContextSet, run_id_len), &bad16, 2).ok());
  // A consent that is not KEY=true|false is refused, not skipped.
  ContextSetRequest r;
  TapWireContextSet w;
  std::memcpy(&w, good.data(), sizeof(w));
  const char consent[] = "a=maybe";
  std::memcpy(w.consents, consent, sizeof(consent) - 1);
  w.consents_len = sizeof(consent) - 1;
  auto st = DecodeControlRequest(std::string(reinterpret_cast<const char*>(&w), sizeof(w)));
  EXPECT_THAT(st.status().message(), HasSubstr("a=maybe"));
  // A run id with characters outside the set.
  FlushRunRequest f{"bad id", 1};
  EXPECT_FALSE(EncodeFlushRun(f).ok());
}

TEST(ControlProtocolTest, TapMessagesAreNotControlRequests) {
  TapHello hello;
  EXPECT_FALSE(IsControlRequest(EncodeHello(hello, "", "")));
  EXPECT_FALSE(IsControlRequest("short"));
}

TEST(ParseContextAssignmentsTest, Syntax) {
  auto p = ParseContextAssignments(
      {"scenario=casting,car_connection", "consent.user_experience_program=false", "run_id=r1"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p->scenarios, ElementsAre("casting", "car_connection"));
  EXPECT_THAT(p->consents, ElementsAre(Pair("user_experience_program", false)));
  EXPECT_EQ(*p->run_id, "r1");
  auto none = ParseContextAssignments({"scenario="});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->scenarios->empty());
  for (const char* bad : {"scenario", "consent.x=maybe", "consent.=true", "colour=red",
                          "run_id=has space", "consent.a,b=true"}) {
    EXPECT_FALSE(ParseContextAssignments({bad}).ok()) << bad;
  }
  EXPECT_FALSE(ParseContextAssignments({}).ok());
}

AgentStatus SampleStatus() {
  AgentStatus s;
  s.agent_id = "agent-7f3a";
  s.version = "0.1.0 (commit 1a2b3c4, Release)";
  s.collector = "collector.example:7443";
  s.connected = true;
  s.now_unix_ms = 1764550000000;
  s.spool_events = 42;
  s.spool_bytes = 8192;
  s.pending_events = 3;
  s.last_seq = 1042;
  s.oldest_unsent_unix_ms = 1764549990000;
  s.last_ack_seq = 1000;
  s.last_ack_unix_ms = 1764549995000;
  for (size_t i = 1; i < std::size(kStatusDropNames); ++i) s.drops[i] = 10 * i;
  s.rss_bytes = 15 << 20;
  s.cpu_permille = 17;
  s.memory_level = 2;
  s.cpu_level = 1;
  s.max_rss_bytes = 48 << 20;
  s.max_cpu_permille = 250;
  s.watchdog_steps = 3;
  s.watchdog_shed = 5;
  return s;
}

TEST(ControlProtocolTest, StatusRequestIsStrict) {
  const std::string frame = EncodeStatusRequest();
  EXPECT_EQ(frame.size(), sizeof(TapWireStatusRequest));
  EXPECT_TRUE(IsStatusRequest(frame));
  EXPECT_FALSE(IsControlRequest(frame)) << "status travels apart from ContextSet/FlushRun";
  EXPECT_TRUE(DecodeStatusRequest(frame).ok());
  EXPECT_FALSE(DecodeStatusRequest(frame + "x").ok());
  EXPECT_FALSE(DecodeStatusRequest(frame.substr(0, frame.size() - 1)).ok());
  std::string flagged = frame;
  flagged[sizeof(TapWireHeader)] = 1;  // unknown flags
  EXPECT_FALSE(DecodeStatusRequest(flagged).ok());
  std::string bad_length = frame;
  TapWireHeader h;
  memcpy(&h, bad_length.data(), sizeof(h));
  h.length += 1;
  memcpy(bad_length.data(), &h, sizeof(h));
  EXPECT_FALSE(DecodeStatusRequest(bad_length).ok());
}

TEST(ControlProtocolTest, StatusReplyRoundTrips) {
  ControlReply reply;
  reply.status = SampleStatus();
  const std::string frame = EncodeControlReply(reply);
  EXPECT_EQ(frame.size(), sizeof(TapWireStatusReply));
  EXPECT_LE(frame.size(), kControlReplyMaxBytes);
  absl::StatusOr<ControlReply> back = DecodeControlReply(frame);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->code, absl::StatusCode::kOk);
  ASSERT_TRUE(back->status.has_value());
  EXPECT_EQ(*back->status, SampleStatus());
  EXPECT_EQ(back->agent_id, "agent-7f3a");
  // A plain reply still decodes without a status.
  absl::StatusOr<ControlReply> plain = DecodeControlReply(EncodeControlReply(ControlReply{}));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->status.has_value());
}

TEST(ControlProtocolTest, StatusReplyIsValidatedLikeTheOtherFrames) {
  ControlReply reply;
  reply.status = SampleStatus();
  const std::string frame = EncodeControlReply(reply);
  EXPECT_FALSE(DecodeControlReply(frame.substr(0, frame.size() - 1)).ok());
  EXPECT_FALSE(DecodeControlReply(frame + '\0').ok());
  TapWireStatusReply w;
  memcpy(&w, frame.data(), sizeof(w));
  TapWireStatusReply bad = w;
  bad.agent_id_len = kControlAgentIdMax + 1;
  EXPECT_FALSE(DecodeControlReply(std::string(reinterpret_cast<char*>(&bad), sizeof(bad))).ok());
  bad = w;
  bad.collector_len = kStatusCollectorMax + 1;
  EXPECT_FALSE(DecodeControlReply(std::string(reinterpret_cast<char*>(&bad), sizeof(bad))).ok());
  bad = w;
  bad.flags = 2;
  EXPECT_FALSE(DecodeControlReply(std::string(reinterpret_cast<char*>(&bad), sizeof(bad))).ok());
  bad = w;
  bad.code = 99;
  EXPECT_FALSE(DecodeControlReply(std::string(reinterpret_cast<char*>(&bad), sizeof(bad))).ok());
  bad = w;
  bad.header.magic ^= 1;
  EXPECT_FALSE(DecodeControlReply(std::string(reinterpret_cast<char*>(&bad), sizeof(bad))).ok());
}

TEST(ControlProtocolTest, StatusStringsTooLongAreCut) {
  ControlReply reply;
  reply.status = SampleStatus();
  reply.status->collector = std::string(1000, 'c');
  absl::StatusOr<ControlReply> back = DecodeControlReply(EncodeControlReply(reply));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->status->collector.size(), kStatusCollectorMax);
}

}  // namespace
}  // namespace idflow::agent

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

}  // namespace
}  // namespace idflow::agent

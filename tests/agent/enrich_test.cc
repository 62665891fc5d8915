// Agent enrichment: tap events and cookies become wire events carrying the
// call chain (never a module or SDK of the agent's choosing) and typed
// cookie fields; the chain is part of the aggregation key.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "agent/agent.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;
namespace fs = std::filesystem;

class EnrichTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/enrich-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    fs::create_directories(dir_ + "/sys");  // no sysfs identifiers
    std::ofstream(dir_ + "/identity.yaml") << R"(
device: {id: qa-phone-0001, class: qa-phone, firmware: "1.2.3"}
digest_key: "00112233"
identifiers:
  - {kind: oaid, value: "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8"}
)";
    AgentOptions o;
    o.collectors = {"127.0.0.1:1"};
    o.socket_path = dir_ + "/agent.sock";
    o.spool_dir = dir_ + "/spool";
    o.identity_file = dir_ + "/identity.yaml";
    o.sysfs_root = dir_ + "/sys";
    auto agent = Agent::Create(o);
    ASSERT_THAT(agent, IsOk());
    agent_ = std::move(*agent);
    ASSERT_GT(agent_->patterns().size(), 0u);
    who_.pid = 10;
    who_.exe = "/usr/bin/app";
  }
  void TearDown() override {
    agent_.reset();
    fs::remove_all(dir_);
  }

  TapEvent Event() const {
    TapEvent e;
    e.pid = 10;
    e.timestamp_ms = 1700000000000;
    e.channel = TapChannel::kTcp;
    e.address = "10.0.0.2";
    e.port = 443;
    e.hostname = "api.example.test";
    e.pattern_id = 0;
    e.call_chain = {
        {"/usr/lib/libz.so.1", "1f95"}, {"/opt/app/libsdk.so", "ab12"}, {"/usr/bin/app", ""}};
    return e;
  }

  std::string dir_;
  std::unique_ptr<Agent> agent_;
  TapHello who_;
};

TEST_F(EnrichTest, EventCarriesTheChainAndNoModuleOrSdk) {
  idflow::v1::Event out = agent_->Enrich(who_, Event());
  const auto& origin = out.origin();
  ASSERT_EQ(origin.call_chain_size(), 3);
  EXPECT_EQ(origin.call_chain(0).path(), "/usr/lib/libz.so.1");
  EXPECT_EQ(origin.call_chain(0).build_id(), "1f95");
  EXPECT_EQ(origin.call_chain(1).path(), "/opt/app/libsdk.so");
  EXPECT_EQ(origin.call_chain(2).path(), "/usr/bin/app");
  EXPECT_EQ(origin.call_chain(2).build_id(), "");
  // Responsibility is the collector's: the agent names neither.
  EXPECT_EQ(origin.module(), "");
  EXPECT_EQ(origin.module_build_id(), "");
  EXPECT_EQ(origin.sdk(), "");
  EXPECT_EQ(origin.exe(), "/usr/bin/app");
  EXPECT_EQ(out.identifier().kind(), "oaid");
  EXPECT_FALSE(out.has_cookie());
}

TEST_F(EnrichTest, ForkWindowEventHasAnEmptyChain) {
  TapEvent e = Event();
  e.call_chain.clear();
  idflow::v1::Event out = agent_->Enrich(who_, e);
  EXPECT_EQ(out.origin().call_chain_size(), 0);
  EXPECT_EQ(out.origin().module(), "");
}

TEST_F(EnrichTest, AggregationKeyIncludesTheChain) {
  TapEvent a = Event();
  TapEvent b = Event();
  EXPECT_EQ(Agent::AggregationKey(agent_->Enrich(who_, a)),
            Agent::AggregationKey(agent_->Enrich(who_, b)));
  // Same innermost module, another SDK further out: not the same flow.
  b.call_chain[1].path = "/opt/app/libother_sdk.so";
  EXPECT_NE(Agent::AggregationKey(agent_->Enrich(who_, a)),
            Agent::AggregationKey(agent_->Enrich(who_, b)));
  // Order matters too.
  b = Event();
  std::swap(b.call_chain[0], b.call_chain[1]);
  EXPECT_NE(Agent::AggregationKey(agent_->Enrich(who_, a)),
            Agent::AggregationKey(agent_->Enrich(who_, b)));
  b = Event();
  b.call_chain.pop_back();
  EXPECT_NE(Agent::AggregationKey(agent_->Enrich(who_, a)),
            Agent::AggregationKey(agent_->Enrich(who_, b)));
}

TEST_F(EnrichTest, CookiesAreTyped) {
  TapCookie set;
  set.pid = 10;
  set.outgoing = false;
  set.channel = TapChannel::kTlsOpenssl;
  set.hostname = "www.example.test";
  set.name = "uid";
  set.has_max_age = true;
  set.max_age_seconds = 31536000;
  set.domain = "example.test";
  set.call_chain = {{"/usr/lib/libcurl.so.4", ""}, {"/usr/bin/app", ""}};
  idflow::v1::Event out = agent_->EnrichCookie(who_, set);
  ASSERT_TRUE(out.has_cookie());
  EXPECT_EQ(out.cookie().direction(), idflow::v1::COOKIE_SET_BY_SERVER);
  EXPECT_TRUE(out.cookie().has_max_age());
  EXPECT_EQ(out.cookie().max_age_seconds(), 31536000);
  EXPECT_FALSE(out.cookie().session());
  EXPECT_EQ(out.cookie().domain(), "example.test");
  EXPECT_EQ(out.cookie().name(), "uid");
  EXPECT_EQ(out.destination().hostname(), "www.example.test");
  EXPECT_EQ(out.channel(), "tls-openssl");
  ASSERT_EQ(out.origin().call_chain_size(), 2);
  EXPECT_EQ(out.origin().call_chain(0).path(), "/usr/lib/libcurl.so.4");
  EXPECT_EQ(out.origin().module(), "");
  EXPECT_FALSE(out.has_identifier());

  TapCookie sent;
  sent.outgoing = true;
  sent.name = "a";
  out = agent_->EnrichCookie(who_, sent);
  EXPECT_EQ(out.cookie().direction(), idflow::v1::COOKIE_SENT_BY_CLIENT);
  EXPECT_FALSE(out.cookie().has_max_age());
  EXPECT_EQ(out.cookie().domain(), "");

  TapCookie session = set;
  session.has_max_age = false;
  session.session = true;
  session.max_age_seconds = 99;  // meaningless without has_max_age
  out = agent_->EnrichCookie(who_, session);
  EXPECT_TRUE(out.cookie().session());
  EXPECT_FALSE(out.cookie().has_max_age());
  EXPECT_EQ(out.cookie().max_age_seconds(), 0);
}

}  // namespace
}  // namespace idflow::agent

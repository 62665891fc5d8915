// Component test of delivery: a real Spool and Sender against an in-process
// Collector with a real SQLite file and the real policies, over loopback gRPC.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include "absl/strings/str_cat.h"
#include "agent/sender.h"
#include "agent/spool.h"
#include "collector/collector.h"
#include "common/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idflow/v1/query.grpc.pb.h"
#include "tests/testing/status_matchers.h"

namespace idflow {
namespace {

using ::idflow::testing::IsOk;

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/delivery-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
}

std::vector<idflow::v1::Event> Events(int n) {
  std::vector<idflow::v1::Event> out(n);
  for (auto& e : out) {
    e.mutable_device()->set_id("dev-1");
    e.mutable_origin()->add_call_chain()->set_path("/lib/x86_64-linux-gnu/libc.so.6");
    e.mutable_origin()->add_call_chain()->set_path("/opt/app/lib/libidm_sdk.so");
    e.set_action(idflow::v1::ACTION_TRANSMIT);
    e.set_channel("tcp");
    e.mutable_destination()->set_hostname("idm.discovery.mi.com");
    e.mutable_identifier()->set_kind("mac_address");
    e.mutable_identifier()->set_encoding("raw");
    e.mutable_identifier()->set_digest(std::string(32, 'd'));
    e.mutable_context()->add_scenarios("device_discovery");
  }
  return out;
}

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    collector::CollectorOptions o;
    o.listen = "127.0.0.1:0";
    o.store_url = "sqlite:" + dir_ + "/idflow.db";
    o.policies_dir = std::string(IDFLOW_SOURCE_DIR) + "/policies";
    auto c = collector::Collector::Start(o);
    ASSERT_THAT(c, IsOk());
    collector_ = std::move(*c);
    agent::SpoolOptions so;
    so.dir = dir_ + "/spool";
    auto s = agent::Spool::Open(so);
    ASSERT_THAT(s, IsOk());
    spool_ = std::move(*s);
  }

  agent::SenderOptions SenderOpts(std::vector<std::string> collectors) {
    agent::SenderOptions o;
    o.collectors = std::move(collectors);
    o.min_backoff = std::chrono::milliseconds(10);
    o.max_backoff = std::chrono::milliseconds(100);
    o.device.set_id("dev-1");
    return o;
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(collector_->grpc_port()); }

  uint64_t StoredCount() {
    auto n = collector_->store().CountEvents({});
    return n.ok() ? *n : 0;
  }

  std::string dir_;
  std::unique_ptr<collector::Collector> collector_;
  std::unique_ptr<agent::Spool> spool_;
};

TEST_F(DeliveryTest, EveryEventStoredOnceAndJudged) {
  agent::Sender sender(SenderOpts({address()}), spool_.get());
  sender.Start();
  for (int i = 0; i < 10; ++i) {
    auto batch = Events(50);
    ASSERT_THAT(spool_->Append(&batch), IsOk());
    sender.Notify(spool_->last_seq());
  }
  ASSERT_TRUE(sender.WaitAcked(500, std::chrono::seconds(30)));
  EXPECT_EQ(StoredCount(), 500u);
  EXPECT_EQ(spool_->acked(), 500u);
  auto groups = collector_->store().QueryVerdicts({});
  ASSERT_THAT(groups, IsOk());
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].count, 500u);
  EXPECT_EQ((*groups)[0].sample.sdk, "IDM SDK");
  EXPECT_EQ((*groups)[0].sample.module, "/opt/app/lib/libidm_sdk.so");
  EXPECT_EQ((*groups)[0].sample.verdict, "clear");
  EXPECT_EQ((*groups)[0].sample.finding, "clear");
}

// The agent's build goes with its hello: the collector keeps it with the
// agent (Query.ListAgents, the dashboard) and shows it on /metrics next to
// its own build.
TEST_F(DeliveryTest, TheAgentsVersionReachesTheAgentListAndMetrics) {
  agent::Sender sender(SenderOpts({address()}), spool_.get());
  sender.Start();
  auto batch = Events(1);
  ASSERT_THAT(spool_->Append(&batch), IsOk());
  sender.Notify(spool_->last_seq());
  ASSERT_TRUE(sender.WaitAcked(1, std::chrono::seconds(30)));

  auto stub = idflow::v1::Query::NewStub(
      grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  idflow::v1::ListAgentsRequest req;
  idflow::v1::ListAgentsResponse resp;
  grpc::Status st = stub->ListAgents(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.agents_size(), 1);
  EXPECT_EQ(resp.agents(0).agent_version(), VersionString());

  const std::string metrics = collector_->MetricsText();
  EXPECT_THAT(metrics, ::testing::HasSubstr(
                           absl::StrCat("idflow_build_info{version=\"", Version(), "\",commit=\"",
                                        GitCommit(), "\",build_type=\"", BuildType(), "\"} 1\n")));
  EXPECT_THAT(metrics, ::testing::HasSubstr(absl::StrCat(
                           "idflow_agent_info{agent=\"", spool_->agent_id(),
                           "\",device=\"dev-1\",version=\"", VersionString(), "\"} 1\n")));
}

// What the agent claims about the SDK is a hint: a Lebo module labelled
// "IDM SDK" is still judged as Lebo.
TEST_F(DeliveryTest, AgentSdkClaimNeverOverridesTheCollectorsBindings) {
  agent::Sender sender(SenderOpts({address()}), spool_.get());
  sender.Start();
  auto batch = Events(1);
  auto* origin = batch[0].mutable_origin();
  origin->clear_call_chain();
  origin->add_call_chain()->set_path("/opt/app/lib/liblebo_sdk.so");
  origin->set_module("/opt/app/lib/libidm_sdk.so");
  origin->set_sdk("IDM SDK");
  batch[0].mutable_destination()->set_hostname("cast.hpplay.com.cn");
  ASSERT_THAT(spool_->Append(&batch), IsOk());
  sender.Notify(spool_->last_seq());
  ASSERT_TRUE(sender.WaitAcked(1, std::chrono::seconds(30)));
  auto events = collector_->store().QueryEvents({});
  ASSERT_THAT(events, IsOk());
  ASSERT_EQ(events->size(), 1u);
  const store::EventRecord& r = (*events)[0];
  EXPECT_EQ(r.sdk, "Lebo SDK");
  EXPECT_EQ(r.module, "/opt/app/lib/liblebo_sdk.so");
  EXPECT_EQ(r.sdk_hint, "IDM SDK");
  EXPECT_EQ(r.verdict, "omitted") << r.explanation;
}

TEST_F(DeliveryTest, ARestoredSpoolResumesAfterWhatIsStored) {
  {
    agent::Sender sender(SenderOpts({address()}), spool_.get());
    sender.Start();
    auto batch = Events(20);
    ASSERT_THAT(spool_->Append(&batch), IsOk());
    sender.Notify(spool_->last_seq());
    ASSERT_TRUE(sender.WaitAcked(20, std::chrono::seconds(30)));
  }
  // A second spool in another dir reuses the agent id and holds seqs 1..30
  // (as after restoring an old copy of the spool). The collector says 1..20
  // are stored; the sender resumes at 21, so nothing is stored or counted
  // twice, and the store's own check would refuse a resend of 1..20.
  agent::SpoolOptions so;
  so.dir = dir_ + "/spool2";
  ASSERT_EQ(::mkdir(so.dir.c_str(), 0700), 0);
  {
    FILE* f = std::fopen((so.dir + "/agent_id").c_str(), "w");
    std::fputs(spool_->agent_id().c_str(), f);
    std::fclose(f);
  }
  auto again = agent::Spool::Open(so);
  ASSERT_THAT(again, IsOk());
  auto batch = Events(30);
  ASSERT_THAT((*again)->Append(&batch), IsOk());
  agent::Sender sender(SenderOpts({address()}), again->get());
  sender.Start();
  sender.Notify(30);
  ASSERT_TRUE(sender.WaitAcked(30, std::chrono::seconds(30)));
  EXPECT_EQ(StoredCount(), 30u);
  EXPECT_EQ(collector_->counters().events.load(), 30u) << "each event counted once";
  EXPECT_EQ(sender.stats().events_sent, 10u) << "only 21..30 went over the wire";
}

TEST_F(DeliveryTest, FailsOverToTheNextCollector) {
  // Nothing listens on port 1.
  agent::Sender sender(SenderOpts({"127.0.0.1:1", address()}), spool_.get());
  sender.Start();
  auto batch = Events(5);
  ASSERT_THAT(spool_->Append(&batch), IsOk());
  sender.Notify(spool_->last_seq());
  ASSERT_TRUE(sender.WaitAcked(5, std::chrono::seconds(30)));
  EXPECT_EQ(StoredCount(), 5u);
  EXPECT_GE(sender.stats().failures, 1u);
}

TEST_F(DeliveryTest, SpoolsWhileCollectorIsAwayThenDelivers) {
  int port = collector_->grpc_port();
  collector_.reset();
  agent::Sender sender(SenderOpts({"127.0.0.1:" + std::to_string(port)}), spool_.get());
  sender.Start();
  auto batch = Events(7);
  ASSERT_THAT(spool_->Append(&batch), IsOk());
  sender.Notify(spool_->last_seq());
  EXPECT_FALSE(sender.WaitAcked(7, std::chrono::milliseconds(300)));
  EXPECT_EQ(spool_->acked(), 0u);
  collector::CollectorOptions o;
  o.listen = "127.0.0.1:" + std::to_string(port);
  o.store_url = "sqlite:" + dir_ + "/idflow.db";
  o.policies_dir = std::string(IDFLOW_SOURCE_DIR) + "/policies";
  auto c = collector::Collector::Start(o);
  ASSERT_THAT(c, IsOk());
  collector_ = std::move(*c);
  ASSERT_TRUE(sender.WaitAcked(7, std::chrono::seconds(60)));
  EXPECT_EQ(StoredCount(), 7u);
}

}  // namespace
}  // namespace idflow

namespace idflow {
namespace {

idflow::v1::Event CookieEvent(const std::string& name, int64_t max_age, bool session) {
  idflow::v1::Event e;
  e.mutable_device()->set_id("dev-1");
  e.mutable_origin()->add_call_chain()->set_path("/usr/lib/libcurl.so.4");
  e.mutable_origin()->add_call_chain()->set_path("/usr/bin/curl");
  e.set_action(idflow::v1::ACTION_TRANSMIT);
  e.set_channel("tls-openssl");
  e.mutable_destination()->set_hostname("account.xiaomi.com");
  e.mutable_cookie()->set_name(name);
  e.mutable_cookie()->set_max_age_seconds(max_age);
  e.mutable_cookie()->set_has_max_age(!session);
  e.mutable_cookie()->set_session(session);
  e.mutable_cookie()->set_direction(idflow::v1::COOKIE_SET_BY_SERVER);
  return e;
}

TEST_F(DeliveryTest, CookieEventsAreJudgedAgainstCookiePolicies) {
  agent::Sender sender(SenderOpts({address()}), spool_.get());
  sender.Start();
  std::vector<idflow::v1::Event> batch = {CookieEvent("userId", 0, true),
                                          CookieEvent("userId", 86400 * 30, false),
                                          CookieEvent("tracker_uid", 3600, false)};
  ASSERT_THAT(spool_->Append(&batch), IsOk());
  sender.Notify(spool_->last_seq());
  ASSERT_TRUE(sender.WaitAcked(3, std::chrono::seconds(30)));
  auto events = collector_->store().QueryEvents({});
  ASSERT_THAT(events, IsOk());
  ASSERT_EQ(events->size(), 3u);
  std::map<uint64_t, store::EventRecord> by_seq;
  for (const auto& e : *events) by_seq[e.seq] = e;
  EXPECT_EQ(by_seq[1].verdict, "clear") << by_seq[1].explanation;
  EXPECT_EQ(by_seq[1].data_type, "cookie");
  EXPECT_TRUE(by_seq[1].has_cookie);
  EXPECT_EQ(by_seq[1].cookie.name, "userId");
  EXPECT_EQ(by_seq[1].finding, "clear");
  EXPECT_EQ(by_seq[1].statement, "xiaomi-account-cookies");
  EXPECT_EQ(by_seq[2].verdict, "lifetime_exceeded") << by_seq[2].explanation;
  EXPECT_EQ(by_seq[3].verdict, "undeclared_cookie") << by_seq[3].explanation;
  EXPECT_EQ(by_seq[3].cookie.direction, "set_by_server");
  EXPECT_EQ(by_seq[3].finding, "violation");
  // The collector decides who set it: curl behind libcurl (a runtime library).
  EXPECT_EQ(by_seq[3].module, "/usr/bin/curl");
}

}  // namespace
}  // namespace idflow

// Fleet deployment, end to end: several collectors on one real PostgreSQL
// (started by tests/testing/postgres_server.h), agents failing over between
// them, and the one-collector rule of SQLite. Real processes on loopback;
// the accounting identity of the delivery suite must hold across a collector
// killed under load:
//     sum of stored counts + drops the agent reported == events emitted,
// read through either collector's Query API.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "collector/collector.h"
#include "gtest/gtest.h"
#include "idflow/v1/ingest.grpc.pb.h"
#include "tests/e2e/harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/status_matchers.h"

namespace idflow::e2e {
namespace {

using ::idflow::testing::IsOk;
using std::chrono::seconds;

std::string Payload() { return std::string("id=") + Stack::kOaid + "&v=1"; }
constexpr int kBasePort = 39200;  // UDP sendto needs no receiver

// One PostgreSQL server for the whole binary; a fresh database per test.
std::string FreshDatabase(const std::string& prefix) {
  auto server = ::idflow::testing::PostgresServer::Shared();
  EXPECT_THAT(server, IsOk());
  if (!server.ok()) return "";
  auto url = (*server)->CreateFreshDatabase(prefix);
  EXPECT_THAT(url, IsOk());
  return url.ok() ? *url : "";
}

class FleetE2e : public ::testing::Test {
 protected:
  void TearDown() override {
    sender_.reset();
    a_.agent.reset();
    a_.collector.reset();
    b_.collector.reset();
  }

  std::unique_ptr<Process> Emit(long count, int flows, int rate) {
    std::map<std::string, std::string> env = {{"LD_PRELOAD", LibDir() + "/libidflow-tap.so"},
                                              {"IDFLOW_SOCKET", a_.socket}};
    std::vector<std::string> argv = {BinDir() + "/tap_test_sender", "flows",
                                     std::to_string(kBasePort),     Payload(),
                                     std::to_string(count),         std::to_string(flows),
                                     std::to_string(rate)};
    return std::make_unique<Process>(argv, a_.dir + "/sender", env);
  }

  bool SenderPrinted(const std::string& line) {
    return WaitFor([&] { return absl::StrContains(sender_->Stdout(), line); }, seconds(90));
  }

  static int64_t Accounted(const std::string& address) {
    int64_t stored = StoredTapEvents(address), drops = ReportedDrops(address);
    return stored < 0 || drops < 0 ? -1 : stored + drops;
  }

  std::string Diagnostics(const std::string& address) {
    std::string detail;
    int64_t drops = ReportedDrops(address, &detail);
    return "stored=" + std::to_string(StoredTapEvents(address)) +
           " drops=" + std::to_string(drops) + "\n" + detail +
           "sender: " + (sender_ ? sender_->Stdout() + sender_->Stderr() : "") +
           "\nagent: " + (a_.agent ? a_.agent->Stderr() : "") +
           "\ncollector a: " + (a_.collector ? a_.collector->Stderr() : "") +
           "\ncollector b: " + (b_.collector ? b_.collector->Stderr() : "");
  }

  Stack a_, b_;  // a_ holds the agent; both hold a collector
  std::unique_ptr<Process> sender_;
};

// Two collectors on one database, the agent configured with both in failover
// order; the first is killed (SIGKILL) mid-ingest. The second takes the
// stream over from what the database holds: nothing lost, nothing twice, and
// a restarted first collector answers queries with the same totals.
TEST_F(FleetE2e, TwoCollectorsOneKilledUnderLoad) {
  const std::string url = FreshDatabase("fleet_kill");
  ASSERT_FALSE(url.empty());
  std::string why;
  a_.store_url = b_.store_url = url;
  a_.collector_args = {"--collector-id", "collector-a"};
  b_.collector_args = {"--collector-id", "collector-b"};
  ASSERT_TRUE(a_.StartCollector(&why)) << why;
  ASSERT_TRUE(b_.StartCollector(&why)) << why;
  ASSERT_TRUE(a_.StartAgent(&why, a_.collector_address() + "," + b_.collector_address())) << why;

  constexpr long kEvents = 50000;
  sender_ = Emit(kEvents, 50, 20000);
  ASSERT_TRUE(SenderPrinted("sent 20000")) << Diagnostics(b_.collector_address());
  a_.collector->Stop(9);
  ASSERT_TRUE(SenderPrinted("done 50000")) << Diagnostics(b_.collector_address());
  ASSERT_EQ(sender_->Wait(), 0);
  // The agent failed over: the second collector took its stream.
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(b_.collector->Stderr(), "connected"); }, seconds(60)))
      << Diagnostics(b_.collector_address());

  const std::string b_addr = b_.collector_address();
  ASSERT_TRUE(WaitFor([&] { return Accounted(b_addr) == kEvents; }, seconds(120)))
      << "emitted " << kEvents << " but " << Diagnostics(b_addr);
  // Drop counters travel at most every second: a duplicate delivered late
  // would show one round later.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // stability only
  EXPECT_EQ(Accounted(b_addr), kEvents) << Diagnostics(b_addr);

  // Either collector sees everything: the first one, restarted, on the same
  // database.
  ASSERT_TRUE(a_.StartCollector(&why)) << why;
  EXPECT_EQ(Accounted(a_.collector_address()), kEvents) << Diagnostics(a_.collector_address());
  EXPECT_EQ(StoredTapEvents(a_.collector_address()), StoredTapEvents(b_addr));
}

// The live stream of an agent is one across every collector on the
// database: a hello on the second collector supersedes the stream on the
// first, whose next batch ends with ABORTED and is never acked.
TEST_F(FleetE2e, OneLiveStreamPerAgentAcrossCollectors) {
  const std::string url = FreshDatabase("fleet_claim");
  ASSERT_FALSE(url.empty());
  auto start = [&](const std::string& id) {
    collector::CollectorOptions o;
    o.listen = "127.0.0.1:0";
    o.store_url = url;
    o.collector_id = id;
    o.policies_dir = SourceDir() + "/policies";
    return collector::Collector::Start(o);
  };
  auto c1 = start("collector-1");
  ASSERT_THAT(c1, IsOk());
  auto c2 = start("collector-2");
  ASSERT_THAT(c2, IsOk());

  using ::idflow::v1::AgentMessage;
  using ::idflow::v1::CollectorMessage;
  struct Client {
    explicit Client(int port) {
      stub = idflow::v1::Ingest::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                             grpc::InsecureChannelCredentials()));
      ctx.set_deadline(std::chrono::system_clock::now() + seconds(30));
      stream = stub->Stream(&ctx);
    }
    uint64_t Hello(const std::string& agent) {
      AgentMessage m;
      m.mutable_hello()->set_agent_id(agent);
      m.mutable_hello()->mutable_device()->set_id("dev-fleet");
      stream->Write(m);
      CollectorMessage r;
      return stream->Read(&r) && r.has_hello_ack() ? r.hello_ack().stored_up_to() : UINT64_MAX;
    }
    void Batch(const std::string& agent, uint64_t first, uint64_t n) {
      AgentMessage m;
      for (uint64_t s = first; s < first + n; ++s) {
        auto* e = m.mutable_batch()->add_events();
        e->set_agent_id(agent);
        e->set_seq(s);
        e->mutable_device()->set_id("dev-fleet");
        e->mutable_origin()->add_call_chain()->set_path("/opt/app/lib/libidm_sdk.so");
        e->set_action(idflow::v1::ACTION_TRANSMIT);
        e->set_channel("tcp");
        e->mutable_destination()->set_hostname("idm.discovery.mi.com");
        e->mutable_identifier()->set_kind("mac_address");
        e->mutable_identifier()->set_encoding("raw");
        e->mutable_identifier()->set_digest(std::string(64, 'd'));
      }
      stream->Write(m);
    }
    grpc::Status Drain(uint64_t* max_ack) {
      CollectorMessage m;
      while (stream->Read(&m)) {
        if (m.has_ack()) *max_ack = std::max(*max_ack, m.ack().up_to());
      }
      return stream->Finish();
    }
    grpc::Status Close(uint64_t* max_ack) {
      stream->WritesDone();
      return Drain(max_ack);
    }
    std::unique_ptr<idflow::v1::Ingest::Stub> stub;
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<AgentMessage, CollectorMessage>> stream;
  };

  Client on1((*c1)->grpc_port());
  ASSERT_EQ(on1.Hello("fleet-agent"), 0u);
  Client on2((*c2)->grpc_port());
  ASSERT_EQ(on2.Hello("fleet-agent"), 0u);
  on1.Batch("fleet-agent", 1, 5);
  uint64_t ack1 = 0;
  EXPECT_EQ(on1.Drain(&ack1).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ack1, 0u);
  on2.Batch("fleet-agent", 1, 5);
  uint64_t ack2 = 0;
  EXPECT_TRUE(on2.Close(&ack2).ok());
  EXPECT_EQ(ack2, 5u);
  // Both collectors read the same store.
  store::VerdictFilter f;
  f.agent_id = "fleet-agent";
  EXPECT_EQ(*(*c1)->store().CountEvents(f), 5u);
  EXPECT_EQ(*(*c2)->store().CountEvents(f), 5u);
  EXPECT_GE((*c1)->counters().superseded_streams.load(), 1u);
  (*c1)->Shutdown();
  (*c2)->Shutdown();
}

// SQLite is the one-collector store: a second collector on the same file
// refuses to start, saying why and what to use instead.
TEST_F(FleetE2e, SecondCollectorOnOneSqliteFileIsRefused) {
  std::string why;
  ASSERT_TRUE(a_.StartCollector(&why)) << why;
  std::string out, err;
  int rc = RunToEnd({BinDir() + "/idflow-collector", "--listen", "127.0.0.1:0", "--store",
                     "sqlite:" + a_.db_path, "--policies", SourceDir() + "/policies"},
                    &out, &err);
  EXPECT_NE(rc, 0) << err;
  EXPECT_TRUE(absl::StrContains(err, "in use by another collector")) << err;
  EXPECT_TRUE(absl::StrContains(err, "postgresql://")) << err;
  EXPECT_TRUE(a_.collector->Running()) << a_.collector->Stderr();
}

}  // namespace
}  // namespace idflow::e2e

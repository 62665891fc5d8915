// Issue 8, agent side: nothing lost, nothing forged. Real processes: a
// collector, an agent, and tap_test_sender under the tap emitting UDP
// datagrams that each carry the device's OAID once (one tap event each).
// Every case ends with the accounting identity
//     sum of stored counts + drops the agent reported == events emitted
// read through the Query API (ListEvents pages, ListAgents drops).
#include <dirent.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "agent/tap_protocol.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace idflow::e2e {
namespace {

using std::chrono::seconds;

std::string Payload() { return std::string("id=") + Stack::kOaid + "&v=1"; }

// Ports nobody listens on: UDP sendto needs no receiver.
constexpr int kBasePort = 39000;

class DeliveryE2e : public ::testing::Test {
 protected:
  void TearDown() override {
    sender_.reset();
    stack_.agent.reset();
    stack_.collector.reset();
    if (!mounted_.empty()) ::umount2(mounted_.c_str(), MNT_DETACH);
  }

  // tap_test_sender flows ... under the tap; `hold`: it exits only once the
  // file <dir>/release exists.
  std::unique_ptr<Process> Emit(long count, int flows, int rate, bool hold,
                                const std::map<std::string, std::string>& extra_env = {}) {
    std::map<std::string, std::string> env = {{"LD_PRELOAD", LibDir() + "/libidflow-tap.so"},
                                              {"IDFLOW_SOCKET", stack_.socket}};
    env.insert(extra_env.begin(), extra_env.end());
    std::vector<std::string> argv = {BinDir() + "/tap_test_sender", "flows",
                                     std::to_string(kBasePort),     Payload(),
                                     std::to_string(count),         std::to_string(flows),
                                     std::to_string(rate)};
    if (hold) argv.push_back(stack_.dir + "/release");
    return std::make_unique<Process>(argv, stack_.dir + "/sender-" + std::to_string(++runs_), env);
  }
  void Release() { WriteText(stack_.dir + "/release", "go\n"); }

  bool SenderPrinted(const std::string& line, std::chrono::milliseconds timeout = seconds(60)) {
    return WaitFor([&] { return absl::StrContains(sender_->Stdout(), line); }, timeout);
  }

  std::string Diagnostics() {
    std::string detail;
    int64_t drops = ReportedDrops(stack_.collector_address(), &detail);
    return "stored=" + std::to_string(StoredTapEvents(stack_.collector_address())) +
           " drops=" + std::to_string(drops) + "\n" + detail +
           "sender: " + (sender_ ? sender_->Stdout() + sender_->Stderr() : "") +
           "\nagent: " + (stack_.agent ? stack_.agent->Stderr() : "") +
           "\ncollector: " + (stack_.collector ? stack_.collector->Stderr() : "");
  }

  // Waits for stored + drops == emitted, then checks it stays so (a
  // duplicate delivered late would break it).
  void ExpectAccounted(int64_t emitted) {
    const std::string addr = stack_.collector_address();
    auto total = [&] {
      int64_t stored = StoredTapEvents(addr), drops = ReportedDrops(addr);
      return stored < 0 || drops < 0 ? int64_t{-1} : stored + drops;
    };
    bool reached = WaitFor([&] { return total() == emitted; }, seconds(90));
    ASSERT_TRUE(reached) << "emitted " << emitted << " but " << Diagnostics();
    // Drop counters travel at most every second: one more round.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // stability only
    EXPECT_EQ(total(), emitted) << Diagnostics();
  }

  Stack stack_;
  std::unique_ptr<Process> sender_;
  std::string mounted_;
  int runs_ = 0;
};

// One datagram is one event: the identity the other cases rest on.
TEST_F(DeliveryE2e, OneSendIsOneEvent) {
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  sender_ = Emit(1, 1, 0, false);
  ASSERT_EQ(sender_->Wait(), 0) << Diagnostics();
  ExpectAccounted(1);
  EXPECT_EQ(ReportedDrops(stack_.collector_address()), 0) << Diagnostics();
}

// (b) 20,000 events from one process in under a second: the ring absorbs
// the burst (the old 10-message socket queue lost 63 % of 2,000).
TEST_F(DeliveryE2e, BurstOf20000FromOneProcess) {
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  sender_ = Emit(20000, 50, 0, false);
  ASSERT_EQ(sender_->Wait(), 0) << Diagnostics();
  std::string out = sender_->Stdout();
  long n = 0;
  double ms = 0;
  ASSERT_EQ(std::sscanf(out.substr(out.find("done")).c_str(), "done %ld %lf", &n, &ms), 2) << out;
  // The sender's pace depends on the machine (2 shared cores in CI): a
  // slower run is still checked, and says so.
  if (ms >= 1000) std::printf("note: the burst took %.0f ms on this machine\n", ms);
  ExpectAccounted(20000);
  std::string detail;
  ReportedDrops(stack_.collector_address(), &detail);
  std::printf("burst: %.0f ms; %s", ms, detail.c_str());
}

// A ring far too small for the burst: most events are dropped by the tap,
// and every one of them is counted (in the ring's shared counter, which the
// agent reads and reports).
TEST_F(DeliveryE2e, FullRingIsCountedNotSilent) {
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  sender_ = Emit(20000, 50, 0, false, {{"IDFLOW_TAP_RING_SLOTS", "64"}});
  ASSERT_EQ(sender_->Wait(), 0) << Diagnostics();
  ExpectAccounted(20000);
  std::string detail;
  ReportedDrops(stack_.collector_address(), &detail);
  std::printf("64-slot ring: %s", detail.c_str());
}

// (a) kill -9 of the agent twice in the middle of a 100k-event stream with
// the collector down; then both back. The journal replays what the agent had
// received; the ring keeps what it had not read; the ring cursor in the
// journal keeps either from being delivered twice.
TEST_F(DeliveryE2e, AgentKilledTwiceMidStreamWithCollectorDown) {
  std::string why;
  ASSERT_TRUE(stack_.StartCollector(&why)) << why;
  const int port = stack_.grpc_port;
  stack_.collector->Stop(9);
  ASSERT_TRUE(stack_.StartAgent(&why, stack_.collector_address())) << why;
  sender_ = Emit(100000, 50, 20000, /*hold=*/true, {{"IDFLOW_TAP_RING_SLOTS", "16384"}});
  ASSERT_TRUE(SenderPrinted("sent 30000")) << Diagnostics();
  stack_.agent->Stop(9);
  ASSERT_TRUE(stack_.StartAgent(&why, stack_.collector_address())) << why;
  ASSERT_TRUE(SenderPrinted("sent 60000")) << Diagnostics();
  stack_.agent->Stop(9);
  ASSERT_TRUE(stack_.StartAgent(&why, stack_.collector_address())) << why;
  ASSERT_TRUE(SenderPrinted("done 100000")) << Diagnostics();
  ASSERT_TRUE(stack_.StartCollector(&why, port)) << why;
  ExpectAccounted(100000);
  Release();
  EXPECT_EQ(sender_->Wait(), 0);
  // Whether the last agent found journaled events depends on where the kill
  // landed relative to a flush; the accounting above is what must hold (it
  // fails without the journal replay: 99,552 + 0 != 100,000).
}

// (d) kill -9 of the collector mid-ingest: the store holds every event once.
TEST_F(DeliveryE2e, CollectorKilledMidIngest) {
  std::string why;
  ASSERT_TRUE(stack_.Start(&why)) << why;
  const int port = stack_.grpc_port;
  sender_ = Emit(50000, 50, 20000, /*hold=*/true);
  ASSERT_TRUE(SenderPrinted("sent 20000")) << Diagnostics();
  stack_.collector->Stop(9);
  ASSERT_TRUE(stack_.StartCollector(&why, port)) << why;
  ASSERT_TRUE(SenderPrinted("done 50000")) << Diagnostics();
  ExpectAccounted(50000);
  Release();
  EXPECT_EQ(sender_->Wait(), 0);
}

// (c) The spool on a 2 MiB tmpfs: fill it with the collector down (disk
// drops, counted, no spinning), free it (the collector acks, acked segments
// go), recover (later events are stored).
TEST_F(DeliveryE2e, TinySpoolFilesystemFillFreeRecover) {
  std::string why;
  ASSERT_TRUE(stack_.StartCollector(&why)) << why;
  const int port = stack_.grpc_port;
  stack_.collector->Stop(9);
  const std::string spool = stack_.dir + "/spool";
  ASSERT_EQ(::mkdir(spool.c_str(), 0700), 0);
  if (::mount("tmpfs", spool.c_str(), "tmpfs", 0, "size=2m") != 0) {
    GTEST_SKIP() << "cannot mount a 2 MiB tmpfs here (" << std::strerror(errno)
                 << "): the tiny-filesystem case needs root; the spool's fault-injection tests "
                    "(tests/agent/spool_test.cc) cover disk full without it";
  }
  mounted_ = spool;
  // A 4 MiB bound over a 2 MiB disk: 1 MiB segments, and the disk fills
  // before the bound is reached.
  stack_.agent_args = {"--spool-max-mb", "4"};
  ASSERT_TRUE(stack_.StartAgent(&why, stack_.collector_address())) << why;
  sender_ = Emit(40000, 1000, 10000, /*hold=*/true);
  ASSERT_TRUE(SenderPrinted("done 40000")) << Diagnostics();
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(stack_.agent->Stderr(), "spool append failed");
  })) << "the disk never filled: "
      << Diagnostics();
  ASSERT_TRUE(stack_.StartCollector(&why, port)) << why;  // free
  Release();
  ASSERT_EQ(sender_->Wait(), 0);
  ExpectAccounted(40000);
  const int64_t stored_before = StoredTapEvents(stack_.collector_address());
  std::string detail;
  ReportedDrops(stack_.collector_address(), &detail);
  EXPECT_FALSE(absl::StrContains(detail, "disk=0 ")) << "no disk drops counted: " << detail;
  // Recover: new events are spooled and stored once space is back (the
  // spool retries a failed write at most a second later).
  sender_ = Emit(5000, 50, 5000, false);
  ASSERT_EQ(sender_->Wait(), 0);
  ExpectAccounted(45000);
  // How many land depends on when the spool's retry sees the space (at most
  // a second): on a slow (sanitized) build most of the burst may already be
  // counted as disk drops. Recovery means later events are stored again.
  EXPECT_GT(StoredTapEvents(stack_.collector_address()), stored_before) << Diagnostics();
}

// Issue 13: a head unit offline for hours. Its traffic model: 10 tap events
// a second (car-connection heartbeats, analytics, discovery) for 8 hours,
// 288,000 events, replayed 1,440 times faster with the collector
// unreachable throughout. The spool's bound (4 MiB, a head unit's flash
// budget for it) is far below what 8 hours take, so the oldest segments go,
// counted. The spool's files stay within the bound all along (sampled while
// it fills); once the collector is back, stored + counted drops == emitted.
TEST_F(DeliveryE2e, EightHoursOfflineThenBack) {
  constexpr long kPerSecond = 10, kHours = 8;
  constexpr long kEmitted = kPerSecond * 3600 * kHours;
  constexpr uint64_t kBound = 4ull << 20;
  std::string why;
  ASSERT_TRUE(stack_.StartCollector(&why)) << why;
  const int port = stack_.grpc_port;
  stack_.collector->Stop(9);
  stack_.agent_args = {"--spool-max-mb", std::to_string(kBound >> 20)};
  ASSERT_TRUE(stack_.StartAgent(&why, stack_.collector_address())) << why;

  // The spool's segments, sampled every 20 ms until the collector drained
  // them: their sum is what the bound promises.
  std::atomic<bool> sampling{true};
  std::atomic<uint64_t> peak{0};
  std::atomic<int> samples{0};
  std::thread sampler([&] {
    while (sampling.load()) {
      uint64_t bytes = 0;
      if (DIR* d = ::opendir(stack_.spool_dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
          if (!absl::StartsWith(e->d_name, "seg-")) continue;
          struct stat st {};
          if (::stat((stack_.spool_dir + "/" + e->d_name).c_str(), &st) == 0) bytes += st.st_size;
        }
        ::closedir(d);
      }
      if (bytes > peak.load()) peak = bytes;
      ++samples;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // sampling period only
    }
  });
  sender_ = Emit(kEmitted, 1000, 15000, false, {{"IDFLOW_TAP_RING_SLOTS", "16384"}});
  const int sender_status = sender_->Wait();
  // The collector comes back once the agent has taken in what the tap handed
  // over (a slow, sanitized agent is still draining the ring when the sender
  // exits): the spool's last seq stands still over two status reads with
  // nothing pending. (The collector returning while the spool purges is
  // SpoolFullWhenTheCollectorReturns.)
  auto spool_state = [&]() -> std::string {
    std::string out, err;
    if (RunToEnd({BinDir() + "/idflowctl", "agent", "status", "--socket", stack_.socket, "--json"},
                 &out, &err) != 0) {
      return "";
    }
    auto field = [&](const std::string& key) {
      size_t at = out.find("\"" + key + "\":");
      return at == std::string::npos ? std::string("?")
                                     : out.substr(at, out.find_first_of(",}", at) - at);
    };
    return field("last_seq") + " " + field("pending_events");
  };
  std::string previous;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string now = spool_state();
        bool settled =
            !now.empty() && now == previous && absl::StrContains(now, "\"pending_events\":0");
        previous = now;
        if (!settled) std::this_thread::sleep_for(std::chrono::seconds(1));  // between two reads
        return settled;
      },
      seconds(240)))
      << "the agent never settled: " << previous << "\n"
      << Diagnostics();
  ASSERT_TRUE(stack_.StartCollector(&why, port)) << why;
  ExpectAccounted(kEmitted);
  sampling = false;
  sampler.join();
  ASSERT_EQ(sender_status, 0) << Diagnostics();
  std::string detail;
  const int64_t drops = ReportedDrops(stack_.collector_address(), &detail);
  std::printf(
      "8 h offline: %ld emitted, %lld stored, %lld dropped; spool peak %llu bytes of %llu "
      "(%d samples)\n%s",
      kEmitted, static_cast<long long>(StoredTapEvents(stack_.collector_address())),
      static_cast<long long>(drops), static_cast<unsigned long long>(peak.load()),
      static_cast<unsigned long long>(kBound), samples.load(), detail.c_str());
  EXPECT_GT(samples.load(), 10);
  EXPECT_GT(peak.load(), kBound / 2) << "the spool never filled: the case is not exercised";
  EXPECT_LE(peak.load(), kBound) << "the spool outgrew its bound";
  EXPECT_GT(drops, 0) << "8 hours fit in the bound: the eviction path is not exercised";
}

// The collector returns while the spool is full and still taking events:
// the sender reads the oldest segment while purges take it. Events purged
// while in flight are counted only if they are then lost, so stored + drops
// == emitted (before, each purged in-flight event the collector then stored
// was counted as a drop too: 6,656 too many once under TSan).
TEST_F(DeliveryE2e, SpoolFullWhenTheCollectorReturns) {
  constexpr long kEmitted = 120000;
  std::string why;
  ASSERT_TRUE(stack_.StartCollector(&why)) << why;
  const int port = stack_.grpc_port;
  stack_.collector->Stop(9);
  stack_.agent_args = {"--spool-max-mb", "4"};
  ASSERT_TRUE(stack_.StartAgent(&why, stack_.collector_address())) << why;
  sender_ = Emit(kEmitted, 1000, 20000, /*hold=*/true, {{"IDFLOW_TAP_RING_SLOTS", "16384"}});
  // Full: the agent purged its oldest segment.
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(stack_.agent->Stderr(), "spool full"); },
                      seconds(120)))
      << "the spool never filled: " << Diagnostics();
  ASSERT_TRUE(stack_.StartCollector(&why, port)) << why;
  ASSERT_TRUE(SenderPrinted("done " + std::to_string(kEmitted), seconds(120))) << Diagnostics();
  ExpectAccounted(kEmitted);
  Release();
  EXPECT_EQ(sender_->Wait(), 0);
  std::string detail;
  ReportedDrops(stack_.collector_address(), &detail);
  EXPECT_FALSE(absl::StrContains(detail, " spool=0 ")) << "nothing purged: " << detail;
}

// (e) Another uid on the agent socket: even when the file system lets it
// connect, the allow-list refuses it before it gets anything; nothing it
// sends is stored.
TEST_F(DeliveryE2e, OtherUidIsRefused) {
  std::string why;
  stack_.dir = MakeTempDir("idflow-e2e");
  ASSERT_EQ(::chmod(stack_.dir.c_str(), 0755), 0);  // let `nobody` reach the socket
  const gid_t nogroup = 65534;
  stack_.agent_args = {"--socket-group", std::to_string(nogroup)};
  ASSERT_TRUE(stack_.Start(&why)) << why;
  struct stat st {};
  ASSERT_EQ(::stat(stack_.socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, nogroup);

  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    // 'C' connect refused by the file system, 'N' got nothing, 'P' got bytes.
    char verdict = 'C';
    if (::setgroups(0, nullptr) == 0 && ::setgid(nogroup) == 0 && ::setuid(65534) == 0) {
      int fd = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", stack_.socket.c_str());
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        agent::TapHello hello;
        hello.pid = static_cast<uint32_t>(::getpid());
        hello.exe = "/usr/bin/idm-sdk-app";  // a forged claim
        std::string h = agent::EncodeHello(hello, "", "");
        agent::TapEvent ev;
        ev.pattern_id = 0;
        ev.address = "10.0.0.1";
        ev.port = 443;
        std::string e = agent::EncodeEvent(ev);
        (void)!::send(fd, h.data(), h.size(), MSG_NOSIGNAL);
        (void)!::send(fd, e.data(), e.size(), MSG_NOSIGNAL);
        char buf[64 * 1024];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        verdict = n > 0 ? 'P' : 'N';
      }
    }
    (void)!::write(pipefd[1], &verdict, 1);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  char verdict = '?';
  ASSERT_EQ(::read(pipefd[0], &verdict, 1), 1);
  ::close(pipefd[0]);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(verdict, 'N') << "the other uid got the pattern database or could not connect";
  EXPECT_TRUE(WaitFor([&] { return absl::StrContains(stack_.agent->Stderr(), "refused pid"); }))
      << stack_.agent->Stderr();

  // A legitimate app (root is allowed by default) still gets through, and
  // only its events are stored.
  sender_ = Emit(100, 5, 0, false);
  ASSERT_EQ(sender_->Wait(), 0);
  ExpectAccounted(100);
  for (const auto& e : QueryEvents(stack_.collector_address())) {
    EXPECT_NE(e.event().origin().exe(), "/usr/bin/idm-sdk-app");
    EXPECT_NE(e.event().destination().ip(), "10.0.0.1");
  }
}

}  // namespace
}  // namespace idflow::e2e

#include "agent/ingress.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <mutex>
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

TapIngress::Options At(const std::string& path) {
  TapIngress::Options o;
  o.socket_path = path;
  return o;
}

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;

namespace fs = std::filesystem;

bool PollUntil(const std::function<bool()>& cond, int timeout_ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

int Connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

bool SendMsg(int fd, const std::string& msg) {
  return send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size());
}

// Receives Patterns chunks until complete; returns the database bytes.
std::string ReceivePatterns(int fd) {
  std::string db;
  std::string buf(kTapMaxMessageBytes, '\0');
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) return "<error>";
    auto msg = DecodeTapMessage(std::string_view(buf.data(), n));
    if (!msg.ok()) return "<bad>";
    const auto& c = std::get<TapPatternsChunk>(msg->body);
    db += c.data;
    if (db.size() == c.total_bytes) return db;
  }
}

class IngressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "idflow-ing-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    path_ = dir_ + "/tap.sock";
  }
  void TearDown() override {
    ingress_.reset();
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    fs::remove_all(dir_);
  }

  void StartIngress(TapIngress::Options opts = {}) {
    if (opts.socket_path.empty()) opts.socket_path = path_;
    ingress_ = std::make_unique<TapIngress>(
        io_, opts,
        [this](const TapHello& who, const TapEvent& ev) {
          std::lock_guard l(mu_);
          events_.push_back({who, ev});
        },
        [this](const TapHello&, const TapStats& st) {
          std::lock_guard l(mu_);
          stats_.push_back(st);
        });
    ASSERT_THAT(ingress_->Start(), IsOk());
    thread_ = std::thread([this] { io_.run(); });
  }

  size_t EventCount() {
    std::lock_guard l(mu_);
    return events_.size();
  }

  std::string dir_, path_;
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_ =
      std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          io_.get_executor());
  std::thread thread_;
  std::unique_ptr<TapIngress> ingress_;
  std::mutex mu_;
  std::vector<std::pair<TapHello, TapEvent>> events_;
  std::vector<TapStats> stats_;
};

TEST_F(IngressTest, HelloGetsPatternsThenEventsReachCallback) {
  StartIngress();
  Identity id;
  id.identifiers = {{"mac_address", "wlan0", "3c:22:fb:12:34:56", "test"}};
  auto db = PatternDb::Build(id);
  ASSERT_THAT(db, IsOk());
  auto shared_db = std::make_shared<const PatternDb>(std::move(*db));
  ingress_->UpdatePatterns(shared_db);

  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);  // private: group and allow-list only

  int fd = Connect(path_);
  ASSERT_GE(fd, 0);
  TapHello hello;
  hello.pid = 1234;
  hello.exe = "/bin/app";
  ASSERT_TRUE(SendMsg(fd, EncodeHello(hello, "casting", "uxp=false")));
  EXPECT_EQ(ReceivePatterns(fd), shared_db->serialized());

  TapEvent ev;
  ev.pattern_id = 3;
  ev.address = "127.0.0.1";
  ev.port = 80;
  ASSERT_TRUE(SendMsg(fd, EncodeEvent(ev)));
  TapStats stats;
  stats.events_dropped = 2;
  ASSERT_TRUE(SendMsg(fd, EncodeStats(stats)));
  ASSERT_TRUE(PollUntil([&] {
    std::lock_guard l(mu_);
    return events_.size() == 1 && stats_.size() == 1;
  }));
  std::lock_guard l(mu_);
  const TapHello& who = events_[0].first;
  EXPECT_EQ(who.pid, 1234u);
  EXPECT_EQ(who.exe, "/bin/app");
  EXPECT_THAT(who.scenarios, ::testing::ElementsAre("casting"));
  EXPECT_EQ(who.consents.at("uxp"), false);
  EXPECT_TRUE(who.peer.valid);
  EXPECT_EQ(who.peer.pid, getpid());
  EXPECT_EQ(who.peer.uid, getuid());
  EXPECT_EQ(events_[0].second.pattern_id, 3u);
  EXPECT_EQ(events_[0].second.port, 80);
  EXPECT_EQ(stats_[0].events_dropped, 2u);
  close(fd);
}

TEST_F(IngressTest, NoDatabaseSendsEmptyPatterns) {
  StartIngress();
  int fd = Connect(path_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendMsg(fd, EncodeHello(TapHello{}, "", "")));
  EXPECT_EQ(ReceivePatterns(fd), "");
  close(fd);
}

TEST_F(IngressTest, MalformedMessageClosesConnection) {
  StartIngress();
  int fd = Connect(path_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendMsg(fd, "garbage that is not a tap message"));
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);  // closed by the agent
  close(fd);

  // An event before Hello is a protocol error too.
  fd = Connect(path_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendMsg(fd, EncodeEvent(TapEvent{})));
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);
  close(fd);

  // Oversized datagram.
  fd = Connect(path_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendMsg(fd, std::string(kTapMaxMessageBytes + 100, 'x')));
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);
  close(fd);
  EXPECT_TRUE(PollUntil([&] { return ingress_->counters().malformed == 3; }));
  EXPECT_EQ(EventCount(), 0u);
}

TEST_F(IngressTest, ConnectionLimit) {
  TapIngress::Options opts;
  opts.max_connections = 1;
  StartIngress(opts);
  int a = Connect(path_);
  ASSERT_GE(a, 0);
  ASSERT_TRUE(PollUntil([&] { return ingress_->counters().active == 1; }));
  int b = Connect(path_);
  ASSERT_GE(b, 0);
  char c;
  EXPECT_EQ(recv(b, &c, 1, 0), 0);  // rejected: closed right away
  EXPECT_EQ(ingress_->counters().rejected, 1u);
  close(a);
  close(b);
}

TEST_F(IngressTest, StartErrors) {
  TapIngress too_long(io_, At(std::string(200, 'a')), nullptr);
  EXPECT_THAT(too_long.Start(), StatusIs(absl::StatusCode::kInvalidArgument));

  std::string file = dir_ + "/regular";
  ASSERT_THAT(WriteFileAtomic(file, "keep me"), IsOk());
  TapIngress not_socket(io_, At(file), nullptr);
  EXPECT_THAT(not_socket.Start(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(fs::exists(file));

  TapIngress no_dir(io_, At(dir_ + "/missing/tap.sock"), nullptr);
  EXPECT_THAT(no_dir.Start(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(IngressTest, ReplacesStaleSocketAndRemovesItOnStop) {
  {
    TapIngress first(io_, At(path_), nullptr);
    ASSERT_THAT(first.Start(), IsOk());
  }
  EXPECT_FALSE(fs::exists(path_));
  // Leave a stale socket file behind (bound, never unlinked).
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
  StartIngress();
  int c = Connect(path_);
  EXPECT_GE(c, 0);
  close(c);
}

}  // namespace
}  // namespace idflow::agent

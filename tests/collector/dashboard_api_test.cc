// The dashboard's JSON API against an in-process collector on a real SQLite
// file and the real policies (plus an older version of the statement, for the
// diff), seeded through Store::Write, over loopback HTTP.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "collector/collector.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace idflow::collector {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kToken[] = "api-test-token";

struct Reply {
  int status = 0;
  std::string headers;
  std::string body;
  json Json() const { return json::parse(body, nullptr, false); }
};

Reply Get(int port, const std::string& target, bool with_token = true) {
  Reply r;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string req =
        absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: t\r\n",
                     with_token ? absl::StrCat("Authorization: Bearer ", kToken, "\r\n") : "",
                     "Connection: close\r\n\r\n");
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      std::string resp;
      char buf[16384];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) resp.append(buf, n);
      std::sscanf(resp.c_str(), "HTTP/1.1 %d", &r.status);
      size_t at = resp.find("\r\n\r\n");
      r.headers = resp.substr(0, at);
      if (at != std::string::npos) r.body = resp.substr(at + 4);
    }
  }
  ::close(fd);
  return r;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

store::EventRecord Event(const std::string& agent, uint64_t seq, const std::string& device,
                         const std::string& sdk, const std::string& type,
                         const std::string& verdict, int64_t t) {
  store::EventRecord e;
  e.agent_id = agent;
  e.seq = seq;
  e.device_id = device;
  e.device_class = device == "tv 1/a" ? "tv" : "hub";
  e.firmware = device == "tv 1/a" ? "3.0" : "2.1";
  e.exe = "/opt/app/bin/host";
  e.call_chain = {{"/opt/app/lib/libsdk.so", "b1"}, {"/lib/libc.so.6", "c2"}};
  e.module = "/opt/app/lib/libsdk.so";
  e.sdk = sdk;
  e.action = "transmit";
  e.channel = "tcp";
  e.dest_host = "collect.example";
  e.dest_port = 443;
  e.data_type = type;
  e.encoding = "raw";
  e.digest = absl::StrCat("d", seq);
  e.snippet = "id=<oaid>&x=<script>";
  e.scenarios = {"casting"};
  e.consents = {{"user_experience_program", true}};
  e.first_seen_unix_ms = e.last_seen_unix_ms = t;
  e.verdict = verdict;
  e.finding = verdict == "clear" ? "clear" : "violation";
  e.statement = "interconnectivity-data-sharing";
  e.statement_version = "v20250508";
  e.entry = "lebo-sdk";
  e.explanation = "because";
  return e;
}

class DashboardApi : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("idflow-dash-api-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->random_seed());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::filesystem::copy(std::string(IDFLOW_SOURCE_DIR) + "/policies", dir_ / "policies",
                          std::filesystem::copy_options::recursive);
    // An older version of the statement: one entry declared two types fewer.
    const auto st = dir_ / "policies/statements";
    std::string text = ReadAll((st / "interconnectivity-v20250508.yaml").string());
    std::string old = absl::StrReplaceAll(text, {{"version: v20250508", "version: v20240101"},
                                                 {"file_info, photo, media]", "file_info]"}});
    ASSERT_NE(old, text);
    std::ofstream(st / "interconnectivity-v20240101.yaml") << old;

    CollectorOptions o;
    o.http = "127.0.0.1:0";
    o.store_url = "sqlite:" + (dir_ / "idflow.db").string();
    o.policies_dir = (dir_ / "policies").string();
    o.auth_token = kToken;
    auto c = Collector::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    c_ = std::move(*c);
    port_ = c_->http_port();

    now_ = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
    // hub-1: five groups; the scenario changes before seq 4, consent before seq 5.
    std::vector<store::EventRecord> a = {
        Event("agent-a", 1, "hub-1", "Lebo SDK", "device_name", "clear", now_ - 5000),
        Event("agent-a", 2, "hub-1", "Lebo SDK", "oaid", "omitted", now_ - 4000),
        Event("agent-a", 3, "hub-1", "Lebo SDK", "oaid", "clear", now_ - 3000),
        Event("agent-a", 4, "hub-1", "Mi Fitness", "device_fid", "vague", now_ - 2000),
        Event("agent-a", 5, "hub-1", "Yunkong SDK", "oaid", "wrong_recipient", now_ - 1000)};
    a[3].scenarios = {"wearable_control"};
    a[4].scenarios = {"wearable_control"};
    a[4].consents = {{"user_experience_program", false}};
    // A device id that must be percent-encoded in a path.
    std::vector<store::EventRecord> b = {
        Event("agent-b", 1, "tv 1/a", "Lebo SDK", "mac_address", "omitted", now_ - 500)};
    store::WriteOp op_a, op_b;
    op_a.agent_id = "agent-a";
    op_a.events = a;
    op_b.agent_id = "agent-b";
    op_b.events = b;
    auto w = c_->store().Write({op_a, op_b});
    ASSERT_TRUE(w.ok()) << w.status();
    for (const auto& s : *w) ASSERT_TRUE(s.ok()) << s;
    for (const auto& [agent, device] : {std::pair{"agent-a", "hub-1"}, {"agent-b", "tv 1/a"}}) {
      store::AgentRecord r;
      r.agent_id = agent;
      r.device_id = device;
      r.agent_version = "0.1.0 (commit 1a2b3c4, Release)";
      r.last_seen_unix_ms = now_;
      ASSERT_TRUE(c_->store().UpsertAgent(r).ok());
    }
  }
  void TearDown() override {
    if (c_) c_->Shutdown();
    c_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<Collector> c_;
  int port_ = 0;
  int64_t now_ = 0;
};

TEST_F(DashboardApi, NoTokenNoData) {
  for (const char* path : {"/api/overview", "/api/matrix", "/api/verdicts", "/api/agents",
                           "/api/devices", "/api/devices/hub-1/timeline", "/api/policies",
                           "/api/policies/diff?against=disk", "/api/changes", "/api/nope"}) {
    Reply r = Get(port_, path, /*with_token=*/false);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("hub-1"))) << path;
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("Lebo"))) << path;
  }
  // The page itself holds no data and loads without the token.
  Reply page = Get(port_, "/", false);
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("<title>idflow"));
  EXPECT_THAT(page.headers, HasSubstr("Content-Security-Policy: default-src 'self'"));
  EXPECT_THAT(Get(port_, "/app.js", false).headers, HasSubstr("text/javascript"));
  EXPECT_EQ(Get(port_, "/missing.js", false).status, 404);
}

TEST_F(DashboardApi, BadParametersAre400WithTheirName) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/verdicts?limit=0", "limit"},
      {"/api/verdicts?limit=abc", "limit"},
      {"/api/verdicts?limit=1001", "limit"},
      {"/api/verdicts?offset=-1", "offset"},
      {"/api/verdicts?sdkk=x", "sdkk"},
      {"/api/verdicts?verdict=nonsense", "nonsense"},
      {"/api/verdicts?finding=bad", "finding"},
      {"/api/verdicts?violations_only=yes", "violations_only"},
      {"/api/verdicts?since=20&until=10", "until"},
      {"/api/overview?bucket_ms=5", "bucket_ms"},
      {"/api/overview?bucket_ms=5400000", "multiple of one hour"},
      {"/api/matrix?limit=5", "limit"},
      {"/api/devices?limit=0", "limit"},
      {"/api/devices/hub-1/timeline?offset=x", "offset"},
      {"/api/policies/diff", "statement"},
      {"/api/policies/diff?against=git", "against"},
  };
  for (const auto& [target, needle] : cases) {
    Reply r = Get(port_, target);
    EXPECT_EQ(r.status, 400) << target << " " << r.body;
    json j = r.Json();
    ASSERT_TRUE(j.is_object() && j.contains("error")) << target << " " << r.body;
    EXPECT_THAT(j["error"].get<std::string>(), HasSubstr(needle)) << target;
  }
}

TEST_F(DashboardApi, VerdictsPageThroughEveryGroupOnce) {
  std::set<std::string> seen;
  size_t offset = 0, pages = 0;
  while (true) {
    json j = Get(port_, absl::StrCat("/api/verdicts?limit=2&offset=", offset)).Json();
    ASSERT_TRUE(j.is_object());
    ++pages;
    for (const auto& v : j["verdicts"]) {
      EXPECT_TRUE(
          seen.insert(absl::StrCat(v["device"].get<std::string>(), "|", v["sdk"].get<std::string>(),
                                   "|", v["data_type"].get<std::string>(), "|",
                                   v["verdict"].get<std::string>()))
              .second);
    }
    if (j["next_offset"].is_null()) break;
    offset = j["next_offset"].get<size_t>();
    ASSERT_LT(pages, 10u);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(pages, 3u);
}

TEST_F(DashboardApi, VerdictFiltersNarrowAndGroupsCarryTheirEvidence) {
  auto count = [&](const std::string& q) {
    json j = Get(port_, "/api/verdicts?" + q).Json();
    return j.is_object() ? static_cast<int>(j["verdicts"].size()) : -1;
  };
  EXPECT_EQ(count(""), 6);
  EXPECT_EQ(count("finding=violation"), 4);
  EXPECT_EQ(count("sdk=Lebo%20SDK"), 4);
  EXPECT_EQ(count("data_type=oaid"), 3);
  EXPECT_EQ(count("device_class=tv"), 1);
  EXPECT_EQ(count("firmware=2.1"), 5);
  EXPECT_EQ(count("device=tv%201%2Fa"), 1);
  EXPECT_EQ(count("verdict=vague"), 1);
  EXPECT_EQ(count(absl::StrCat("until=", now_ - 2500)), 3);
  EXPECT_EQ(count(absl::StrCat("since=", now_ - 2500)), 3);

  json j = Get(port_, "/api/verdicts?verdict=omitted&device=hub-1").Json();
  ASSERT_EQ(j["verdicts"].size(), 1u);
  const json& g = j["verdicts"][0];
  EXPECT_EQ(g["destination"], "collect.example");
  EXPECT_EQ(g["snippet"], "id=<oaid>&x=<script>");  // JSON-escaped, never interpreted
  EXPECT_EQ(g["call_chain"].size(), 2u);
  EXPECT_EQ(g["call_chain"][0]["path"], "/opt/app/lib/libsdk.so");
  EXPECT_EQ(g["entry"], "lebo-sdk");
  EXPECT_EQ(g["entry_title"], "Lebocast");
  EXPECT_EQ(g["first_seen_unix_ms"], now_ - 4000);
  EXPECT_EQ(g["count"], 1);
  EXPECT_THAT(g["verdict_meaning"].get<std::string>(), HasSubstr("not"));
}

TEST_F(DashboardApi, MatrixHasDeclaredAndObservedCellsColouredByWorstVerdict) {
  json j = Get(port_, "/api/matrix").Json();
  ASSERT_TRUE(j.is_object()) << j;
  auto cell = [&](const std::string& sdk, const std::string& type) -> json {
    for (const auto& c : j["cells"]) {
      if (c["sdk"] == sdk && c["data_type"] == type) return c;
    }
    return nullptr;
  };
  json lebo_oaid = cell("Lebo SDK", "oaid");  // clear and omitted: omitted is worst
  ASSERT_FALSE(lebo_oaid.is_null());
  EXPECT_EQ(lebo_oaid["worst_verdict"], "omitted");
  EXPECT_EQ(lebo_oaid["declared"], false);
  EXPECT_EQ(lebo_oaid["count"], 2);
  EXPECT_EQ(lebo_oaid["verdicts"].size(), 2u);
  json lebo_name = cell("Lebo SDK", "device_name");
  EXPECT_EQ(lebo_name["declared"], true);
  EXPECT_EQ(lebo_name["worst_finding"], "clear");
  json idm = cell("IDM SDK", "p2p_address");  // declared, never observed
  ASSERT_FALSE(idm.is_null());
  EXPECT_EQ(idm["observed"], false);
  EXPECT_EQ(cell("Mi Fitness", "device_fid")["worst_verdict"], "vague");
  // Filters narrow the observed side.
  json tv = Get(port_, "/api/matrix?device_class=tv").Json();
  for (const auto& c : tv["cells"]) {
    if (c["observed"] == true) {
      EXPECT_EQ(c["data_type"], "mac_address") << c;
    }
  }
}

TEST_F(DashboardApi, OverviewCountsFindingsDevicesAndGaps) {
  ASSERT_TRUE(c_->store().UpdateDrops("agent-b", {.tap = 3, .spool = 2}, now_).ok());
  json j = Get(port_, "/api/overview").Json();
  ASSERT_TRUE(j.is_object()) << j;
  EXPECT_EQ(j["totals"]["violation"], 4);
  EXPECT_EQ(j["totals"]["clear"], 2);
  EXPECT_EQ(j["devices"]["total"], 2);
  EXPECT_EQ(j["devices"]["reporting"], 2);
  EXPECT_EQ(j["gaps"]["lost"]["total"], 5);
  EXPECT_EQ(j["gaps"]["agents_with_losses"], 1);
  // Nothing in a window before the events.
  json old =
      Get(port_, absl::StrCat("/api/overview?since=1000&until=", now_ - 3600 * 1000 * 2)).Json();
  EXPECT_EQ(old["totals"]["violation"], 0);
  // A device whose agent last said hello two hours ago and sent nothing since.
  store::AgentRecord quiet;
  quiet.agent_id = "agent-c";
  quiet.device_id = "quiet-1";
  quiet.last_seen_unix_ms = now_ - 2 * 3600 * 1000;
  ASSERT_TRUE(c_->store().UpsertAgent(quiet).ok());
  json q = Get(port_, "/api/overview").Json();
  EXPECT_EQ(q["devices"]["total"], 3);
  EXPECT_EQ(q["devices"]["reporting"], 2);
  EXPECT_EQ(q["devices"]["silent"], 1);
  json strict = Get(port_, absl::StrCat("/api/overview?silent_after_ms=", 3 * 3600 * 1000)).Json();
  EXPECT_EQ(strict["devices"]["silent"], 0);
}

TEST_F(DashboardApi, AgentsCarryTheVersionOfTheirHello) {
  json j = Get(port_, "/api/agents").Json();
  ASSERT_TRUE(j.is_object()) << j;
  ASSERT_EQ(j["agents"].size(), 2u) << j;
  for (const json& a : j["agents"]) {
    EXPECT_EQ(a["agent_version"], "0.1.0 (commit 1a2b3c4, Release)") << a;
  }
}

TEST_F(DashboardApi, TimelineShowsContextChangesAndAgentHealth) {
  json j = Get(port_, "/api/devices/hub-1/timeline?limit=10").Json();
  ASSERT_TRUE(j.is_object()) << j;
  ASSERT_EQ(j["events"].size(), 5u);
  EXPECT_EQ(j["agents"].size(), 1u);
  EXPECT_EQ(j["agents"][0]["stored_up_to"], 5);
  // Newest first: seq 5 (consent changed), 4 (scenario changed), 3, 2, 1.
  const json& e5 = j["events"][0];
  EXPECT_EQ(e5["seq"], 5);
  ASSERT_FALSE(e5["context_change"].is_null());
  EXPECT_EQ(e5["context_change"]["consents"][0]["consent"], "user_experience_program");
  EXPECT_EQ(e5["context_change"]["consents"][0]["after"], false);
  const json& e4 = j["events"][1];
  ASSERT_FALSE(e4["context_change"].is_null());
  EXPECT_EQ(e4["context_change"]["scenarios_after"][0], "wearable_control");
  EXPECT_TRUE(j["events"][2]["context_change"].is_null());
  // A page boundary still sees the change before its oldest event.
  json p = Get(port_, "/api/devices/hub-1/timeline?limit=1&offset=1").Json();
  ASSERT_EQ(p["events"].size(), 1u);
  EXPECT_FALSE(p["events"][0]["context_change"].is_null());
  EXPECT_EQ(p["next_offset"], 2);
  // Percent-encoded ids; unknown devices are 404.
  EXPECT_EQ(Get(port_, "/api/devices/tv%201%2Fa/timeline").Json()["events"].size(), 1u);
  EXPECT_EQ(Get(port_, "/api/devices/nobody/timeline").status, 404);
  json d = Get(port_, "/api/devices?limit=1").Json();
  EXPECT_EQ(d["devices"].size(), 1u);
  EXPECT_EQ(d["next_offset"], 1);
}

TEST_F(DashboardApi, PoliciesAndTheirDiff) {
  json p = Get(port_, "/api/policies").Json();
  ASSERT_TRUE(p.is_object());
  EXPECT_EQ(p["statements"].size(), 2u);
  EXPECT_FALSE(p["cookie_policies"].empty());
  EXPECT_FALSE(p["bindings"].empty());
  EXPECT_EQ(p["categories"].size(), kCategoryCount);
  json d =
      Get(port_,
          "/api/policies/diff?statement=interconnectivity-data-sharing&from=v20240101&to=v20250508")
          .Json();
  ASSERT_TRUE(d.is_object()) << d;
  EXPECT_EQ(d["identical"], false);
  EXPECT_THAT(d.dump(), HasSubstr("photo"));
  EXPECT_EQ(
      Get(port_, "/api/policies/diff?statement=interconnectivity-data-sharing&from=v1&to=v20250508")
          .status,
      404);
  EXPECT_EQ(Get(port_, "/api/policies/diff?against=disk").Json()["identical"], true);
}

TEST_F(DashboardApi, ChangeCursorMovesWithCommittedBatches) {
  std::string before = Get(port_, "/api/changes").Json()["cursor"];
  EXPECT_EQ(Get(port_, "/api/changes").Json()["cursor"], before);
  c_->counters().batches++;
  c_->counters().events += 3;
  EXPECT_NE(Get(port_, "/api/changes").Json()["cursor"], before);
}

}  // namespace
}  // namespace idflow::collector

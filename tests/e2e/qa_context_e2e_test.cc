// The QA workflow against running services: `idflowctl qa --socket
// --collector` tags the run's events with its id and waits for them by
// sequence number; `idflowctl context set` changes the context from its
// moment on, also in the middle of a run; `idflowctl report` gives the same
// report later; a context change from a user that is not trusted is refused.
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/control_protocol.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/harness.h"

namespace idflow::e2e {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> Demo() {
  return {BinDir() + "/idflow-demo-host", "--device-id", Stack::kHwDeviceId, "--oaid",
          Stack::kOaid};
}

// Verdict lines of a JSON report ("verdict sdk data to"), and its run line.
std::multiset<std::string> Groups(const std::string& json_lines, nlohmann::json* run_line) {
  std::multiset<std::string> out;
  for (absl::string_view line : absl::StrSplit(json_lines, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("verdict")) {
      out.insert(absl::StrCat(j["verdict"].get<std::string>(), " ", j["sdk"].get<std::string>(),
                              " ", j["action"].get<std::string>(), " ",
                              j["data_type"].get<std::string>()));
    } else if (run_line != nullptr) {
      *run_line = j;
    }
  }
  return out;
}

TEST(QaContextE2e, AContextChangeInTheMiddleOfARunJudgesWhatFollowsUnderIt) {
  Stack stack;
  std::string why;
  ASSERT_TRUE(stack.Start(&why)) << why;
  // The test: the demo under device_discovery, then the device switches to
  // casting, then the demo again.
  const std::string demo = absl::StrJoin(Demo(), " ");
  // idflowctl itself runs without the tap: a sanitizer build's runtime must
  // come first in its library list, which LD_PRELOAD would break.
  const std::string script =
      absl::StrCat(demo, " && env -u LD_PRELOAD ", BinDir(), "/idflowctl context set --socket ",
                   stack.socket, " scenario=casting && ", demo);
  std::string out, err;
  const std::string report = stack.dir + "/report.json";
  int code = RunToEnd({BinDir() + "/idflowctl", "qa", "--socket", stack.socket, "--collector",
                       stack.collector_address(), "--run-id", "ctx-run-1", "--format", "json",
                       "--out", report, "--scenario", "device_discovery", "--", "sh", "-c", script},
                      &out, &err);
  ASSERT_EQ(code, 1) << err;  // Lebo and the undeclared SDK leak in both halves
  out = Slurp(report);
  nlohmann::json run;
  std::multiset<std::string> groups = Groups(out, &run);
  // IDM's device id: clear before the switch, out of scenario after it.
  EXPECT_EQ(groups.count("clear IDM SDK transmit device_id"), 1u) << out;
  EXPECT_EQ(groups.count("out_of_scenario IDM SDK transmit device_id"), 1u) << out;
  EXPECT_EQ(groups.count("undeclared_party  transmit oaid"), 1u) << out;
  // The run line: its id, the accounting, and the two contexts in order.
  EXPECT_EQ(run["run_id"], "ctx-run-1");
  EXPECT_EQ(run["exit_code"], 0) << run.dump();  // the test script itself passed
  EXPECT_EQ(run["events_lost"], 0);
  EXPECT_GE(run["events_judged"].get<int>(), 6);
  ASSERT_EQ(run["context_changes"].size(), 2u) << run.dump();
  EXPECT_EQ(run["context_changes"][0]["scenarios"], nlohmann::json::array({"device_discovery"}));
  EXPECT_EQ(run["context_changes"][1]["scenarios"], nlohmann::json::array({"casting"}));
  EXPECT_LE(run["context_changes"][0]["at_unix_ms"].get<int64_t>(),
            run["context_changes"][1]["at_unix_ms"].get<int64_t>());

  // The same report later, from the collector alone.
  std::string later, later_err;
  code = RunToEnd({BinDir() + "/idflowctl", "report", "--collector", stack.collector_address(),
                   "--run-id", "ctx-run-1", "--format", "json"},
                  &later, &later_err);
  EXPECT_EQ(code, 1) << later_err;
  nlohmann::json later_run;
  EXPECT_EQ(Groups(later, &later_run), groups);
  EXPECT_EQ(later_run["context_changes"], run["context_changes"]);

  // Another run on the same services is reported apart.
  code = RunToEnd(
      {BinDir() + "/idflowctl", "qa", "--socket", stack.socket, "--collector",
       stack.collector_address(), "--run-id", "ctx-run-2", "--format", "json", "--", "true"},
      &out, &err);
  EXPECT_EQ(code, 0) << err;
  EXPECT_TRUE(Groups(out, nullptr).empty()) << out;
  // A run id nothing carries: no verdicts, said on stderr.
  code = RunToEnd({BinDir() + "/idflowctl", "report", "--collector", stack.collector_address(),
                   "--run-id", "no-such-run"},
                  &out, &err);
  EXPECT_EQ(code, 0);
  EXPECT_THAT(err, HasSubstr("no event carries run id no-such-run"));
}

TEST(QaContextE2e, QaAgainstServicesThatAreNotThereSaysSo) {
  std::string out, err;
  int code = RunToEnd({BinDir() + "/idflowctl", "qa", "--socket", "/nonexistent/agent.sock",
                       "--collector", "127.0.0.1:1", "--", "true"},
                      &out, &err);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("no agent socket at /nonexistent/agent.sock"));
  code = RunToEnd({BinDir() + "/idflowctl", "qa", "--socket", "/tmp/x.sock", "--", "true"}, &out,
                  &err);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("--socket and --collector go together"));
}

// A user the socket lets in (an app) may not change the device's context:
// that would let an SDK grant itself consent.
TEST(QaContextE2e, AnUntrustedUserCannotChangeTheContext) {
  Stack stack;
  std::string why;
  stack.dir = MakeTempDir("idflow-e2e");
  ASSERT_EQ(::chmod(stack.dir.c_str(), 0755), 0);
  const uid_t nobody = 65534;
  stack.agent_args = {"--socket-group", "65534", "--allow-uid", "65534", "--allow-uid", "0"};
  ASSERT_TRUE(stack.Start(&why)) << why;
  agent::ContextSetRequest req;
  req.patch.consents["user_experience_program"] = true;
  const std::string frame = *agent::EncodeContextSet(req);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    char code = 'X';
    if (::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(nobody) == 0) {
      int fd = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", stack.socket.c_str());
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) > 0) {
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        auto reply = agent::DecodeControlReply(std::string_view(buf, n > 0 ? n : 0));
        code = reply.ok() ? static_cast<char>('0' + static_cast<int>(reply->code)) : 'M';
      } else {
        code = 'C';
      }
    }
    (void)!::write(pipefd[1], &code, 1);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  char code = '?';
  ASSERT_EQ(::read(pipefd[0], &code, 1), 1);
  ::close(pipefd[0]);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(code, '0' + static_cast<int>(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(stack.agent->Stderr(), HasSubstr("context change refused"));
  // Root (the harness) may.
  std::string out, err;
  EXPECT_EQ(RunToEnd({BinDir() + "/idflowctl", "context", "set", "--socket", stack.socket,
                      "consent.user_experience_program=false"},
                     &out, &err),
            0)
      << err;
}

}  // namespace
}  // namespace idflow::e2e

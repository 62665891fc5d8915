// The agent's configuration: file, flags over it, and errors that point at
// the culprit. Also loads the shipped examples, so they cannot rot.
#include "agent/config.h"

#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "agent/inventory.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

const std::string kExamples = std::string(IDFLOW_SOURCE_DIR) + "/agent/examples";

class AgentConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "idflow-config-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `yaml` to a file in the test's directory; returns its path.
  std::string Write(const std::string& name, const std::string& yaml) {
    std::string path = dir_ + "/" + name;
    EXPECT_THAT(WriteFileAtomic(path, yaml), IsOk());
    return path;
  }

  // Parses `args` as the agent's command line and loads the options; the
  // default config path is `default_path` (absent unless a test writes it).
  absl::StatusOr<AgentOptions> Load(std::vector<std::string> args,
                                    const std::string& default_path = "") {
    FlagSet flags;
    AddAgentFlags(&flags);
    args.insert(args.begin(), "idflow-agent");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    absl::Status parsed = flags.Parse(static_cast<int>(argv.size()), argv.data());
    if (!parsed.ok()) return parsed;
    return LoadAgentConfig(flags, default_path.empty() ? dir_ + "/absent.yaml" : default_path);
  }

  std::string dir_;
};

TEST_F(AgentConfigTest, FileOnly) {
  const std::string path = Write("agent.yaml",
                                 "collector: [a.example:7443, b.example:7443]\n"
                                 "socket: /tmp/x.sock\n"
                                 "spool: /tmp/spool\n"
                                 "spool-max-mb: 64\n"
                                 "identity: /etc/idflow/identity.yaml\n"
                                 "spool-sync-ms: 0\n"
                                 "allow-uid: [0, 1000]\n"
                                 "allow-gid: 27\n"
                                 "tap-rate: 500.5\n"
                                 "allow-app-context: true\n"
                                 "watchdog-max-rss-mb: 16\n"
                                 "watchdog-max-cpu-percent: 2.5\n");
  auto o = Load({"--config", path});
  ASSERT_THAT(o, IsOk());
  EXPECT_THAT(o->collectors, ElementsAre("a.example:7443", "b.example:7443"));
  EXPECT_EQ(o->socket_path, "/tmp/x.sock");
  EXPECT_EQ(o->spool_dir, "/tmp/spool");
  EXPECT_EQ(o->spool_max_bytes, 64ull << 20);
  EXPECT_EQ(o->identity_file, "/etc/idflow/identity.yaml");
  EXPECT_EQ(o->spool_sync_interval.count(), 0);
  EXPECT_THAT(o->allow_uids, ElementsAre(0u, 1000u));
  EXPECT_THAT(o->allow_gids, ElementsAre(27u));
  EXPECT_DOUBLE_EQ(o->tap_rate_per_second, 500.5);
  EXPECT_TRUE(o->allow_app_context);
  EXPECT_EQ(o->watchdog_max_rss_bytes, 16ull << 20);
  EXPECT_DOUBLE_EQ(o->watchdog_max_cpu_percent, 2.5);
  // Keys the file leaves out keep their defaults.
  EXPECT_EQ(o->flush_interval.count(), AgentOptions{}.flush_interval.count());
  EXPECT_EQ(o->max_connections, AgentOptions{}.max_connections);
}

TEST_F(AgentConfigTest, FlagsOverrideTheFile) {
  const std::string path = Write("agent.yaml",
                                 "collector: a.example:7443,b.example:7443\n"
                                 "spool-max-mb: 64\n"
                                 "socket: /tmp/file.sock\n"
                                 "allow-uid: [0, 1000]\n"
                                 "allow-app-context: true\n");
  auto o = Load({"--config", path, "--spool-max-mb", "32", "--collector=c.example:1", "--allow-uid",
                 "7", "--allow-uid", "8", "--allow-app-context=false"});
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->spool_max_bytes, 32ull << 20);
  EXPECT_THAT(o->collectors, ElementsAre("c.example:1"));  // a flag replaces a list whole
  EXPECT_THAT(o->allow_uids, ElementsAre(7u, 8u));
  EXPECT_FALSE(o->allow_app_context);
  EXPECT_EQ(o->socket_path, "/tmp/file.sock");  // not overridden
}

TEST_F(AgentConfigTest, UnknownKeyIsAnErrorAtItsPosition) {
  const std::string path = Write("agent.yaml", "socket: /tmp/x.sock\nspool-max-gb: 1\n");
  auto o = Load({"--config", path});
  EXPECT_THAT(o, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(o.status().message()),
              HasSubstr(path + ":2:1: unknown key 'spool-max-gb'"));
}

TEST_F(AgentConfigTest, WrongTypeNamesTheKeyAtLineAndColumn) {
  struct Case {
    std::string yaml, error;
  } cases[] = {
      {"socket: /tmp/x.sock\nspool-max-mb: [1, 2]\n", ":2:15: spool-max-mb takes a scalar"},
      {"spool-max-mb: lots\n", ":1:15: spool-max-mb takes a positive integer"},
      {"spool-max-mb: 0\n", ":1:15: spool-max-mb takes a positive integer"},
      {"spool-sync-ms: -1\n", ":1:16: spool-sync-ms takes a non-negative integer"},
      {"allow-app-context: maybe\n", ":1:20: allow-app-context takes true or false"},
      {"collector: {a: b}\n", ":1:12: collector takes a scalar or a list of scalars"},
      {"collector:\n  - [a, b]\n", ":2:5: collector takes a list of scalars"},
      {"watchdog-max-cpu-percent: -3\n", ":1:27: watchdog-max-cpu-percent takes a number >= 0"},
      {"allow-uid: [no-such-user-idflow]\n", ":1:12: allow-uid: no user no-such-user-idflow"},
      {"socket:\n", ":1:1: socket has no value"},
      {"- socket\n", ":1:1: expected a mapping"},
      {"socket: [unclosed\n", ":2:1: "},  // YAML syntax, with the parser's position
  };
  for (const Case& c : cases) {
    const std::string path = Write("agent.yaml", c.yaml);
    auto o = Load({"--config", path});
    EXPECT_THAT(o, StatusIs(absl::StatusCode::kInvalidArgument)) << c.yaml;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(path + c.error)) << c.yaml;
  }
}

TEST_F(AgentConfigTest, DuplicateKeyIsAnError) {
  const std::string path = Write("agent.yaml", "socket: /a\nsocket: /b\n");
  auto o = Load({"--config", path});
  EXPECT_THAT(std::string(o.status().message()), HasSubstr(path + ":2:1: duplicate key 'socket'"));
}

TEST_F(AgentConfigTest, BadFlagValueNamesTheFlag) {
  auto o = Load({"--flush-interval-ms", "0"});
  EXPECT_THAT(o, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(std::string(o.status().message()), "--flush-interval-ms takes a positive integer");
  o = Load({"--tls-cert", "c.pem", "--tls-key", "k.pem"});
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("need tls-ca"));
}

TEST_F(AgentConfigTest, MissingExplicitFileIsAnError) {
  auto o = Load({"--config", dir_ + "/nope.yaml"});
  EXPECT_THAT(o, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(o.status().message()), HasSubstr(dir_ + "/nope.yaml"));
}

TEST_F(AgentConfigTest, AbsentDefaultFileMeansDefaults) {
  auto o = Load({});
  ASSERT_THAT(o, IsOk());
  const AgentOptions d;
  EXPECT_TRUE(o->collectors.empty());
  EXPECT_EQ(o->socket_path, "/run/idflow/agent.sock");
  EXPECT_EQ(o->spool_dir, "/var/lib/idflow/spool");
  EXPECT_EQ(o->spool_max_bytes, d.spool_max_bytes);
  EXPECT_EQ(o->flush_interval, d.flush_interval);
  EXPECT_EQ(o->spool_sync_interval, d.spool_sync_interval);
  EXPECT_EQ(o->ring_wake_delay, d.ring_wake_delay);
  EXPECT_EQ(o->send_linger, d.send_linger);
  EXPECT_EQ(o->max_connections, d.max_connections);
  EXPECT_EQ(o->max_connections_per_uid, d.max_connections_per_uid);
  EXPECT_DOUBLE_EQ(o->tap_rate_per_second, d.tap_rate_per_second);
  EXPECT_DOUBLE_EQ(o->tap_rate_burst, d.tap_rate_burst);
  EXPECT_EQ(o->socket_gid, d.socket_gid);
  EXPECT_TRUE(o->allow_uids.empty());
  EXPECT_FALSE(o->allow_app_context);
  EXPECT_TRUE(o->bearer_token.empty());
  EXPECT_EQ(o->watchdog_max_rss_bytes, d.watchdog_max_rss_bytes);
  EXPECT_DOUBLE_EQ(o->watchdog_max_cpu_percent, d.watchdog_max_cpu_percent);
}

TEST_F(AgentConfigTest, EmptyConfigFlagSkipsTheDefaultFile) {
  const std::string path = Write("default.yaml", "spool: /d\n");
  auto o = Load({"--config", ""}, path);
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->spool_dir, "/var/lib/idflow/spool");
}

TEST_F(AgentConfigTest, PresentDefaultFileIsRead) {
  const std::string path = Write("default.yaml", "# comments only are fine too\nspool: /d\n");
  auto o = Load({}, path);
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->spool_dir, "/d");
}

TEST_F(AgentConfigTest, TokenFileIsReadAndStripped) {
  const std::string token = Write("token", "s3cret\n");
  auto o = Load({"--config", Write("agent.yaml", "token-file: " + token + "\n")});
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->bearer_token, "s3cret");
  o = Load({"--token-file", Write("empty", "\n")});
  EXPECT_THAT(o, StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(AgentConfigTest, ExampleConfigLoadsAndDocumentsEverySetting) {
  const std::string path = kExamples + "/agent.yaml";
  auto o = Load({"--config", path});
  ASSERT_THAT(o, IsOk());
  EXPECT_THAT(o->collectors,
              ElementsAre("collector-a.example.net:7443", "collector-b.example.net:7443"));
  EXPECT_EQ(o->identity_file, "/etc/idflow/identity.yaml");
  // Every setting (each flag but config, help and version) is a key there.
  FlagSet flags;
  AddAgentFlags(&flags);
  const std::string usage = flags.Usage();
  auto text = ReadFile(path);
  ASSERT_THAT(text, IsOk());
  const std::regex flag_re("(^|\n)  --([a-z0-9-]+)");
  size_t n = 0;
  for (std::sregex_iterator it(usage.begin(), usage.end(), flag_re), end; it != end; ++it) {
    const std::string name = (*it)[2];
    if (name == "config" || name == "help" || name == "version") continue;
    ++n;
    EXPECT_TRUE(std::regex_search(*text, std::regex("(^|\n)" + name + ":")))
        << name << " is missing from " << path;
  }
  EXPECT_GT(n, 20u);
}

TEST_F(AgentConfigTest, ExampleIdentityLoads) {
  auto id = LoadIdentityFile(kExamples + "/identity.yaml");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->device_id, "hub-0042");
  EXPECT_EQ(id->device_class, "hub");
  EXPECT_FALSE(id->digest_key.empty());
  std::set<std::string> kinds;
  for (const Identifier& i : id->identifiers) kinds.insert(i.kind);
  EXPECT_EQ(kinds, (std::set<std::string>{"oaid", "device_id", "bluetooth_address", "imei"}));
}

}  // namespace
}  // namespace idflow::agent

// The table of real functions (agent/tap/real/): one list of hooks, what
// tap.map exports, and entries a test can replace.
#include "agent/tap/real/real_functions.h"

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow::tap {
namespace {

// The names between "global:" and "local:" in tap.map.
std::set<std::string> ExportedByVersionScript() {
  std::ifstream in(std::string(IDFLOW_SOURCE_DIR) + "/agent/tap/tap.map");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  size_t b = text.find("global:"), e = text.find("local:");
  std::set<std::string> out;
  if (b == std::string::npos || e == std::string::npos) return out;
  std::string word;
  for (char c : text.substr(b + 7, e - b - 7)) {
    if (c == ';' || c == ' ' || c == '\n' || c == ',') {
      if (!word.empty()) out.insert(word);
      word.clear();
    } else {
      word += c;
    }
  }
  return out;
}

TEST(RealFunctionsTest, HookListIsWhatTheVersionScriptExports) {
  std::set<std::string> listed(kHookNames, kHookNames + kHookCount);
  EXPECT_EQ(listed.size(), kHookCount) << "a hook listed twice";
  EXPECT_EQ(listed, ExportedByVersionScript());
}

int g_fake_calls = 0;
ssize_t FakeSend(int, const void*, size_t n, int) {
  ++g_fake_calls;
  return static_cast<ssize_t>(n) - 1;
}

TEST(RealFunctionsTest, AReplacedEntryIsCalledInsteadOfLibc) {
  SendFn saved = g_real.send.load();
  g_real.send.store(&FakeSend);
  EXPECT_EQ(RealSend(-1, "abc", 3, 0), 2);
  EXPECT_EQ(g_fake_calls, 1);
  g_real.send.store(saved);
  // Restored (or resolved on first use): the real send fails on a bad fd.
  EXPECT_EQ(RealSend(-1, "abc", 3, 0), -1);
  EXPECT_EQ(g_fake_calls, 1);
}

TEST(RealFunctionsTest, ResolveAllFillsEveryLibcEntry) {
  ResolveAll();
#define IDFLOW_TAP_EXPECT_RESOLVED(name, Fn) EXPECT_NE(g_real.name.load(), nullptr) << #name;
  IDFLOW_TAP_LIBC_FUNCTIONS(IDFLOW_TAP_EXPECT_RESOLVED)
#undef IDFLOW_TAP_EXPECT_RESOLVED
}

TEST(RealFunctionsTest, MissingTlsSymbolIsRetriedNotCached) {
  // Not found (a TLS library not loaded yet): nothing is cached, so a
  // library loaded later is still found. Found: cached.
  std::atomic<SslGetFdFn> missing{nullptr};
  EXPECT_EQ(RealTls(missing, "idflow_tap_test_no_such_symbol"), nullptr);
  EXPECT_EQ(missing.load(), nullptr);
  using GetpidFn = int (*)();
  std::atomic<GetpidFn> present{nullptr};
  GetpidFn f = RealTls(present, "getpid");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(present.load(), f);
  EXPECT_EQ(f(), getpid());
}

}  // namespace
}  // namespace idflow::tap

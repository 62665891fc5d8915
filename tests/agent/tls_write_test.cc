// The pure half of the TLS uprobe source (agent/uprobe/tls_write.h): probe
// records as the BPF programs write them, a process's modules from
// /proc/PID/maps, and a probed write turned into the events a tap would have
// made (the same payload matcher, the Host header, the call chain).
#include "agent/uprobe/tls_write.h"

#include <cstring>
#include <string>
#include <vector>

#include "agent/pattern_db.h"
#include "agent/tap_matcher.h"
#include "agent/uprobe/tls_event.h"
#include "agent/uprobe/tls_uprobe_source.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;

// A record as tls_probes.bpf.c emits it: header then data_len bytes.
std::string Record(const std::string& data, uint32_t source = IDFLOW_TLS_SOURCE_OPENSSL,
                   std::vector<uint64_t> frames = {0x1000, 0x2050, 0x3050}, uint32_t len = 0) {
  idflow_tls_event e;
  memset(&e, 0, sizeof(e));
  e.tgid = 42;
  e.tid = 43;
  e.len = len ? len : static_cast<uint32_t>(data.size());
  e.data_len = static_cast<uint32_t>(data.size());
  e.source = source;
  e.ret_addr = 0x2010;
  e.cookie = 7;
  e.frame_bytes = static_cast<uint32_t>(frames.size() * 8);
  for (size_t i = 0; i < frames.size(); ++i) e.frames[i] = frames[i];
  memcpy(e.data, data.data(), data.size());
  return std::string(reinterpret_cast<const char*>(&e),
                     IDFLOW_TLS_EVENT_HEADER_BYTES + data.size());
}

TEST(TlsRecordTest, ParsesWhatTheProbeWrote) {
  const std::string rec =
      Record("GET / HTTP/1.1\r\n\r\n", IDFLOW_TLS_SOURCE_GO, {0x1000, 0x2050}, 100000);
  absl::StatusOr<TlsWrite> w = ParseTlsRecord(rec);
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->tgid, 42u);
  EXPECT_EQ(w->tid, 43u);
  EXPECT_EQ(w->kind, TlsProbeKind::kGo);
  EXPECT_EQ(w->len, 100000u);  // the call wrote more than was copied
  EXPECT_EQ(w->data, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(w->return_address, 0x2010u);
  EXPECT_EQ(w->cookie, 7u);
  EXPECT_EQ(w->ip, 0x1000u);
  // frames[0] is the probed function itself: left out.
  EXPECT_EQ(w->frames, std::vector<uint64_t>{0x2050});
  EXPECT_EQ(ChannelName(TlsProbeChannel(w->kind)), "tls-uprobe-go");
  EXPECT_EQ(ChannelName(TlsProbeChannel(TlsProbeKind::kOpenssl)), "tls-uprobe-openssl");
}

TEST(TlsRecordTest, RefusesMalformedRecords) {
  const std::string good = Record("abc");
  EXPECT_THAT(ParseTlsRecord(good.substr(0, 10)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseTlsRecord(good + "x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseTlsRecord(Record("abc", 9)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseTlsRecord(Record("")), StatusIs(absl::StatusCode::kInvalidArgument));
  // More bytes copied than the call wrote.
  std::string more = good;
  const uint32_t two = 2;
  memcpy(&more[offsetof(idflow_tls_event, len)], &two, 4);
  EXPECT_THAT(ParseTlsRecord(more), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string frames = good;
  const uint32_t odd = 12;
  memcpy(&frames[offsetof(idflow_tls_event, frame_bytes)], &odd, 4);
  EXPECT_THAT(ParseTlsRecord(frames), StatusIs(absl::StatusCode::kInvalidArgument));
  const uint32_t big = 8 * IDFLOW_TLS_FRAMES + 8;
  memcpy(&frames[offsetof(idflow_tls_event, frame_bytes)], &big, 4);
  EXPECT_THAT(ParseTlsRecord(frames), StatusIs(absl::StatusCode::kInvalidArgument));
}

// A database with one MAC address (null when it does not build).
std::shared_ptr<const PatternDb> MacDb() {
  Identity id;
  id.digest_key = "k";
  id.identifiers = {{"mac_address", "wlan0", "3c:22:fb:12:34:56", "test"}};
  auto built = PatternDb::Build(id);
  if (!built.ok()) return nullptr;
  return std::make_shared<const PatternDb>(std::move(*built));
}

constexpr char kMaps[] =
    "55d0c0a00000-55d0c0a10000 r--p 00000000 fe:01 1234   /usr/bin/node\n"
    "55d0c0a10000-55d0c0b00000 r-xp 00010000 fe:01 1234   /usr/bin/node\n"
    "55d0c0b00000-55d0c0b20000 rw-p 00100000 fe:01 1234   /usr/bin/node\n"
    "55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0      [heap]\n"
    "7f0000000000-7f0000010000 r-xp 00000000 fe:01 77     /usr/lib/libidflow-tap.so\n"
    "7f0000100000-7f0000120000 r-xp 00000000 fe:01 88     /opt/sdk/libcast.so (deleted)\n"
    "7f0000200000-7f0000210000 rw-p 00000000 00:00 0 \n"
    "garbage line\n"
    "zz-7f0000310000 r-xp 00000000 fe:01 99     /lib/bad.so\n"
    "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0      [vdso]\n";

// A write read after its process exited: the probed object alone, placed by
// where the probe fired, still names the program.
TEST(ProbedModuleTest, PlacesTheObjectByTheProbedFunction) {
  // A PIE loaded at 0x55d0c0a00000 whose SSL_write is at vaddr 0x4a000.
  TapRingModule m = ProbedModule("/usr/bin/node", 0, 0x120000, 0x4a000, 0x55d0c0a4a000);
  EXPECT_EQ(std::string(m.path, m.path_len), "/usr/bin/node");
  EXPECT_EQ(m.lo, 0x55d0c0a00000u);
  EXPECT_EQ(m.hi, 0x55d0c0b20000u);
  // An int3 leaves ip one byte past the entry; a non-PIE has no bias.
  EXPECT_EQ(ProbedModule("/x", 0x400000, 0x500000, 0x401230, 0x401231).lo, 0x400000u);
  // Not where that symbol could be: nothing rather than a wrong module.
  EXPECT_EQ(ProbedModule("/x", 0, 0x120000, 0x4a000, 0x55d0c0a4a123).path_len, 0);
  EXPECT_EQ(ProbedModule("/x", 0, 0x120000, 0x4a000, 0x1000).path_len, 0);
  EXPECT_EQ(ProbedModule("", 0, 0x120000, 0x4a000, 0x4a000).path_len, 0);
  EXPECT_EQ(ProbedModule("/x", 0, 0x120000, 0x200000, 0x200000).path_len, 0);

  // Through the matcher with that module only: the chain is the program.
  std::shared_ptr<const PatternDb> db = MacDb();
  ASSERT_NE(db, nullptr);
  std::string rec = Record("GET /?m=3c:22:fb:12:34:56 HTTP/1.1\r\nHost: a\r\n\r\n",
                           IDFLOW_TLS_SOURCE_OPENSSL, {0x55d0c0a4a000, 0x55d0c0a10500});
  const uint64_t ret = 0x55d0c0a10400;
  memcpy(&rec[offsetof(idflow_tls_event, ret_addr)], &ret, 8);
  absl::StatusOr<TlsWrite> w = ParseTlsRecord(rec);
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->ip, 0x55d0c0a4a000u);
  TapPayloadMatcher matcher;
  std::vector<std::string> events;
  ASSERT_THAT(matcher.Match(TlsPayloadRecord(*w, 1), db, &m, 1, &events), IsOk());
  ASSERT_EQ(events.size(), 1u);
  absl::StatusOr<TapMessage> msg = DecodeTapMessage(events[0]);
  ASSERT_THAT(msg, IsOk());
  const TapEvent& ev = std::get<TapEvent>(msg->body);
  ASSERT_EQ(ev.call_chain.size(), 1u);
  EXPECT_EQ(ev.call_chain[0].path, "/usr/bin/node");
}

TEST(ModulesFromMapsTest, OneSpanPerFileWithoutSpecialMappings) {
  std::vector<TapRingModule> m = ModulesFromMaps(kMaps);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(std::string(m[0].path, m[0].path_len), "/usr/bin/node");
  EXPECT_EQ(m[0].lo, 0x55d0c0a00000u);
  EXPECT_EQ(m[0].hi, 0x55d0c0b20000u);
  EXPECT_EQ(m[0].flags, 0);
  EXPECT_EQ(std::string(m[1].path, m[1].path_len), "/usr/lib/libidflow-tap.so");
  EXPECT_EQ(m[1].flags, kTapModuleIsTap);
  EXPECT_EQ(std::string(m[2].path, m[2].path_len), "/opt/sdk/libcast.so");
}

TEST(TlsPayloadTest, ProbedWriteBecomesTheTapsEvent) {
  std::shared_ptr<const PatternDb> db = MacDb();
  ASSERT_NE(db, nullptr);

  const std::string request =
      "GET /track?mac=3c:22:fb:12:34:56 HTTP/1.1\r\nHost: ads.example.com:8443\r\n\r\n";
  // Returns into libcast.so, called from node.
  const std::string rec =
      Record(request, IDFLOW_TLS_SOURCE_OPENSSL, {0x55d0c0a20000, 0x55d0c0a20100});
  std::string patched = rec;
  const uint64_t ret = 0x7f0000100040;
  memcpy(&patched[offsetof(idflow_tls_event, ret_addr)], &ret, 8);
  absl::StatusOr<TlsWrite> w = ParseTlsRecord(patched);
  ASSERT_THAT(w, IsOk());
  const std::string payload = TlsPayloadRecord(*w, 1700000000000);
  std::vector<TapRingModule> modules = ModulesFromMaps(kMaps);
  TapPayloadMatcher matcher;
  std::vector<std::string> events;
  ASSERT_THAT(
      matcher.Match(payload, db, modules.data(), static_cast<uint32_t>(modules.size()), &events),
      IsOk());
  ASSERT_EQ(events.size(), 1u);
  absl::StatusOr<TapMessage> msg = DecodeTapMessage(events[0]);
  ASSERT_THAT(msg, IsOk());
  const TapEvent& ev = std::get<TapEvent>(msg->body);
  EXPECT_EQ(ev.pid, 42u);
  EXPECT_EQ(ev.tid, 43u);
  EXPECT_EQ(ev.timestamp_ms, 1700000000000u);
  EXPECT_EQ(ev.action, TapAction::kTransmit);
  EXPECT_EQ(ev.hostname, "ads.example.com");
  EXPECT_EQ(ev.offset, request.find("3c:22"));
  ASSERT_EQ(ev.call_chain.size(), 2u);
  EXPECT_EQ(ev.call_chain[0].path, "/opt/sdk/libcast.so");
  EXPECT_EQ(ev.call_chain[1].path, "/usr/bin/node");
}

TEST(TlsPayloadTest, NothingToFindIsNoEvent) {
  std::shared_ptr<const PatternDb> db = MacDb();
  ASSERT_NE(db, nullptr);
  const std::string rec = Record("GET / HTTP/1.1\r\nHost: a\r\n\r\n");  // w views it
  absl::StatusOr<TlsWrite> w = ParseTlsRecord(rec);
  ASSERT_THAT(w, IsOk());
  TapPayloadMatcher matcher;
  std::vector<std::string> events;
  ASSERT_THAT(matcher.Match(TlsPayloadRecord(*w, 1), db, nullptr, 0, &events), IsOk());
  EXPECT_TRUE(events.empty());
}

TEST(TlsCoverageLineTest, SaysWhatIsCoveredAndWhy) {
  TlsCoverage none;
  none.unavailable_reason = "no CAP_BPF and CAP_PERFMON";
  EXPECT_EQ(TlsCoverageLine(none, true),
            "tls: preload libssl, libgnutls; uprobe: unavailable (no CAP_BPF and CAP_PERFMON)");
  TlsCoverage some;
  some.available = true;
  EXPECT_EQ(TlsCoverageLine(some, false),
            "tls: uprobe: none in the program (no TLS write function in its symbols); programs it "
            "starts are probed only when listed by --tls-uprobe-exe");
  some.program = "/bin/bash";
  EXPECT_EQ(TlsCoverageLine(some, true),
            "tls: preload libssl, libgnutls; uprobe: none in /bin/bash (no TLS write function in "
            "its symbols); programs it starts are probed only when listed by --tls-uprobe-exe");
  some.program_stripped = true;
  EXPECT_EQ(TlsCoverageLine(some, true),
            "tls: preload libssl, libgnutls; uprobe: none in /bin/bash (stripped: a TLS library "
            "inside it cannot be found); programs it starts are probed only when listed by "
            "--tls-uprobe-exe");
  some.program_stripped = false;
  some.probes = {"openssl SSL_write in /usr/bin/node", "openssl SSL_write_ex in /usr/bin/node"};
  EXPECT_EQ(TlsCoverageLine(some, true),
            "tls: preload libssl, libgnutls; uprobe: openssl SSL_write in /usr/bin/node, openssl "
            "SSL_write_ex in /usr/bin/node");
}

}  // namespace
}  // namespace idflow::agent

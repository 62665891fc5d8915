// Who is responsible (ResolveResponsible over the runtime / first_party
// lists and the bindings), the observation and violation rules of Judge, and
// the loader's errors on those lists.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/policy/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/real_policy.h"
#include "tests/testing/status_matchers.h"

namespace idflow::policy {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Role = Responsible::Role;

constexpr char kLibc[] = "/usr/lib/x86_64-linux-gnu/libc.so.6";
constexpr char kLibstdcxx[] = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30";
constexpr char kLibz[] = "/lib/x86_64-linux-gnu/libz.so.1.2.13";
constexpr char kGio[] = "/usr/lib/x86_64-linux-gnu/libgio-2.0.so.0.7400.6";
constexpr char kLd[] = "/lib64/ld-linux-x86-64.so.2";
constexpr char kLebo[] = "/opt/idflow/lib/liblebo_sdk.so";
constexpr char kIdm[] = "/opt/idflow/lib/libidm_sdk.so";
constexpr char kMystery[] = "/opt/idflow/lib/libmystery_sdk.so";
constexpr char kHost[] = "/opt/idflow/bin/idflow-demo-host";

TEST(ResolveTest, SdkBehindRuntimeFramesIsPicked) {
  // std::ifstream -> libstdc++ -> libc; zlib compressing before the send.
  for (const std::vector<std::string>& chain :
       std::vector<std::vector<std::string>>{{kLibc, kLibstdcxx, kLebo, kHost},
                                             {kLibc, kLibz, kLibstdcxx, kLebo, kHost},
                                             {kLd, kLibc, kGio, kLebo},
                                             {kLebo}}) {
    Responsible r = ResolveResponsible(RealPolicy(), chain, kHost);
    EXPECT_EQ(r.role, Role::kSdk) << chain.size();
    EXPECT_EQ(r.module, kLebo);
    EXPECT_EQ(r.sdk, "Lebo SDK");
  }
}

TEST(ResolveTest, InnermostSdkWinsOverOuterSdkAndUnboundCode) {
  // An unbound library called by IDM: the SDK still answers for it.
  Responsible r =
      ResolveResponsible(RealPolicy(), {kLibc, "/opt/x/libhelper.so", kIdm, kLebo}, kHost);
  EXPECT_EQ(r.role, Role::kSdk);
  EXPECT_EQ(r.sdk, "IDM SDK");
}

TEST(ResolveTest, AllRuntimeChainIsNobody) {
  for (const std::vector<std::string>& chain : std::vector<std::vector<std::string>>{
           {}, {kLibc}, {kLd, kLibc, kLibstdcxx, kLibz, kGio}, {"", kLibc}}) {
    Responsible r = ResolveResponsible(RealPolicy(), chain, "/usr/bin/whatever");
    EXPECT_EQ(r.role, Role::kNone) << chain.size();
    EXPECT_EQ(r.module, "");
    EXPECT_EQ(r.sdk, "");
  }
}

TEST(ResolveTest, FirstPartyExecutable) {
  Responsible r = ResolveResponsible(RealPolicy(), {kLibc, kLibstdcxx, kHost}, kHost);
  EXPECT_EQ(r.role, Role::kFirstParty);
  EXPECT_EQ(r.module, kHost);
  EXPECT_TRUE(RealPolicy().IsFirstParty(kHost));
  EXPECT_FALSE(RealPolicy().IsFirstParty("/usr/bin/cat"));
}

TEST(ResolveTest, UnboundModuleIsNeverARuntimeLibrary) {
  Responsible r = ResolveResponsible(RealPolicy(), {kLibc, kLibstdcxx, kMystery, kHost}, kHost);
  EXPECT_EQ(r.role, Role::kUnbound);
  EXPECT_EQ(r.module, kMystery);
  r = ResolveResponsible(RealPolicy(), {kLibc, "/usr/bin/cat"}, "/usr/bin/cat");
  EXPECT_EQ(r.role, Role::kUnbound);
  EXPECT_EQ(r.module, "/usr/bin/cat");
}

TEST(ResolveTest, DefaultRuntimeListCoversTheNamedLibraries) {
  for (const char* m : {"libc.so.6",
                        "/lib64/ld-linux-x86-64.so.2",
                        "/lib/libpthread.so.0",
                        "libdl.so.2",
                        "libm.so.6",
                        "librt.so.1",
                        "libstdc++.so.6",
                        "libgcc_s.so.1",
                        "libz.so.1",
                        "libzstd.so.1",
                        "liblzma.so.5",
                        "libbz2.so.1.0",
                        "libbrotlidec.so.1",
                        "libssl.so.3",
                        "libcrypto.so.3",
                        "libgnutls.so.30",
                        "libnettle.so.8",
                        "libhogweed.so.6",
                        "libgmp.so.10",
                        "libnss_files.so.2",
                        "libresolv.so.2",
                        "libcurl.so.4",
                        "libcurl-gnutls.so.4",
                        "libnghttp2.so.14",
                        "libidn2.so.0",
                        "libpsl.so.5",
                        "libssh2.so.1",
                        "librtmp.so.1",
                        "libldap-2.5.so.0",
                        "liblber-2.5.so.0",
                        "libsasl2.so.2",
                        "libkrb5.so.3",
                        "libgssapi_krb5.so.2",
                        "libk5crypto.so.3",
                        "libcom_err.so.2",
                        "libkeyutils.so.1",
                        "libglib-2.0.so.0",
                        "libgio-2.0.so.0",
                        "libgobject-2.0.so.0",
                        "libgthread-2.0.so.0",
                        "libgmodule-2.0.so.0",
                        "libsoup-3.0.so.0",
                        "libQt5Network.so.5",
                        "libQt6Core.so.6",
                        "libQt5DBus.so.5",
                        "libboost_system.so.1.74.0",
                        "libuv.so.1",
                        "libevent-2.1.so.7",
                        "libevent_core-2.1.so.7",
                        "libev.so.4",
                        "libcares.so.2",
                        "libpython3.11.so.1.0",
                        "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so",
                        "/usr/lib/jvm/java-17-openjdk-amd64/lib/libnet.so",
                        "libjava.so",
                        "libnio.so",
                        "libverify.so",
                        "libnode.so.108",
                        "libv8.so",
                        "libffi.so.8",
                        "libdbus-1.so.3",
                        "libsystemd.so.0",
                        "libprotobuf.so.32",
                        "libgrpc++.so.1.51",
                        "libgrpc.so.29",
                        "libabsl_strings.so.20220623",
                        "libsqlite3.so.0",
                        "libxml2.so.2",
                        "libexpat.so.1",
                        "libunistring.so.2",
                        "libtasn1.so.6",
                        "libp11-kit.so.0",
                        "libcap.so.2",
                        "libselinux.so.1",
                        "libpcre2-8.so.0",
                        "libmount.so.1",
                        "libblkid.so.1",
                        "libuuid.so.1",
                        "libtinfo.so.6",
                        "libreadline.so.8",
                        "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
                        "/opt/idflow/lib/libidflow-tap.so"}) {
    EXPECT_TRUE(RealPolicy().IsRuntime(m)) << m;
  }
  for (const char* m : {kLebo, kMystery, kHost, "/usr/bin/curl", "libcustom.so", "libcz.so",
                        "/opt/x/libzlib_sdk.so", "/opt/x/libthread_sdk.so",
                        "/opt/x/libstream_sdk.so", "/opt/app/libcx.so.6", "libnetwork_sdk.so"}) {
    EXPECT_FALSE(RealPolicy().IsRuntime(m)) << m;
  }
}

// ---- a synthetic policy: every pattern kind, process bindings ----------------

constexpr char kOntology[] = R"(schema: idflow.policy/v1
kind: ontology
data_types:
  - id: device_id
  - id: mac_address
entities:
  - id: acme
    name: Acme Ltd.
    domains: ["*.acme.com"]
sharing_methods:
  - id: sdk_local_acquisition
    actions: [acquire, transmit]
)";

constexpr char kStatement[] = R"(schema: idflow.policy/v1
kind: statement
id: s
version: v1
entries:
  - id: foo-sdk
    third_party: Acme Ltd.
    entity: acme
    sdk: Foo SDK
    data_types: [device_id]
    sharing_methods: [sdk_local_acquisition]
  - id: app-sdk
    third_party: Acme Ltd.
    entity: acme
    sdk: Acme App
    data_types: [mac_address]
)";

constexpr char kBindings[] = R"(schema: idflow.policy/v1
kind: bindings
bindings:
  - sdk: Foo SDK
    modules: ["*/libfoo.so"]
  - sdk: Acme App
    processes: ["/opt/acme/bin/*"]
runtime:
  - soname: libc.so.6
  - glob: "libQt5*.so*"
  - path: "/opt/runtime/*"
first_party:
  - path: "*/bin/acme-main"
  - glob: "libacme_ui*.so"
)";

absl::StatusOr<Policy> LoadBindings(const std::vector<PolicyFile>& bindings) {
  return LoadPolicyFromStrings({"ontology.yaml", kOntology}, {{"s.yaml", kStatement}}, bindings);
}

class SyntheticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = LoadBindings({{"b.yaml", kBindings}});
    ASSERT_THAT(p, IsOk());
    policy_ = *std::move(p);
  }
  Policy policy_;
};

TEST_F(SyntheticTest, EveryPatternKind) {
  EXPECT_TRUE(policy_.IsRuntime("/lib/libc.so.6"));
  EXPECT_FALSE(policy_.IsRuntime("/lib/libc.so.7"));  // soname is exact
  EXPECT_TRUE(policy_.IsRuntime("/usr/lib/libQt5Network.so.5.15.8"));
  EXPECT_FALSE(policy_.IsRuntime("/usr/libQt5x/other.so"));  // glob sees the file name only
  EXPECT_TRUE(policy_.IsRuntime("/opt/runtime/lib/libanything.so"));
  EXPECT_FALSE(policy_.IsRuntime("/opt/other/runtime/libanything.so"));
  EXPECT_TRUE(policy_.IsFirstParty("/opt/acme/bin/acme-main"));
  EXPECT_TRUE(policy_.IsFirstParty("/opt/acme/lib/libacme_ui2.so"));
  EXPECT_FALSE(policy_.IsFirstParty("/opt/acme/lib/libfoo.so"));
}

TEST_F(SyntheticTest, ProcessBindingFallback) {
  // Only runtime frames: the process's binding answers, with the exe as module.
  Responsible r = ResolveResponsible(policy_, {"/lib/libc.so.6"}, "/opt/acme/bin/acme-helper");
  EXPECT_EQ(r.role, Role::kSdk);
  EXPECT_EQ(r.sdk, "Acme App");
  EXPECT_EQ(r.module, "/opt/acme/bin/acme-helper");
  // Unbound code in a bound process is the process's SDK...
  r = ResolveResponsible(policy_, {"/lib/libc.so.6", "/opt/acme/lib/libx.so"},
                         "/opt/acme/bin/acme-helper");
  EXPECT_EQ(r.role, Role::kSdk);
  EXPECT_EQ(r.module, "/opt/acme/lib/libx.so");
  EXPECT_EQ(r.sdk, "Acme App");
  // ...a module binding still wins, and first-party code stays first-party.
  r = ResolveResponsible(policy_, {"/opt/acme/lib/libx.so", "/opt/acme/lib/libfoo.so"},
                         "/opt/acme/bin/acme-helper");
  EXPECT_EQ(r.sdk, "Foo SDK");
  r = ResolveResponsible(policy_, {"/opt/acme/bin/acme-main"}, "/opt/acme/bin/acme-main");
  EXPECT_EQ(r.role, Role::kFirstParty);
  // No binding for the process: nobody.
  r = ResolveResponsible(policy_, {"/lib/libc.so.6"}, "/usr/bin/other");
  EXPECT_EQ(r.role, Role::kNone);
}

TEST_F(SyntheticTest, HandBuiltPolicyWithoutIndexGivesTheSameAnswers) {
  Policy copy = policy_;
  copy.module_index.reset();
  EXPECT_TRUE(copy.IsRuntime("/usr/lib/libQt5Core.so.5"));
  EXPECT_EQ(ResolveResponsible(copy, {"/lib/libc.so.6", "/x/libfoo.so"}, "").sdk, "Foo SDK");
  // An edited list takes effect once re-indexed.
  copy.runtime.push_back({ModulePattern::Kind::kGlob, "libfoo.so", "", 0});
  IndexModules(&copy);
  EXPECT_EQ(ResolveResponsible(copy, {"/lib/libc.so.6", "/x/libfoo.so"}, "").role, Role::kNone);
}

// ---- observation vs violation --------------------------------------------------

Flow At(std::vector<std::string> chain, std::string data, std::string action,
        std::string exe = "/usr/bin/app") {
  Flow f;
  f.call_chain = std::move(chain);
  f.exe = std::move(exe);
  f.data_type = std::move(data);
  f.action = std::move(action);
  f.channel = action == "transmit" ? "tcp" : "";
  return f;
}

void ExpectVerdict(const Verdict& v, Category want, const std::string& module,
                   const std::string& explanation) {
  EXPECT_EQ(CategoryName(v.category), CategoryName(want)) << v.explanation;
  EXPECT_EQ(v.finding, FindingOf(want));
  EXPECT_EQ(v.module, module);
  EXPECT_THAT(v.explanation, HasSubstr(explanation));
  ASSERT_FALSE(v.explanation.empty());
  EXPECT_EQ(v.explanation.back(), '.');
}

TEST(JudgeRulesTest, UndeclaredModuleSendingIsUndeclaredParty) {
  // README example: libmystery_sdk.so sends the OAID to collect.adnet.example.
  Flow f = At({kLibc, kLibstdcxx, kMystery, kHost}, "oaid", "transmit", kHost);
  f.dest_host = "collect.adnet.example";
  Verdict v = Judge(RealPolicy(), f);
  ExpectVerdict(v, Category::kUndeclaredParty, kMystery,
                "Module /opt/idflow/lib/libmystery_sdk.so maps to no SDK declared in "
                "interconnectivity-data-sharing v20250508");
  EXPECT_EQ(v.finding, Finding::kViolation);
  EXPECT_EQ(v.statement, "interconnectivity-data-sharing");
  EXPECT_EQ(v.sdk, "");
}

TEST(JudgeRulesTest, FirstPartySendingIsUndeclaredParty) {
  Flow f = At({kLibc, kHost}, "mac_address", "transmit", kHost);
  ExpectVerdict(Judge(RealPolicy(), f), Category::kUndeclaredParty, kHost, "(the app's own code)");
}

TEST(JudgeRulesTest, DeclaredSdkBeyondItsDeclarationIsAViolation) {
  // Lebo declares only TV name and type: sending the MAC is omitted...
  Flow f = At({kLibc, kLibz, kLebo, kHost}, "mac_address", "transmit", kHost);
  f.dest_host = "cast.hpplay.com.cn";
  Verdict v = Judge(RealPolicy(), f);
  ExpectVerdict(v, Category::kOmitted, kLebo, "Lebo SDK sent mac_address, but entry lebo-sdk");
  EXPECT_EQ(v.sdk, "Lebo SDK");
  EXPECT_EQ(v.entry, "lebo-sdk");
  // ...and so is reading it: collection beyond the declaration.
  v = Judge(RealPolicy(), At({kLibc, kLibstdcxx, kLebo, kHost}, "mac_address", "acquire", kHost));
  ExpectVerdict(v, Category::kOmitted, kLebo, "Lebo SDK read mac_address, but entry lebo-sdk");
  // To another party: wrong_recipient.
  f = At({kLibc, kLebo}, "device_name", "transmit", kHost);
  f.dest_host = "data.mi.com";
  ExpectVerdict(Judge(RealPolicy(), f), Category::kWrongRecipient, kLebo, "belongs to Xiaomi Inc.");
}

TEST(JudgeRulesTest, DeclaredSdkWithinItsDeclarationIsClear) {
  Flow f = At({kLibc, kLibstdcxx, kIdm, kHost}, "mac_address", "transmit", kHost);
  f.dest_host = "idm.discovery.mi.com";
  f.scenarios = {"device_discovery"};
  Verdict v = Judge(RealPolicy(), f);
  ExpectVerdict(v, Category::kClear, kIdm, "as declared by entry idm-sdk");
  EXPECT_EQ(v.sdk, "IDM SDK");
  v = Judge(RealPolicy(), At({kLibc, kLibstdcxx, kIdm}, "mac_address", "acquire", kHost));
  ExpectVerdict(v, Category::kClear, kIdm, "IDM SDK read mac_address");
}

TEST(JudgeRulesTest, LocalAcquisitionIsAnObservation) {
  // `cat /sys/class/net/eth0/address`.
  Verdict v =
      Judge(RealPolicy(), At({kLibc, "/usr/bin/cat"}, "mac_address", "acquire", "/usr/bin/cat"));
  ExpectVerdict(v, Category::kLocalAcquisition, "/usr/bin/cat",
                "Unbound module /usr/bin/cat read mac_address without sending it");
  EXPECT_EQ(v.statement, "");
  EXPECT_FALSE(IsViolation(v.category));
  v = Judge(RealPolicy(), At({kLibc, kLibstdcxx, kHost}, "mac_address", "acquire", kHost));
  ExpectVerdict(v, Category::kLocalAcquisition, kHost, "First-party module");
}

TEST(JudgeRulesTest, UnattributableIsAnObservation) {
  // During fork: no chain at all; or only runtime frames.
  ExpectVerdict(Judge(RealPolicy(), At({}, "mac_address", "transmit", "/usr/bin/x")),
                Category::kUnattributable, "", "empty, e.g. during fork");
  ExpectVerdict(Judge(RealPolicy(), At({kLd, kLibc}, "mac_address", "acquire", "")),
                Category::kUnattributable, "", "2 runtime module(s)");
}

TEST(JudgeRulesTest, SameAppIpcIsAnObservationWhateverTheModule) {
  const std::string chromium = "/usr/lib/chromium/chromium";
  for (const char* channel : {"unix", "pipe"}) {
    for (const std::vector<std::string>& chain :
         std::vector<std::vector<std::string>>{{kLibc, chromium}, {kLibc, kLebo}, {}}) {
      Flow f = At(chain, "oaid", "transmit", chromium);
      f.channel = channel;
      f.peer_exe = chromium;
      Verdict v = Judge(RealPolicy(), f);
      ExpectVerdict(v, Category::kSameAppIpc, chain.size() > 1 ? chain[1] : "",
                    "another process of the same executable /usr/lib/chromium/chromium");
    }
  }
  // Another executable at the other end, or an unknown peer, or TCP: judged as usual.
  Flow f = At({kLibc, kMystery}, "oaid", "transmit", chromium);
  f.channel = "unix";
  f.peer_exe = "/usr/bin/other";
  EXPECT_EQ(Judge(RealPolicy(), f).category, Category::kUndeclaredParty);
  f.peer_exe = "";
  EXPECT_EQ(Judge(RealPolicy(), f).category, Category::kUndeclaredParty);
  f.peer_exe = chromium;
  f.channel = "tcp";
  EXPECT_EQ(Judge(RealPolicy(), f).category, Category::kUndeclaredParty);
}

TEST(JudgeRulesTest, AgentCannotPickTheSdk) {
  // The flow carries no SDK name: only the bindings decide. A Lebo module is Lebo.
  Flow f = At({kLebo}, "mac_address", "transmit", kHost);
  EXPECT_EQ(Judge(RealPolicy(), f).sdk, "Lebo SDK");
}

// ---- loader errors on the lists --------------------------------------------------

struct BadList {
  std::string name;
  std::string yaml;  // appended to a bindings file header
  std::string prefix;
  std::string message;
  friend void PrintTo(const BadList& c, std::ostream* os) { *os << c.name; }
};

class BindingsErrorTest : public ::testing::TestWithParam<BadList> {};

TEST_P(BindingsErrorTest, NamesFileLineColumn) {
  const BadList& c = GetParam();
  auto p = LoadBindings(
      {{"rt.yaml", absl::StrCat("schema: idflow.policy/v1\nkind: bindings\n", c.yaml)}});
  ASSERT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(p.status().message()), StartsWith(c.prefix));
  EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, BindingsErrorTest,
    ::testing::Values(
        BadList{"UnknownKind", "runtime:\n  - soname: libc.so.6\n  - regex: \"lib.*\"\n",
                "rt.yaml:5:5:", "unknown pattern kind 'regex' in 'runtime'"},
        BadList{"SeveralKeys", "first_party:\n  - glob: \"a*\"\n    path: \"/b\"\n",
                "rt.yaml:5:5:", "exactly one of soname, glob, path; found also 'path'"},
        BadList{"EmptyPattern", "runtime:\n  - glob: \"\"\n",
                "rt.yaml:4:11:", "'glob' must be a non-empty string"},
        BadList{"NullPattern", "runtime:\n  - soname:\n",
                "rt.yaml:4:5:", "'soname' must be a non-empty string"},
        BadList{"ListPattern", "runtime:\n  - path: [a, b]\n",
                "rt.yaml:4:11:", "'path' must be a non-empty string"},
        BadList{"ScalarItem", "runtime:\n  - libc.so.6\n",
                "rt.yaml:4:5:", "items of 'runtime' are mappings"},
        BadList{"EmptyItem", "runtime:\n  - {}\n",
                "rt.yaml:4:5:", "items of 'runtime' are mappings"},
        BadList{"NotAList", "runtime: libc.so.6\n", "rt.yaml:3:10:", "'runtime' must be a list"},
        BadList{"SlashInSoname", "runtime:\n  - soname: /lib/libc.so.6\n",
                "rt.yaml:4:13:", "use path:"},
        BadList{"UnknownTopKey", "transparent:\n  - soname: libc.so.6\n",
                "rt.yaml:3:1:", "unknown key 'transparent'"},
        BadList{"SdkBoundTwiceInOneFile",
                "bindings:\n  - sdk: Foo SDK\n    modules: [\"*/a.so\"]\n  - sdk: Foo SDK\n"
                "    modules: [\"*/b.so\"]\n",
                "rt.yaml:6:10:", "SDK 'Foo SDK' is already bound at rt.yaml:4"}),
    [](const ::testing::TestParamInfo<BadList>& p) { return p.param.name; });

TEST(BindingsErrorTest, SdkBoundTwiceAcrossFiles) {
  auto p = LoadBindings(
      {{"a.yaml", kBindings},
       {"z.yaml",
        "schema: idflow.policy/v1\nkind: bindings\nbindings:\n  - sdk: Foo SDK\n    modules: "
        "[\"*/libfoo2.so\"]\n"}});
  ASSERT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(p.status().message()),
              StartsWith("z.yaml:4:10: SDK 'Foo SDK' is already bound at a.yaml:4"));
}

TEST(BindingsErrorTest, ListsAreRecordedWithTheirPosition) {
  auto p = LoadBindings({{"b.yaml", kBindings}});
  ASSERT_THAT(p, IsOk());
  ASSERT_EQ(p->runtime.size(), 3u);
  EXPECT_EQ(p->runtime[1].kind, ModulePattern::Kind::kGlob);
  EXPECT_EQ(p->runtime[1].pattern, "libQt5*.so*");
  EXPECT_EQ(p->runtime[1].file, "b.yaml");
  EXPECT_EQ(p->runtime[1].line, 10);
  ASSERT_EQ(p->first_party.size(), 2u);
  EXPECT_EQ(p->first_party[0].kind, ModulePattern::Kind::kPath);
  ASSERT_EQ(p->bindings.size(), 2u);
  EXPECT_EQ(p->bindings[1].line, 6);
}

}  // namespace
}  // namespace idflow::policy

// Statement importer: the seed round trip, format variants, errors.
#include "collector/policy/importer.h"

#include <fstream>
#include <sstream>
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

const std::string kSource = IDFLOW_SOURCE_DIR;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Seed 002, checked in with the fuzz corpus (same bytes as
// ../shared/seeds/002_46d1b234ed020678.txt): never skipped.
const std::string kSeed002 = kSource + "/tests/fuzz/corpus/fuzz_statement_importer/seed002.txt";

TEST(ImporterTest, SeedRoundTripsByteForByte) {
  const std::string seed = Slurp(kSeed002);
  ASSERT_FALSE(seed.empty()) << "missing test data " << kSeed002;
  std::vector<std::string> warnings;
  auto st =
      ImportStatementText(seed, "seeds/002_46d1b234ed020678.txt", RealPolicy().ontology, &warnings);
  ASSERT_THAT(st, IsOk());
  EXPECT_THAT(warnings, IsEmpty());
  const std::string want = Slurp(kSource + "/policies/statements/interconnectivity-v20250508.yaml");
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(StatementToYaml(*st), want);
}

TEST(ImporterTest, ImportedEqualsLoaded) {
  const std::string seed = Slurp(kSeed002);
  ASSERT_FALSE(seed.empty()) << "missing test data " << kSeed002;
  auto st = ImportStatementText(seed, "seeds/002_46d1b234ed020678.txt", RealPolicy().ontology);
  ASSERT_THAT(st, IsOk());
  ASSERT_EQ(RealPolicy().statements.size(), 1u);
  const Statement& loaded = RealPolicy().statements[0];
  EXPECT_EQ(st->id, loaded.id);
  EXPECT_EQ(st->version, loaded.version);
  ASSERT_EQ(st->entries.size(), 15u);
  for (size_t i = 0; i < st->entries.size(); ++i) {
    const Entry& a = st->entries[i];
    const Entry& b = loaded.entries[i];
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.sdk, b.sdk);
    EXPECT_EQ(a.data_types, b.data_types) << a.id;
    EXPECT_EQ(a.scenarios, b.scenarios) << a.id;
    EXPECT_EQ(a.requires_consent, b.requires_consent) << a.id;
  }
}

TEST(ImporterTest, EmittedYamlLoads) {
  Statement s;
  s.id = "x";
  s.version = "2022-06-08 更新";
  s.title = "Quote \"me\" \\ here";
  Entry e;
  e.id = "foo-sdk";
  e.third_party = "Xiaomi Inc.";
  e.entity = "xiaomi";
  e.sdk = "Foo: SDK # 1";
  e.shared_data = {"a: b", "'c'"};
  e.data_types = {"oaid"};
  s.entries.push_back(e);
  std::string yaml = StatementToYaml(s);
  const Policy& real = RealPolicy();
  // Reuse the real ontology file text so references resolve.
  auto p = LoadPolicyFromStrings({"o.yaml", Slurp(kSource + "/policies/ontology.yaml")},
                                 {{"s.yaml", yaml}}, {});
  ASSERT_THAT(p, IsOk()) << yaml;
  const Entry& got = p->statements[0].entries[0];
  EXPECT_EQ(p->statements[0].version, s.version);
  EXPECT_EQ(p->statements[0].title, s.title);
  EXPECT_EQ(got.sdk, e.sdk);
  EXPECT_EQ(got.shared_data, e.shared_data);
  EXPECT_FALSE(real.statements.empty());
}

TEST(ImporterTest, SplitsNestedParenthesesAndChineseLists) {
  EXPECT_THAT(SplitSharedData("device ID, IP address, and file info (a, b (c, d)), name"),
              ElementsAre("device ID", "IP address", "file info (a, b (c, d))", "name"));
  EXPECT_THAT(SplitSharedData("【设备ID、IP地址（含端口，协议）、蓝牙地址】"),
              ElementsAre("设备ID", "IP地址（含端口，协议）", "蓝牙地址"));
  EXPECT_THAT(SplitSharedData("设备名称和设备类型；及MAC地址"),
              ElementsAre("设备名称和设备类型", "MAC地址"));
}

TEST(ImporterTest, MapsItemsThroughOntology) {
  const Ontology& o = RealPolicy().ontology;
  EXPECT_THAT(MapSharedDataItem("device ID (OAID)", o), ElementsAre("oaid"));
  EXPECT_THAT(MapSharedDataItem("TV name and type", o), ElementsAre("device_name", "device_type"));
  EXPECT_THAT(MapSharedDataItem("Service ID (calculated based on device ID, unique device FID)", o),
              ElementsAre("service_id"));
  EXPECT_THAT(MapSharedDataItem("MAC addresses of Xiaomi Home devices", o),
              ElementsAre("mac_address"));
  EXPECT_THAT(MapSharedDataItem("app ID", o), ElementsAre("app_id"));
  EXPECT_THAT(MapSharedDataItem("设备MAC地址", o), ElementsAre("mac_address"));
  EXPECT_THAT(MapSharedDataItem("firmware hash", o), IsEmpty());
  // Whole words only: "typewriter" is not "type".
  EXPECT_THAT(MapSharedDataItem("typewriter names", o), ElementsAre("device_name"));
}

constexpr char kChinese[] = R"(版本：v2
互联互通第三方信息共享清单

乐播投屏
· 第三方公司名称：深圳乐播科技有限公司
· 共享类型：SDK（乐播SDK（投屏版））
· 共享信息：【设备名称、设备类型、未知字段（含（嵌套）括号）】
· 使用目的：识别电视型号
· 使用场景：投屏时
· 共享方式：SDK本地采集
· 相关权限：网络
· 第三方个人信息处理规则/官网链接：https://cdn.hpplay.com.cn/xm/privacy.html
)";

TEST(ImporterTest, ChineseLabelsFullWidthColonsAndBrackets) {
  std::vector<std::string> warnings;
  auto st = ImportStatementText(kChinese, "zh.txt", RealPolicy().ontology, &warnings);
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->version, "v2");
  EXPECT_EQ(st->title, "互联互通第三方信息共享清单");
  // Ids derive from the title (pinyin for Chinese), never from the file name.
  EXPECT_EQ(st->id, "hu-lian-hu-tong-xin-xi-gong-xiang-qing-dan");
  ASSERT_EQ(st->entries.size(), 1u);
  const Entry& e = st->entries[0];
  EXPECT_EQ(e.title, "乐播投屏");
  EXPECT_EQ(e.entity, "lebo");
  EXPECT_EQ(e.sharing_type, "SDK");
  EXPECT_EQ(e.sdk, "乐播SDK（投屏版）");
  EXPECT_EQ(e.id, "le-bo-sdk-tou-ping-ban");
  EXPECT_THAT(e.shared_data, ElementsAre("设备名称", "设备类型", "未知字段（含（嵌套）括号）"));
  EXPECT_THAT(e.data_types, ElementsAre("device_name", "device_type"));
  // The clause no term covers is kept verbatim (once, not piece by piece).
  EXPECT_THAT(e.unmapped, ElementsAre("未知字段（含（嵌套）括号）"));
  EXPECT_THAT(e.scenarios, ElementsAre("casting"));
  EXPECT_THAT(e.sharing_methods, ElementsAre("sdk_local_acquisition"));
  EXPECT_EQ(e.rules_link, "https://cdn.hpplay.com.cn/xm/privacy.html");
  // The unknown item is kept and reported; the extra label is reported.
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_THAT(warnings[0], StartsWith("zh.txt:11:3: label '相关权限' ignored"));
  EXPECT_THAT(warnings[1], StartsWith("zh.txt:7:"));
  EXPECT_THAT(warnings[1], HasSubstr("未知字段"));
}

constexpr char kNoHeadings[] = R"(Version: 3
Some Data Sharing Statement

• Third party name: Xiaomi Inc.
• Sharing type: SDK (IDM SDK)
• Shared information: device ID (OAID), Bluetooth address
• Related permissions: Bluetooth
• Usage scenario: during casting
• Sharing method: SDK local acquisition
• Third party name: Xiaomi Inc.
• Sharing type: SDK (IDM SDK)
• Shared data: P2P address
• Usage scenario: when discovering nearby devices
)";

TEST(ImporterTest, HeadingsAbsentAndLabelSynonyms) {
  auto st = ImportStatementText(kNoHeadings, "x.txt", RealPolicy().ontology);
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->title, "Some Data Sharing Statement");
  EXPECT_EQ(st->id, "some-data-sharing");
  ASSERT_EQ(st->entries.size(), 2u);
  EXPECT_EQ(st->entries[0].title, "");
  EXPECT_THAT(st->entries[0].data_types, ElementsAre("oaid", "bluetooth_address"));
  // The same SDK twice: ids carry the first scenario.
  EXPECT_EQ(st->entries[0].id, "idm-sdk-casting");
  EXPECT_EQ(st->entries[1].id, "idm-sdk-device-discovery");
  EXPECT_THAT(st->entries[1].data_types, ElementsAre("p2p_address"));
}

TEST(ImporterTest, MarkdownEmphasisAndBracketsAroundLabelsAreMarkup) {
  auto st = ImportStatementText(
      "# Bold Labels Statement\nVersion: 1\n\n- **Third party name**: Xiaomi Inc.\n"
      "- **Sharing type**: SDK (IDM SDK)\n- **Shared data**: device ID, MAC address\n"
      "- 【使用场景】：投屏时\n",
      "bold.md", RealPolicy().ontology);
  ASSERT_THAT(st, IsOk());
  ASSERT_EQ(st->entries.size(), 1u);
  EXPECT_EQ(st->title, "Bold Labels Statement");
  EXPECT_THAT(st->entries[0].data_types, ElementsAre("device_id", "mac_address"));
  EXPECT_THAT(st->entries[0].scenarios, ElementsAre("casting"));
}

TEST(ImporterTest, APartyNameSpelledWithSpacesInsideCjkLoadsBack) {
  // The importer matches 小米科技有限责任公 司 to Xiaomi; the loader must agree.
  auto st = ImportStatementText(
      "版本：1\n清单\n\n· 第三方名称：小米科技有限责任公 司\n· 共享类型：SDK（IDM SDK）\n"
      "· 共享信息：设备 ID\n",
      "zh2.txt", RealPolicy().ontology);
  ASSERT_THAT(st, IsOk());
  ASSERT_EQ(st->entries.size(), 1u);
  EXPECT_EQ(st->entries[0].entity, "xiaomi");
  EXPECT_NE(RealPolicy().ontology.FindEntityByName("小米科技有限责任公 司"), nullptr);
}

struct BadText {
  std::string name;
  std::string text;
  std::string prefix;
  std::string message;
  friend void PrintTo(const BadText& b, std::ostream* os) { *os << b.name; }
};

class ImporterErrorTest : public ::testing::TestWithParam<BadText> {};

TEST_P(ImporterErrorTest, CitesLineAndColumn) {
  auto st = ImportStatementText(GetParam().text, "in.txt", RealPolicy().ontology);
  ASSERT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(st.status().message()), StartsWith(GetParam().prefix));
  EXPECT_THAT(std::string(st.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Bad, ImporterErrorTest,
    ::testing::Values(BadText{"NoVersion", "Title\n• Third party name: Xiaomi Inc.\n",
                              "in.txt:1:1:", "no version line ('Version:'"},
                      BadText{"NoEntries", "Version: 1\nTitle\n", "in.txt:3:1:", "no entries"},
                      BadText{"BulletWithoutColon", "Version: 1\n\n  • Third party name Xiaomi\n",
                              "in.txt:3:5:", "not 'Label: value'"},
                      BadText{"NoSharingType",
                              "Version: 1\nHeading\n• Third party name: Xiaomi Inc.\n",
                              "in.txt:3:3:", "no sharing type"},
                      BadText{"NoThirdParty", "Version: 1\n• Sharing type: SDK (A)\n",
                              "in.txt:2:3:", "no third party name"}),
    [](const ::testing::TestParamInfo<BadText>& p) { return p.param.name; });

}  // namespace
}  // namespace idflow::policy

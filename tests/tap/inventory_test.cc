#include "agent/inventory.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "idflow-inv-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  void Write(const std::string& rel, const std::string& content) const {
    fs::path p = fs::path(path_) / rel;
    fs::create_directories(p.parent_path());
    ASSERT_THAT(WriteFileAtomic(p.string(), content), IsOk());
  }

 private:
  std::string path_;
};

TEST(IdentityTest, ParsesFullFile) {
  auto id = ParseIdentity(R"(
device: {id: qa-phone-0001, class: qa-phone, firmware: "1.2.3"}
digest_key: "00112233"
identifiers:
  - {kind: oaid, value: "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8"}
  - {kind: bluetooth_address, value: "AA:BB:CC:DD:EE:01", instance: hci0}
  - {kind: device_id, value: "dev-123456"}
)",
                          "id.yaml");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->device_id, "qa-phone-0001");
  EXPECT_EQ(id->device_class, "qa-phone");
  EXPECT_EQ(id->firmware, "1.2.3");
  EXPECT_EQ(id->digest_key, "00112233");
  ASSERT_THAT(id->identifiers, SizeIs(3));
  EXPECT_EQ(id->identifiers[1].kind, "bluetooth_address");
  EXPECT_EQ(id->identifiers[1].instance, "hci0");
  EXPECT_EQ(id->identifiers[1].source, "identity_file");
}

TEST(IdentityTest, UnknownKeyReportsPosition) {
  auto id = ParseIdentity(
      "device: {id: a}\nidentifiers:\n  - {kind: oaid, value: x, colour: red}\n", "id.yaml");
  EXPECT_THAT(id, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("id.yaml:3:"));
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("colour"));
}

TEST(IdentityTest, UnknownTopLevelKey) {
  auto id = ParseIdentity("device: {id: a}\nextra: 1\n", "f");
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("f:2:1: unknown key 'extra'"));
}

TEST(IdentityTest, SyntaxErrorReportsPosition) {
  auto id = ParseIdentity("device: {id: a\nidentifiers: [\n", "bad.yaml");
  EXPECT_THAT(id, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(id.status().message()),
              ::testing::MatchesRegex("bad\\.yaml:[0-9]+:[0-9]+: .*"));
}

TEST(IdentityTest, MissingDeviceIdAndBadMac) {
  EXPECT_THAT(std::string(ParseIdentity("device: {class: x}\n", "f").status().message()),
              HasSubstr("missing required key 'id'"));
  auto bad = ParseIdentity(
      "device: {id: a}\nidentifiers:\n  - {kind: mac_address, value: \"not-a-mac\"}\n", "f");
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("f:3:"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("hardware address"));
  EXPECT_THAT(
      std::string(
          ParseIdentity("device: {id: a}\nidentifiers:\n  - {kind: Bad-Kind, value: x}\n", "f")
              .status()
              .message()),
      HasSubstr("invalid kind"));
}

TEST(IdentityTest, UnreadableFile) {
  auto id = LoadIdentityFile("/nonexistent/identity.yaml");
  EXPECT_FALSE(id.ok());
  EXPECT_THAT(std::string(id.status().message()),
              HasSubstr("cannot read identity file /nonexistent"));
}

TEST(IdentityTest, LoadsFromFile) {
  TempDir dir;
  dir.Write("id.yaml", "device: {id: d1}\n");
  auto id = LoadIdentityFile(dir.path() + "/id.yaml");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->device_id, "d1");
  EXPECT_TRUE(id->identifiers.empty());
}

TEST(PlaceholderTest, Addresses) {
  EXPECT_TRUE(IsPlaceholder("mac_address", "00:00:00:00:00:00"));
  EXPECT_TRUE(IsPlaceholder("mac_address", "02:00:00:00:00:00"));
  EXPECT_TRUE(IsPlaceholder("mac_address", "FF:FF:FF:FF:FF:FF"));
  EXPECT_TRUE(IsPlaceholder("bluetooth_address", "000000000000"));
  EXPECT_TRUE(IsPlaceholder("mac_address", ""));
  EXPECT_FALSE(IsPlaceholder("mac_address", "02:00:00:00:00:01"));
  EXPECT_FALSE(IsPlaceholder("mac_address", "3c:22:fb:12:34:56"));
}

TEST(PlaceholderTest, Ids) {
  EXPECT_TRUE(IsPlaceholder("oaid", "00000000-0000-0000-0000-000000000000"));
  EXPECT_TRUE(IsPlaceholder("device_id", "0000"));
  EXPECT_TRUE(IsPlaceholder("oaid", "  "));
  EXPECT_FALSE(IsPlaceholder("oaid", "00000000-0000-0000-0000-000000000001"));
  EXPECT_FALSE(IsPlaceholder("device_id", "abc"));
}

TEST(CanonicalTest, Forms) {
  EXPECT_EQ(CanonicalValue("mac_address", "AA-BB-CC-DD-EE-FF"), "aa:bb:cc:dd:ee:ff");
  EXPECT_EQ(CanonicalValue("bluetooth_address", "AABBCCDDEEFF"), "aa:bb:cc:dd:ee:ff");
  EXPECT_EQ(CanonicalValue("oaid", "ABC-def"), "abc-def");
}

TEST(SysfsTest, DiscoversInterfacesAndBluetooth) {
  TempDir dir;
  dir.Write("class/net/wlan0/address", "3C:22:FB:12:34:56\n");
  dir.Write("class/net/eth0/address", "00:1a:2b:3c:4d:5e\n");
  dir.Write("class/net/lo/address", "00:00:00:00:00:00\n");
  dir.Write("class/net/p2p0/address", "02:00:00:00:00:00\n");
  dir.Write("class/net/ib0/address",
            "80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:bc:de\n");
  dir.Write("class/net/noaddr/mtu", "1500\n");
  dir.Write("class/bluetooth/hci0/address", "aa:bb:cc:dd:ee:01\n");
  dir.Write("class/bluetooth/rfkill0/address", "aa:bb:cc:dd:ee:02\n");
  std::vector<Identifier> found;
  ASSERT_THAT(DiscoverSysfs(dir.path(), &found), IsOk());
  ASSERT_THAT(found, SizeIs(3));
  EXPECT_EQ(found[0].kind, "mac_address");
  EXPECT_EQ(found[0].instance, "eth0");
  EXPECT_EQ(found[0].value, "00:1a:2b:3c:4d:5e");
  EXPECT_EQ(found[1].instance, "wlan0");
  EXPECT_EQ(found[1].value, "3c:22:fb:12:34:56");
  EXPECT_EQ(found[1].source, "sysfs");
  EXPECT_EQ(found[2].kind, "bluetooth_address");
  EXPECT_EQ(found[2].instance, "hci0");
}

TEST(SysfsTest, EmptyTreeAndMissingRoot) {
  TempDir dir;
  std::vector<Identifier> found;
  EXPECT_THAT(DiscoverSysfs(dir.path(), &found), IsOk());
  EXPECT_TRUE(found.empty());
  EXPECT_THAT(DiscoverSysfs(dir.path() + "/missing", &found),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace idflow::agent

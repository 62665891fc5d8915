#include "agent/pattern_db.h"

#include <hs/hs.h>

#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idflow/v1/event.pb.h"
#include "tests/testing/status_matchers.h"

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMac[] = "3c:22:fb:12:34:56";
constexpr char kOaid[] = "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8";

Identity TestIdentity() {
  Identity id;
  id.device_id = "qa-phone-0001";
  id.digest_key = "test-key";
  id.identifiers = {{"oaid", "", kOaid, "identity_file"},
                    {"bluetooth_address", "hci0", "AA:BB:CC:DD:EE:01", "identity_file"},
                    {"oaid", "", "00000000-0000-0000-0000-000000000000", "identity_file"}};
  return id;
}

std::vector<Identifier> Discovered() { return {{"mac_address", "wlan0", kMac, "sysfs"}}; }

// Scans `payload` embedded in noise; returns the info of the single match.
const PatternInfo* FindOne(const PatternDb& db, const std::string& form) {
  std::string data = absl::StrCat("GET /?x=1&id=", form, "&y=2 HTTP/1.1\r\n");
  auto matches = db.Scan(data);
  for (const auto& m : matches) {
    if (m.end - m.start == form.size() && data.substr(m.start, form.size()) == form) {
      return db.Lookup(m.id);
    }
  }
  return nullptr;
}

TEST(PatternDbTest, EveryMacEncodingIsFound) {
  auto db = PatternDb::Build(TestIdentity(), Discovered());
  ASSERT_THAT(db, IsOk());
  EXPECT_FALSE(db->serialized().empty());
  const std::string mac = kMac;
  const std::string nosep = "3c22fb123456";
  const std::string dash = "3c-22-fb-12-34-56";
  const std::vector<std::pair<std::string, std::string>> forms = {
      {mac, "raw"},
      {absl::AsciiStrToUpper(mac), "upper"},
      {nosep, "nosep"},
      {absl::AsciiStrToUpper(nosep), "nosep_upper"},
      {dash, "dash"},
      {absl::AsciiStrToUpper(dash), "dash_upper"},
      {Md5Hex(mac), "md5"},
      {Sha1Hex(mac), "sha1"},
      {Sha256Hex(mac), "sha256"},
      {absl::AsciiStrToUpper(Md5Hex(mac)), "md5_upper"},
      {absl::Base64Escape(mac), "base64"},
  };
  for (const auto& [form, encoding] : forms) {
    const PatternInfo* info = FindOne(*db, form);
    ASSERT_NE(info, nullptr) << form;
    EXPECT_EQ(info->kind, "mac_address") << form;
    EXPECT_EQ(info->instance, "wlan0");
    EXPECT_EQ(info->encoding, encoding) << form;
    EXPECT_EQ(info->digest, KeyedDigest("test-key", mac));
  }
}

TEST(PatternDbTest, OaidAndBluetoothEncodings) {
  auto db = PatternDb::Build(TestIdentity(), Discovered());
  ASSERT_THAT(db, IsOk());
  std::string oaid = kOaid;
  std::string nosep = "3f2a1b4c5d6e4f708192a3b4c5d6e7f8";
  for (const auto& [form, encoding] : std::vector<std::pair<std::string, std::string>>{
           {oaid, "raw"},
           {absl::AsciiStrToUpper(oaid), "upper"},
           {nosep, "nosep"},
           {absl::AsciiStrToUpper(nosep), "nosep_upper"},
           {Sha256Hex(oaid), "sha256"}}) {
    const PatternInfo* info = FindOne(*db, form);
    ASSERT_NE(info, nullptr) << form;
    EXPECT_EQ(info->kind, "oaid");
    EXPECT_EQ(info->encoding, encoding);
  }
  const PatternInfo* bt = FindOne(*db, "aa:bb:cc:dd:ee:01");
  ASSERT_NE(bt, nullptr);
  EXPECT_EQ(bt->kind, "bluetooth_address");
  EXPECT_EQ(bt->encoding, "raw");
  EXPECT_EQ(bt->digest, KeyedDigest("test-key", "aa:bb:cc:dd:ee:01"));
  // Placeholder OAID compiled nothing.
  EXPECT_EQ(FindOne(*db, "00000000-0000-0000-0000-000000000000"), nullptr);
}

TEST(PatternDbTest, DuplicatesKeepFirstLabel) {
  Identity id;
  id.identifiers = {{"mac_address", "wlan0", kMac, "identity_file"}};
  auto once = PatternDb::Build(id);
  auto twice = PatternDb::Build(id, {{"mac_address", "eth0", kMac, "sysfs"}});
  ASSERT_THAT(once, IsOk());
  ASSERT_THAT(twice, IsOk());
  EXPECT_EQ(once->size(), twice->size());
  const PatternInfo* info = FindOne(*twice, kMac);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->instance, "wlan0");
}

TEST(PatternDbTest, EmptyIdentityGivesEmptyDatabase) {
  auto db = PatternDb::Build(Identity{});
  ASSERT_THAT(db, IsOk());
  EXPECT_EQ(db->size(), 0u);
  EXPECT_TRUE(db->serialized().empty());
  EXPECT_TRUE(db->Scan(kMac).empty());
  EXPECT_EQ(db->Lookup(0), nullptr);
}

TEST(PatternDbTest, LookupRejectsUnknownIds) {
  auto db = PatternDb::Build(TestIdentity());
  ASSERT_THAT(db, IsOk());
  EXPECT_NE(db->Lookup(0), nullptr);
  EXPECT_EQ(db->Lookup(static_cast<uint32_t>(db->size())), nullptr);
  EXPECT_EQ(db->Lookup(0xffffffffu), nullptr);
}

// (id, start) of every match in `data` of the serialized database, scanned
// the way the tap does (deserialized copy, block mode).
std::vector<std::pair<unsigned, unsigned long long>> ScanSerialized(const PatternDb& db,
                                                                    const std::string& data) {
  std::vector<std::pair<unsigned, unsigned long long>> hits;
  hs_database_t* copy = nullptr;
  if (hs_deserialize_database(db.serialized().data(), db.serialized().size(), &copy) !=
      HS_SUCCESS) {
    ADD_FAILURE() << "serialized database does not deserialize";
    return hits;
  }
  hs_scratch_t* scratch = nullptr;
  EXPECT_EQ(hs_alloc_scratch(copy, &scratch), HS_SUCCESS);
  hs_scan(
      copy, data.data(), data.size(), 0, scratch,
      [](unsigned id, unsigned long long from, unsigned long long, unsigned, void* ctx) {
        static_cast<std::vector<std::pair<unsigned, unsigned long long>>*>(ctx)->push_back(
            {id, from});
        return 0;
      },
      &hits);
  hs_free_scratch(scratch);
  hs_free_database(copy);
  return hits;
}

TEST(PatternDbTest, SerializedDatabaseDeserializesAndScans) {
  auto db = PatternDb::Build(TestIdentity(), Discovered());
  ASSERT_THAT(db, IsOk());
  std::vector<std::pair<unsigned, unsigned long long>> hits =
      ScanSerialized(*db, absl::StrCat("mac=", kMac));
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].second, 4u);  // start of match reported (SOM_LEFTMOST)
  EXPECT_EQ(db->Lookup(hits[0].first)->encoding, "raw");
}

std::string Unpadded(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (hex[i] != '0') out += hex[i];
    out += hex[i + 1];
  }
  return out;
}

// Issue 4's encodings: separators, cases, raw and reversed bytes, hashes of
// each textual form, base64 (aligned, inner, of digests), URL-encoding.
TEST(PatternDbTest, ExtendedAddressEncodingsAreFound) {
  auto db = PatternDb::Build(TestIdentity(), Discovered());
  ASSERT_THAT(db, IsOk());
  const std::string bytes("\x3c\x22\xfb\x12\x34\x56", 6);
  const std::string reversed("\x56\x34\x12\xfb\x22\x3c", 6);
  const std::string bt_bytes("\xaa\xbb\xcc\xdd\xee\x01", 6);
  std::vector<std::pair<std::string, std::string>> forms = {
      {"3c22.fb12.3456", "dot"},
      {"3C22.FB12.3456", "dot_upper"},
      {bytes, "bytes"},
      {reversed, "bytes_reversed"},
      {absl::Base64Escape(bytes), "bytes_base64"},
      {"3c%3A22%3Afb%3A12%3A34%3A56", "url"},
      {"3C%3a22%3aFB%3a12%3a34%3a56", "url_upper"},
      {Md5Hex("3C22FB123456"), "md5(nosep_upper)"},
      {absl::AsciiStrToUpper(Sha1Hex("3C:22:FB:12:34:56")), "sha1_upper(upper)"},
      {absl::Base64Escape(absl::HexStringToBytes(Sha256Hex(kMac))), "sha256_base64"},
      {Md5Hex("3c22.fb12.3456"), "md5(dot)"},
      {Unpadded(Md5Hex(kOaid)), "md5_unpadded"},
      {absl::Base64Escape("3C-22-FB-12-34-56"), "base64(dash_upper)"},
      {"01:ee:dd:cc:bb:aa", "reversed"},
      {"01:EE:DD:CC:BB:AA", "reversed_upper"},
      {absl::AsciiStrToUpper(kOaid), "upper"},
      {Sha256Hex("3f2a1b4c5d6e4f708192a3b4c5d6e7f8"), "sha256(nosep)"},
  };
  for (const auto& [form, encoding] : forms) {
    const PatternInfo* info = FindOne(*db, form);
    ASSERT_NE(info, nullptr) << encoding;
    EXPECT_EQ(info->encoding, encoding);
  }
  // Inside a larger base64 payload at every alignment.
  for (const std::string prefix : {"", "x", "xy"}) {
    std::string blob = absl::Base64Escape(prefix + "{\"mac\":\"" + kMac + "\",\"v\":1}");
    bool found = false;
    for (const auto& m : db->Scan(blob)) {
      found |= db->Lookup(m.id)->kind == "mac_address";
    }
    EXPECT_TRUE(found) << "prefix '" << prefix << "': " << blob;
  }
  // Bytes of the Bluetooth address as HCI stores them (little-endian).
  std::string bt_rev(bt_bytes.rbegin(), bt_bytes.rend());
  auto hits = db->Scan(bt_rev);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(db->Lookup(hits[0].id)->kind, "bluetooth_address");
  EXPECT_EQ(db->Lookup(hits[0].id)->encoding, "bytes_reversed");
}

// Issue 10: byte forms starting with a zero byte (a MAC starting with 00, or
// ending with 00 read reversed) were left out of the database. They are
// found now, by the agent's scan and by a tap scanning the serialized copy.
TEST(PatternDbTest, ByteFormsWithALeadingZeroByteAreFound) {
  Identity id;
  id.digest_key = "k";
  id.identifiers = {{"mac_address", "eth0", "00:1a:2b:3c:4d:5e", "identity_file"},
                    {"bluetooth_address", "hci0", "aa:bb:cc:dd:ee:00", "identity_file"}};
  auto db = PatternDb::Build(id);
  ASSERT_THAT(db, IsOk());
  const std::string bytes("\x00\x1a\x2b\x3c\x4d\x5e", 6);
  const std::string bt_reversed("\x00\xee\xdd\xcc\xbb\xaa", 6);
  const PatternInfo* info = FindOne(*db, bytes);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->encoding, "bytes");
  info = FindOne(*db, bt_reversed);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->kind, "bluetooth_address");
  EXPECT_EQ(info->encoding, "bytes_reversed");
  // Textual forms still found, at the same offsets (SOM_LEFTMOST).
  ASSERT_NE(FindOne(*db, "00:1a:2b:3c:4d:5e"), nullptr);
  EXPECT_EQ(FindOne(*db, "00:1a:2b:3c:4d:5e")->encoding, "raw");

  const std::vector<std::pair<unsigned, unsigned long long>> hits =
      ScanSerialized(*db, "ab" + bytes + "cd");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].second, 2u);
  EXPECT_EQ(db->Lookup(hits[0].first)->encoding, "bytes");
}

// The benchmark scale: a typical device (3 network interfaces, Bluetooth,
// OAID, a device id) compiles to about a thousand patterns.
TEST(PatternDbTest, TypicalDevicePatternCount) {
  Identity id;
  id.digest_key = "k";
  id.identifiers = {{"oaid", "", kOaid, "identity_file"},
                    {"device_id", "", "b71f4d2c9e8a6b30", "identity_file"},
                    {"bluetooth_address", "hci0", "aa:bb:cc:dd:ee:01", "identity_file"}};
  auto db = PatternDb::Build(id, {{"mac_address", "wlan0", kMac, "sysfs"},
                                  {"mac_address", "eth0", "3c:22:fb:12:34:57", "sysfs"},
                                  {"mac_address", "p2p0", "3e:22:fb:12:34:56", "sysfs"}});
  ASSERT_THAT(db, IsOk());
  RecordProperty("patterns", static_cast<int>(db->size()));
  RecordProperty("serialized_bytes", static_cast<int>(db->serialized().size()));
  std::printf("typical device: %zu patterns, %zu serialized bytes\n", db->size(),
              db->serialized().size());
  EXPECT_GE(db->size(), 400u);
  EXPECT_LE(db->size(), 1200u);
}

TEST(PatternDbTest, ThousandPatternsFitTheProtocolBudget) {
  Identity id;
  for (int i = 0; i < 100; ++i) {
    id.identifiers.push_back({"mac_address", "",
                              absl::StrCat("02:11:22:33:", absl::Hex(i / 256, absl::kZeroPad2), ":",
                                           absl::Hex(i % 256, absl::kZeroPad2)),
                              "test"});
  }
  auto db = PatternDb::Build(id);
  ASSERT_THAT(db, IsOk());
  EXPECT_GE(db->size(), 1000u);
  EXPECT_LT(db->serialized().size(), 64u * 1024 * 1024);
}

TEST(PatternDbTest, RedactRemovesRawValues) {
  auto db = PatternDb::Build(TestIdentity(), Discovered());
  ASSERT_THAT(db, IsOk());
  std::string mac = kMac;
  std::string context = absl::StrCat("{\"mac\":\"", absl::AsciiStrToUpper(mac), "\",\"oaid\":\"",
                                     kOaid, "\",\"h\":\"", Md5Hex(mac), "\"}");
  std::string red = db->Redact(context);
  EXPECT_THAT(red, HasSubstr("<mac_address>"));
  EXPECT_THAT(red, HasSubstr("<oaid>"));
  EXPECT_THAT(red, Not(HasSubstr("3C:22")));
  EXPECT_THAT(red, Not(HasSubstr("3f2a1b4c")));
  EXPECT_THAT(red, Not(HasSubstr(Md5Hex(mac).substr(0, 8))));
  EXPECT_EQ(red, "{\"mac\":\"<mac_address>\",\"oaid\":\"<oaid>\",\"h\":\"<mac_address>\"}");
}

TEST(PatternDbTest, RedactMasksTruncatedAndUnknownHex) {
  auto db = PatternDb::Build(TestIdentity(), Discovered());
  ASSERT_THAT(db, IsOk());
  // A context cut through an identifier: no full form to match.
  EXPECT_EQ(db->Redact("x=3c:22:fb:12:3"), "x=<hex>");
  EXPECT_EQ(db->Redact("token=deadbeefcafe1234 ok"), "token=<hex> ok");
  // Binary context (a gzip header) becomes printable, valid UTF-8 text.
  std::string binary("\x1f\x8b\x08\x00mac=\xff\\", 10);
  std::string red = db->Redact(binary);
  EXPECT_EQ(red, "\\x1f\\x8b\\x08\\x00mac=\\xff\\x5c");
  idflow::v1::Identifier id;
  id.set_snippet(red);
  std::string wire;
  EXPECT_TRUE(id.SerializeToString(&wire));
  idflow::v1::Identifier back;
  EXPECT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.snippet(), red);
  EXPECT_EQ(db->Redact("short abc123 stays"), "short abc123 stays");
  EXPECT_EQ(db->Redact(""), "");
}

}  // namespace
}  // namespace idflow::agent

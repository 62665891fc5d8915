#include "bench/tap/bench_db.h"

#include <stdio.h>

#include <algorithm>
#include <random>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/digest.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace idflow::bench {
namespace {

std::string UrlEncode(std::string_view s, bool upper) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += absl::StrFormat(upper ? "%%%02X" : "%%%02x", c);
    }
  }
  return out;
}

// Every encoding of `text` the agent might compile (a superset on purpose:
// candidates are kept only when the database confirms them).
void AddDerived(const std::string& text, std::vector<std::string>* out) {
  out->push_back(text);
  out->push_back(absl::AsciiStrToLower(text));
  out->push_back(absl::AsciiStrToUpper(text));
  out->push_back(absl::Base64Escape(text));
  out->push_back(absl::WebSafeBase64Escape(text));
  out->push_back(UrlEncode(text, true));
  out->push_back(UrlEncode(text, false));
  // The characters of base64(pad + text) that depend on text alone, for the
  // three alignments text can have inside a larger base64 payload.
  for (size_t pad = 0; pad < 3; ++pad) {
    std::string b64 = absl::Base64Escape(std::string(pad, '\0') + text);
    size_t first = (pad * 8 + 5) / 6, last = ((pad + text.size()) * 8) / 6;
    if (last > first) out->push_back(b64.substr(first, last - first));
  }
  for (const std::string& hex : {Md5Hex(text), Sha1Hex(text), Sha256Hex(text)}) {
    std::string lower = absl::AsciiStrToLower(hex);
    out->push_back(lower);
    out->push_back(absl::AsciiStrToUpper(hex));
    std::string raw = absl::HexStringToBytes(lower);
    out->push_back(absl::Base64Escape(raw));
    out->push_back(absl::WebSafeBase64Escape(raw));
  }
}

std::string JoinBytes(const uint8_t* b, const char* sep, bool upper, bool cisco) {
  std::string s;
  for (int i = 0; i < 6; ++i) {
    if (i > 0 && (!cisco || i % 2 == 0)) s += sep;
    s += absl::StrFormat(upper ? "%02X" : "%02x", b[i]);
  }
  return s;
}

std::vector<std::string> Candidates(const agent::Identifier& ident) {
  std::vector<std::string> out;
  if (agent::IsHardwareAddressKind(ident.kind)) {
    uint8_t b[6];
    if (sscanf(ident.value.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &b[0], &b[1], &b[2], &b[3],
               &b[4], &b[5]) != 6) {
      return out;
    }
    for (int reversed = 0; reversed < 2; ++reversed) {
      uint8_t v[6];
      for (int i = 0; i < 6; ++i) v[i] = reversed ? b[5 - i] : b[i];
      for (const char* sep : {":", "-", ".", ""}) {
        for (bool upper : {false, true}) {
          AddDerived(JoinBytes(v, sep, upper, false), &out);
          AddDerived(JoinBytes(v, sep, upper, true), &out);
        }
      }
      AddDerived(std::string(reinterpret_cast<const char*>(v), 6), &out);
    }
  } else {
    std::string nosep = ident.value;
    nosep.erase(std::remove(nosep.begin(), nosep.end(), '-'), nosep.end());
    AddDerived(ident.value, &out);
    AddDerived(absl::AsciiStrToLower(ident.value), &out);
    AddDerived(absl::AsciiStrToUpper(ident.value), &out);
    AddDerived(nosep, &out);
    AddDerived(absl::AsciiStrToLower(nosep), &out);
    AddDerived(absl::AsciiStrToUpper(nosep), &out);
    if (nosep.size() % 2 == 0) AddDerived(absl::HexStringToBytes(nosep), &out);
  }
  return out;
}

agent::Identifier MakeIdentifier(size_t i, std::mt19937_64& rng) {
  auto hex = [&rng](size_t n) {
    std::string s;
    for (size_t k = 0; k < n; ++k) s.push_back("0123456789abcdef"[rng() % 16]);
    return s;
  };
  auto mac = [&rng] {
    uint8_t b[6];
    for (uint8_t& x : b) x = static_cast<uint8_t>(rng());
    b[0] = static_cast<uint8_t>((b[0] & 0xfc) | 0x00);  // unicast, globally administered
    if (b[0] == 0x02 || b[0] == 0x00) b[0] = 0x3c;
    return JoinBytes(b, ":", false, false);
  };
  switch (i % 4) {
    case 0:
      return {"mac_address", absl::StrCat("wlan", i / 4), mac(), "identity_file"};
    case 1:
      return {"bluetooth_address", absl::StrCat("hci", i / 4), mac(), "identity_file"};
    case 2:
      return {"oaid", "", absl::StrCat(hex(8), "-", hex(4), "-", hex(4), "-", hex(4), "-", hex(12)),
              "identity_file"};
    default:
      return {"device_id", "", hex(16), "identity_file"};
  }
}

absl::StatusOr<std::shared_ptr<const agent::PatternDb>> Compile(const agent::Identity& id) {
  ASSIGN_OR_RETURN(agent::PatternDb db, agent::PatternDb::Build(id));
  return std::make_shared<const agent::PatternDb>(std::move(db));
}

}  // namespace

absl::StatusOr<BenchDb> BuildBenchDb(size_t min_patterns) {
  BenchDb out;
  out.identity.device_id = "bench-device-0001";
  out.identity.device_class = "qa-phone";
  out.identity.digest_key = "bench-key";
  std::mt19937_64 rng(20261123);
  size_t n = 4;
  for (size_t i = 0; i < n; ++i) out.identity.identifiers.push_back(MakeIdentifier(i, rng));
  ASSIGN_OR_RETURN(out.db, Compile(out.identity));
  // Grow in one or two steps using the observed patterns per identifier.
  while (out.db->size() < min_patterns) {
    size_t per = std::max<size_t>(1, out.db->size() / out.identity.identifiers.size());
    // Round down (at least one) so the final count lands within one
    // identifier's worth of forms above min_patterns.
    size_t add = std::max<size_t>(1, (min_patterns - out.db->size()) / per);
    for (size_t k = 0; k < add; ++k) {
      out.identity.identifiers.push_back(MakeIdentifier(out.identity.identifiers.size(), rng));
    }
    ASSIGN_OR_RETURN(out.db, Compile(out.identity));
  }
  absl::flat_hash_set<std::string> seen;
  for (const agent::Identifier& ident : out.identity.identifiers) {
    for (std::string& c : Candidates(ident)) {
      if (c.size() < agent::PatternDb::kMinFormBytes || seen.contains(c)) continue;
      for (const agent::PatternDb::Match& m : out.db->Scan(c)) {
        if (m.start == 0 && m.end == c.size()) {
          seen.insert(c);
          out.forms.push_back(std::move(c));
          break;
        }
      }
    }
  }
  return out;
}

std::string MakePayload(size_t size, uint64_t seed) {
  static constexpr const char* kWords[] = {"\"event\":",
                                           "\"page_view\",",
                                           "\"ts\":",
                                           "\"session\":",
                                           "\"props\":{",
                                           "},",
                                           "\"lang\":\"en-US\",",
                                           "\"screen\":\"home\",",
                                           "\"ok\":true,",
                                           "\"count\":",
                                           "\"sdk\":",
                                           "\"version\":\"4.2.1\",",
                                           "\"items\":[",
                                           "],",
                                           " ",
                                           "\n"};
  static constexpr char kAlnum[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::mt19937_64 rng(seed);
  std::string s;
  s.reserve(size + 64);
  while (s.size() < size) {
    uint64_t r = rng();
    if (r % 3 == 0) {
      // Short random tokens (values, nonces): like real telemetry, and enough
      // hex-ish characters to exercise the matcher's literal filters.
      s.push_back('"');
      size_t len = 4 + (r >> 8) % 12;
      for (size_t k = 0; k < len; ++k) s.push_back(kAlnum[rng() % 64]);
      s += "\",";
    } else if (r % 3 == 1) {
      s += absl::StrCat((r >> 8) % 100000, ",");
    } else {
      s += kWords[(r >> 8) % (sizeof(kWords) / sizeof(kWords[0]))];
    }
  }
  s.resize(size);
  return s;
}

absl::StatusOr<size_t> WritePatternLines(const std::string& path,
                                         const std::vector<std::string>& forms) {
  std::string text;
  size_t n = 0;
  for (const std::string& f : forms) {
    if (f.find('\n') != std::string::npos || f.find('\0') != std::string::npos) continue;
    text += f;
    text += '\n';
    ++n;
  }
  RETURN_IF_ERROR(WriteFileAtomic(path, text));
  return n;
}

}  // namespace idflow::bench

#include "agent/pattern_db.h"

#include <hs/hs.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "agent/tap_protocol.h"
#include "common/digest.h"

namespace idflow::agent {
namespace {

struct Form {
  std::string bytes;
  std::string encoding;
};

// Raw bytes of a hex string ("aabbcc" -> "\xaa\xbb\xcc").
std::string HexToBytes(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    auto nib = [](char c) {
      return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
    };
    out.push_back(static_cast<char>(nib(hex[i]) << 4 | nib(hex[i + 1])));
  }
  return out;
}

// Percent-encodes what application/x-www-form-urlencoded would (':' etc.),
// with upper- or lower-case hex digits.
std::string UrlEncode(std::string_view s, bool upper_hex) {
  static constexpr char kUpper[] = "0123456789ABCDEF";
  static constexpr char kLower[] = "0123456789abcdef";
  const char* hex = upper_hex ? kUpper : kLower;
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// The characters of base64(prefix_pad + s) that depend only on s, for the
// three alignments s can have inside a larger base64-encoded payload (the
// whole request body or a JSON blob encoded at once, as SDKs do).
std::vector<std::string> Base64Cores(std::string_view s) {
  std::vector<std::string> out;
  for (size_t pad = 1; pad < 3; ++pad) {
    std::string b64 = absl::Base64Escape(std::string(pad, '\0') + std::string(s));
    // Skip the characters that mix pad bytes in, and the tail that depends
    // on what follows s.
    size_t first = (pad * 8 + 5) / 6;
    size_t last = ((pad + s.size()) * 8) / 6;  // chars fully determined by the input
    if (last > first) out.push_back(b64.substr(first, last - first));
  }
  // Aligned, but followed by more data: drop the padding-dependent tail.
  std::string b64 = absl::Base64Escape(std::string(s));
  size_t full = (s.size() * 8) / 6;
  out.push_back(b64.substr(0, full));
  return out;
}

// "0a1b" -> "a1b": hex digits of each byte without its leading zero.
std::string UnpaddedHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    if (hex[i] != '0') out.push_back(hex[i]);
    out.push_back(hex[i + 1]);
  }
  return out;
}

void AddHashes(const std::string& text, const std::string& label, std::vector<Form>* forms) {
  struct Hash {
    const char* name;
    std::string hex;
  };
  for (const Hash& h :
       {Hash{"md5", Md5Hex(text)}, Hash{"sha1", Sha1Hex(text)}, Hash{"sha256", Sha256Hex(text)}}) {
    std::string suffix = label.empty() ? "" : absl::StrCat("(", label, ")");
    forms->push_back({h.hex, absl::StrCat(h.name, suffix)});
    forms->push_back({absl::AsciiStrToUpper(h.hex), absl::StrCat(h.name, "_upper", suffix)});
    forms->push_back(
        {absl::Base64Escape(HexToBytes(h.hex)), absl::StrCat(h.name, "_base64", suffix)});
  }
}

// Every form of one identifier, most specific label first: when two forms
// are the same bytes the first label wins (see Build).
std::vector<Form> EncodedForms(const Identifier& ident) {
  std::vector<Form> forms;
  std::vector<Form> texts;  // textual forms: each is also hashed and base64'ed
  if (IsHardwareAddressKind(ident.kind)) {
    std::string raw = CanonicalValue(ident.kind, ident.value);  // aa:bb:cc:dd:ee:ff
    std::string nosep = absl::StrReplaceAll(raw, {{":", ""}});
    std::string dot = absl::StrCat(nosep.substr(0, 4), ".", nosep.substr(4, 4), ".",
                                   nosep.substr(8, 4));  // Cisco aabb.ccdd.eeff
    std::string dash = absl::StrReplaceAll(raw, {{":", "-"}});
    texts = {{raw, "raw"},     {absl::AsciiStrToUpper(raw), "upper"},
             {nosep, "nosep"}, {absl::AsciiStrToUpper(nosep), "nosep_upper"},
             {dash, "dash"},   {absl::AsciiStrToUpper(dash), "dash_upper"},
             {dot, "dot"},     {absl::AsciiStrToUpper(dot), "dot_upper"}};
    std::string bytes = HexToBytes(nosep);
    std::string reversed(bytes.rbegin(), bytes.rend());
    if (ident.kind == "bluetooth_address") {
      // HCI and many BT stacks keep bdaddr little-endian: printed reversed.
      std::string rev_hex;
      for (char c : reversed) rev_hex += absl::BytesToHexString(std::string(1, c));
      std::string rev_text;
      for (size_t i = 0; i < 12; i += 2) {
        if (!rev_text.empty()) rev_text.push_back(':');
        rev_text.append(rev_hex, i, 2);
      }
      texts.push_back({rev_text, "reversed"});
      texts.push_back({absl::AsciiStrToUpper(rev_text), "reversed_upper"});
    }
    forms = texts;
    forms.push_back({bytes, "bytes"});
    forms.push_back({reversed, "bytes_reversed"});
    forms.push_back({absl::Base64Escape(bytes), "bytes_base64"});
    forms.push_back({absl::WebSafeBase64Escape(bytes), "bytes_base64url"});
    forms.push_back({UrlEncode(raw, true), "url"});
    forms.push_back({UrlEncode(absl::AsciiStrToUpper(raw), true), "url_upper"});
    forms.push_back({UrlEncode(raw, false), "url"});
    forms.push_back({UrlEncode(absl::AsciiStrToUpper(raw), false), "url_upper"});
  } else {
    const std::string& raw = ident.value;
    std::string nodash = absl::StrReplaceAll(raw, {{"-", ""}});
    texts = {{raw, "raw"},
             {absl::AsciiStrToLower(raw), "lower"},
             {absl::AsciiStrToUpper(raw), "upper"},
             {nodash, "nosep"},
             {absl::AsciiStrToLower(nodash), "nosep"},
             {absl::AsciiStrToUpper(nodash), "nosep_upper"}};
    forms = texts;
    forms.push_back({UrlEncode(raw, true), "url"});
  }
  // Hashes of every textual form, labelled with the form hashed.
  for (const Form& t : texts) {
    AddHashes(t.bytes, t.encoding == "raw" ? "" : t.encoding, &forms);
  }
  // Java's Integer.toHexString(b & 0xff) per digest byte drops each byte's
  // leading zero: a common hand-rolled hex in Android SDKs.
  for (size_t i = 0; i < texts.size() && i < 3; ++i) {
    std::string suffix =
        texts[i].encoding == "raw" ? "" : absl::StrCat("(", texts[i].encoding, ")");
    forms.push_back({UnpaddedHex(Md5Hex(texts[i].bytes)), absl::StrCat("md5_unpadded", suffix)});
    forms.push_back({UnpaddedHex(Sha1Hex(texts[i].bytes)), absl::StrCat("sha1_unpadded", suffix)});
  }
  for (const Form& t : texts) {
    forms.push_back({absl::Base64Escape(t.bytes),
                     t.encoding == "raw" ? "base64" : absl::StrCat("base64(", t.encoding, ")")});
  }
  // Unaligned base64 of the canonical form, inside a larger encoded payload.
  for (std::string& core : Base64Cores(texts[0].bytes)) {
    forms.push_back({std::move(core), "base64_inner"});
  }
  return forms;
}

struct HsScratchDeleter {
  void operator()(hs_scratch_t* s) const { hs_free_scratch(s); }
};

int CollectMatch(unsigned int id, unsigned long long from, unsigned long long to,
                 unsigned int flags, void* ctx) {
  static_cast<std::vector<PatternDb::Match>*>(ctx)->push_back(
      {id, static_cast<size_t>(from), static_cast<size_t>(to)});
  return 0;
}

bool IsHex(char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); }

// "\xNN" for byte `c`.
void AppendHexEscape(char c, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto u = static_cast<unsigned char>(c);
  out->append({'\\', 'x', kHex[u >> 4], kHex[u & 0xf]});
}

// Masks runs of >= 8 hex digits, allowing single ':'/'-' between digits.
// Snippets travel in proto3 string fields, which must be valid UTF-8: a
// binary byte (a gzip header, a TLS record) would make the event
// unserializable. Printable ASCII stays; anything else becomes \xNN.
void AppendPrintable(char c, std::string* out) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f && u != '\\') {
    out->push_back(c);
    return;
  }
  AppendHexEscape(c, out);
}

void AppendMaskedHex(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    if (!IsHex(s[i])) {
      AppendPrintable(s[i++], out);
      continue;
    }
    size_t j = i, digits = 0, last_digit_end = i;
    while (j < s.size()) {
      if (IsHex(s[j])) {
        ++digits;
        last_digit_end = ++j;
      } else if ((s[j] == ':' || s[j] == '-') && j + 1 < s.size() && IsHex(s[j + 1])) {
        ++j;
      } else {
        break;
      }
    }
    if (digits >= 8) {
      out->append("<hex>");
    } else {
      for (char c : s.substr(i, last_digit_end - i)) AppendPrintable(c, out);
    }
    i = last_digit_end;
  }
}

// `bytes` as a Vectorscan expression matching exactly those bytes.
std::string EscapeLiteral(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size() * 4);
  for (char c : bytes) AppendHexEscape(c, &out);
  return out;
}

}  // namespace

absl::StatusOr<PatternDb> PatternDb::Build(const Identity& identity,
                                           const std::vector<Identifier>& discovered) {
  PatternDb db;
  std::vector<std::string> bytes;
  absl::flat_hash_set<std::string> seen;
  auto add = [&](const Identifier& ident) {
    if (IsPlaceholder(ident.kind, ident.value)) return;
    std::string digest = KeyedDigest(identity.digest_key, CanonicalValue(ident.kind, ident.value));
    for (Form& f : EncodedForms(ident)) {
      if (f.bytes.size() < kMinFormBytes || f.bytes.size() > kTapMaxPatternBytes ||
          !seen.insert(f.bytes).second) {
        continue;
      }
      db.infos_.push_back(PatternInfo{ident.kind, ident.instance, f.encoding, digest});
      db.lengths_.push_back(f.bytes.size());
      bytes.push_back(std::move(f.bytes));
    }
  };
  for (const Identifier& ident : identity.identifiers) add(ident);
  for (const Identifier& ident : discovered) add(ident);
  if (bytes.empty()) return db;

  std::vector<const char*> exprs;
  // SOM_LEFTMOST so that the tap, which does not know pattern lengths, can
  // report where a match starts; cheap for literals in block mode.
  std::vector<unsigned int> flags(bytes.size(), HS_FLAG_SOM_LEFTMOST), ids;
  for (size_t i = 0; i < bytes.size(); ++i) {
    exprs.push_back(bytes[i].data());
    ids.push_back(static_cast<unsigned int>(i));
  }
  // Vectorscan's literal API reads a leading NUL as an empty string and
  // refuses it, so a set holding such a byte form (a MAC starting with 00,
  // or ending with 00 reversed) is compiled as expressions, every byte
  // escaped: the same literals, matched the same way.
  std::vector<std::string> escaped;
  const bool leading_nul =
      std::any_of(bytes.begin(), bytes.end(), [](const std::string& b) { return b[0] == '\0'; });
  if (leading_nul) {
    escaped.reserve(bytes.size());  // exprs points into it
    for (size_t i = 0; i < bytes.size(); ++i) {
      escaped.push_back(EscapeLiteral(bytes[i]));
      exprs[i] = escaped.back().c_str();
    }
  }
  hs_compile_error_t* compile_error = nullptr;
  hs_database_t* compiled = nullptr;
  const hs_error_t compiled_ok =
      leading_nul ? hs_compile_multi(exprs.data(), flags.data(), ids.data(),
                                     static_cast<unsigned int>(exprs.size()), HS_MODE_BLOCK,
                                     nullptr, &compiled, &compile_error)
                  : hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), db.lengths_.data(),
                                         static_cast<unsigned int>(exprs.size()), HS_MODE_BLOCK,
                                         nullptr, &compiled, &compile_error);
  if (compiled_ok != HS_SUCCESS) {
    std::string msg = compile_error != nullptr && compile_error->message != nullptr
                          ? compile_error->message
                          : "unknown error";
    hs_free_compile_error(compile_error);
    return absl::InternalError(absl::StrCat("compiling identifier patterns: ", msg));
  }
  db.db_ = compiled;
  static std::atomic<uint64_t> next_key{1};
  db.scratch_key_ = next_key++;
  char* ser = nullptr;
  size_t ser_len = 0;
  if (hs_serialize_database(compiled, &ser, &ser_len) != HS_SUCCESS) {
    return absl::InternalError("serializing identifier patterns failed");
  }
  db.serialized_.assign(ser, ser_len);
  free(ser);  // hs uses the default allocator (malloc) unless hs_set_allocator was called
  return db;
}

PatternDb::PatternDb(PatternDb&& o) noexcept
    : infos_(std::move(o.infos_)),
      lengths_(std::move(o.lengths_)),
      serialized_(std::move(o.serialized_)),
      db_(std::exchange(o.db_, nullptr)),
      scratch_key_(std::exchange(o.scratch_key_, 0)) {}

PatternDb& PatternDb::operator=(PatternDb&& o) noexcept {
  if (this != &o) {
    if (db_ != nullptr) hs_free_database(db_);
    infos_ = std::move(o.infos_);
    lengths_ = std::move(o.lengths_);
    serialized_ = std::move(o.serialized_);
    db_ = std::exchange(o.db_, nullptr);
    scratch_key_ = std::exchange(o.scratch_key_, 0);
  }
  return *this;
}

PatternDb::~PatternDb() {
  if (db_ != nullptr) hs_free_database(db_);
}

const PatternInfo* PatternDb::Lookup(uint32_t id) const {
  return id < infos_.size() ? &infos_[id] : nullptr;
}

std::vector<PatternDb::Match> PatternDb::Scan(std::string_view data) const {
  std::vector<Match> out;
  if (db_ == nullptr || data.empty()) return out;
  // One scratch per thread, grown only when it meets another database:
  // hs_alloc_scratch validates (checksums) the whole database on every call,
  // which made it the agent's hottest path (issue 8 profile).
  thread_local std::unique_ptr<hs_scratch_t, HsScratchDeleter> scratch;
  thread_local uint64_t scratch_key = 0;
  if (scratch_key != scratch_key_ || !scratch) {
    hs_scratch_t* raw_scratch = scratch.release();
    const bool ok = hs_alloc_scratch(db_, &raw_scratch) == HS_SUCCESS;
    scratch.reset(raw_scratch);
    if (!ok) return out;
    scratch_key = scratch_key_;
  }
  // hs_scan takes an unsigned int length: input past 4 GiB is not scanned.
  hs_scan(db_, data.data(), static_cast<unsigned int>(std::min<size_t>(data.size(), 0xffffffffu)),
          0, scratch.get(), CollectMatch, &out);
  std::sort(out.begin(), out.end(), [](const Match& a, const Match& b) {
    return std::tie(a.start, a.id) < std::tie(b.start, b.id);
  });
  return out;
}

std::string PatternDb::Redact(std::string_view context) const {
  std::vector<Match> matches = Scan(context);
  std::string out;
  size_t pos = 0;
  size_t i = 0;
  while (i < matches.size()) {
    // Merge overlapping matches; the first (earliest, lowest id) names the kind.
    size_t start = matches[i].start, end = matches[i].end;
    const std::string& kind = infos_[matches[i].id].kind;
    for (++i; i < matches.size() && matches[i].start < end; ++i) {
      end = std::max(end, matches[i].end);
    }
    if (start < pos) start = pos;
    AppendMaskedHex(context.substr(pos, start - pos), &out);
    absl::StrAppend(&out, "<", kind, ">");
    pos = end;
  }
  AppendMaskedHex(context.substr(pos), &out);
  return out;
}

}  // namespace idflow::agent

#include "agent/pattern_db.h"

#include <hs/hs.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/digest.h"

namespace idflow::agent {
namespace {

struct Form {
  std::string bytes;
  const char* encoding;
};

std::vector<Form> EncodedForms(const Identifier& ident) {
  std::vector<Form> forms;
  std::string raw;
  if (IsHardwareAddressKind(ident.kind)) {
    raw = CanonicalValue(ident.kind, ident.value);  // aa:bb:cc:dd:ee:ff
    std::string nosep = absl::StrReplaceAll(raw, {{":", ""}});
    std::string dash = absl::StrReplaceAll(raw, {{":", "-"}});
    forms = {{raw, "raw"},     {absl::AsciiStrToUpper(raw), "upper"},
             {nosep, "nosep"}, {absl::AsciiStrToUpper(nosep), "nosep_upper"},
             {dash, "dash"},   {absl::AsciiStrToUpper(dash), "dash_upper"}};
  } else {
    raw = ident.value;
    std::string nosep = absl::StrReplaceAll(raw, {{"-", ""}});
    forms = {{raw, "raw"},
             {absl::AsciiStrToLower(raw), "lower"},
             {absl::AsciiStrToUpper(raw), "upper"},
             {nosep, "nosep"},
             {absl::AsciiStrToLower(nosep), "nosep"},
             {absl::AsciiStrToUpper(nosep), "nosep_upper"}};
  }
  std::string md5 = Md5Hex(raw), sha1 = Sha1Hex(raw), sha256 = Sha256Hex(raw);
  forms.push_back({md5, "md5"});
  forms.push_back({sha1, "sha1"});
  forms.push_back({sha256, "sha256"});
  forms.push_back({absl::AsciiStrToUpper(md5), "md5_upper"});
  forms.push_back({absl::AsciiStrToUpper(sha1), "sha1_upper"});
  forms.push_back({absl::AsciiStrToUpper(sha256), "sha256_upper"});
  forms.push_back({absl::Base64Escape(raw), "base64"});
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

// Masks runs of >= 8 hex digits, allowing single ':'/'-' between digits.
void AppendMaskedHex(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    if (!IsHex(s[i])) {
      out->push_back(s[i++]);
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
      out->append(s.substr(i, last_digit_end - i));
    }
    i = last_digit_end;
  }
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
      if (f.bytes.size() < kMinFormBytes || !seen.insert(f.bytes).second) continue;
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
  hs_compile_error_t* compile_error = nullptr;
  hs_database_t* compiled = nullptr;
  if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), db.lengths_.data(),
                           static_cast<unsigned int>(exprs.size()), HS_MODE_BLOCK, nullptr,
                           &compiled, &compile_error) != HS_SUCCESS) {
    std::string msg = compile_error != nullptr && compile_error->message != nullptr
                          ? compile_error->message
                          : "unknown error";
    hs_free_compile_error(compile_error);
    return absl::InternalError(absl::StrCat("compiling identifier patterns: ", msg));
  }
  db.db_ = compiled;
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
      db_(std::exchange(o.db_, nullptr)) {}

PatternDb& PatternDb::operator=(PatternDb&& o) noexcept {
  if (this != &o) {
    if (db_ != nullptr) hs_free_database(db_);
    infos_ = std::move(o.infos_);
    lengths_ = std::move(o.lengths_);
    serialized_ = std::move(o.serialized_);
    db_ = std::exchange(o.db_, nullptr);
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
  hs_scratch_t* raw_scratch = nullptr;
  if (hs_alloc_scratch(db_, &raw_scratch) != HS_SUCCESS) return out;
  std::unique_ptr<hs_scratch_t, HsScratchDeleter> scratch(raw_scratch);
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

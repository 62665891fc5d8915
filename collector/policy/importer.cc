// Statement importer: layout readers (labelled blocks, Markdown / HTML /
// plain-text SDK tables) into raw entries, one mapping pass through the
// ontology, and the YAML emitter for the checked-in files.
#include "collector/policy/importer.h"

#include <unicode/translit.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "collector/policy/doc_tables.h"
#include "collector/policy/text_normalize.h"
#include "common/utf8.h"

namespace idflow::policy {
namespace {

enum class Field {
  kThirdParty,
  kSdk,
  kSharingType,
  kSharedData,
  kPurpose,
  kScenario,
  kMethod,
  kRules,
  kVersion,
  kIgnored,  // a column that carries nothing to judge (row numbers)
};

// Labels and column headers as published, in English and Chinese; looked up
// normalised (NormalizeForMatch), so width, case and spaces inside CJK text
// do not matter.
const absl::flat_hash_map<std::string, Field>& Labels() {
  static const auto* labels = [] {
    const std::vector<std::pair<const char*, Field>> raw = {
        {"third party name", Field::kThirdParty},
        {"third-party name", Field::kThirdParty},
        {"third party", Field::kThirdParty},
        {"third-party", Field::kThirdParty},
        {"third party company", Field::kThirdParty},
        {"third-party company", Field::kThirdParty},
        {"company", Field::kThirdParty},
        {"company name", Field::kThirdParty},
        {"provider", Field::kThirdParty},
        {"sdk provider", Field::kThirdParty},
        {"developer", Field::kThirdParty},
        {"recipient", Field::kThirdParty},
        {"第三方公司名称", Field::kThirdParty},
        {"第三方名称", Field::kThirdParty},
        {"第三方主体", Field::kThirdParty},
        {"第三方", Field::kThirdParty},
        {"公司名称", Field::kThirdParty},
        {"sdk提供方", Field::kThirdParty},
        {"sdk提供者", Field::kThirdParty},
        {"提供方", Field::kThirdParty},
        {"开发者", Field::kThirdParty},
        {"sdk开发者", Field::kThirdParty},
        {"所属公司", Field::kThirdParty},
        {"接收方", Field::kThirdParty},
        {"sdk name", Field::kSdk},
        {"sdk", Field::kSdk},
        {"name of sdk", Field::kSdk},
        {"sdk名称", Field::kSdk},
        {"第三方sdk名称", Field::kSdk},
        {"sdk 名称", Field::kSdk},
        {"sharing type", Field::kSharingType},
        {"type of sharing", Field::kSharingType},
        {"sharing mode", Field::kSharingType},
        {"cooperation type", Field::kSharingType},
        {"共享类型", Field::kSharingType},
        {"合作方式", Field::kSharingType},
        {"合作类型", Field::kSharingType},
        {"shared data", Field::kSharedData},
        {"shared information", Field::kSharedData},
        {"shared personal information", Field::kSharedData},
        {"data shared", Field::kSharedData},
        {"personal information", Field::kSharedData},
        {"personal information collected", Field::kSharedData},
        {"personal data collected", Field::kSharedData},
        {"information collected", Field::kSharedData},
        {"data collected", Field::kSharedData},
        {"types of personal information", Field::kSharedData},
        {"共享信息", Field::kSharedData},
        {"共享数据", Field::kSharedData},
        {"共享个人信息", Field::kSharedData},
        {"共享的个人信息", Field::kSharedData},
        {"收集的个人信息", Field::kSharedData},
        {"收集个人信息", Field::kSharedData},
        {"收集个人信息类型", Field::kSharedData},
        {"个人信息类型", Field::kSharedData},
        {"个人信息字段", Field::kSharedData},
        {"个人信息种类", Field::kSharedData},
        {"涉及的个人信息", Field::kSharedData},
        {"处理的个人信息", Field::kSharedData},
        {"收集的信息", Field::kSharedData},
        {"purpose of use", Field::kPurpose},
        {"purpose", Field::kPurpose},
        {"purposes", Field::kPurpose},
        {"purpose of sharing", Field::kPurpose},
        {"purpose of processing", Field::kPurpose},
        {"使用目的", Field::kPurpose},
        {"共享目的", Field::kPurpose},
        {"收集目的", Field::kPurpose},
        {"处理目的", Field::kPurpose},
        {"目的", Field::kPurpose},
        {"用途", Field::kPurpose},
        {"usage scenario", Field::kScenario},
        {"usage scenarios", Field::kScenario},
        {"scenario", Field::kScenario},
        {"scenarios", Field::kScenario},
        {"use case", Field::kScenario},
        {"使用场景", Field::kScenario},
        {"应用场景", Field::kScenario},
        {"业务场景", Field::kScenario},
        {"场景", Field::kScenario},
        {"sharing method", Field::kMethod},
        {"method of sharing", Field::kMethod},
        {"collection method", Field::kMethod},
        {"method of collection", Field::kMethod},
        {"共享方式", Field::kMethod},
        {"收集方式", Field::kMethod},
        {"采集方式", Field::kMethod},
        {"传输方式", Field::kMethod},
        {"提供方式", Field::kMethod},
        {"third party information processing rules", Field::kRules},
        {"third-party information processing rules", Field::kRules},
        {"third party personal information processing rules", Field::kRules},
        {"privacy policy", Field::kRules},
        {"privacy policy link", Field::kRules},
        {"third party privacy policy", Field::kRules},
        {"link", Field::kRules},
        {"第三方个人信息处理规则/官网链接", Field::kRules},
        {"第三方个人信息处理规则", Field::kRules},
        {"第三方隐私政策", Field::kRules},
        {"第三方隐私政策链接", Field::kRules},
        {"隐私政策链接", Field::kRules},
        {"隐私政策", Field::kRules},
        {"官网链接", Field::kRules},
        {"version", Field::kVersion},
        {"版本", Field::kVersion},
        {"版本号", Field::kVersion},
        {"last updated", Field::kVersion},
        {"updated", Field::kVersion},
        {"updated on", Field::kVersion},
        {"effective date", Field::kVersion},
        {"更新日期", Field::kVersion},
        {"更新时间", Field::kVersion},
        {"生效日期", Field::kVersion},
        {"no.", Field::kIgnored},
        {"no", Field::kIgnored},
        {"#", Field::kIgnored},
        {"序号", Field::kIgnored},
        {"编号", Field::kIgnored},
    };
    auto* m = new absl::flat_hash_map<std::string, Field>();
    for (const auto& [label, field] : raw) m->emplace(NormalizeForMatch(label), field);
    return m;
  }();
  return *labels;
}

std::optional<Field> LabelField(absl::string_view label) {
  // Emphasis and brackets around a label ("**Purpose**:", "【使用目的】") are markup.
  std::string key = NormalizeForMatch(label);
  auto markup = [](char c) { return c == ':' || c == '*' || c == '_' || c == '(' || c == ')'; };
  while (!key.empty() && markup(key.back())) key.pop_back();
  size_t lead = 0;
  while (lead < key.size() && markup(key[lead])) ++lead;
  key.erase(0, lead);
  while (!key.empty() && key.back() == ' ') key.pop_back();
  auto it = Labels().find(key);
  if (it == Labels().end()) return std::nullopt;
  return it->second;
}

bool IsAlnum(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }

absl::string_view Trim(absl::string_view s) { return TrimText(s); }

char32_t DecodeAt(absl::string_view s, size_t i, size_t* len) {
  return DecodeUtf8(std::string_view(s.data(), s.size()), i, len);
}

bool IsCjk(char32_t cp) {
  return (cp >= 0x2E80 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
         (cp >= 0x20000 && cp <= 0x2FFFF);
}

struct Value {
  std::string text;
  TextPos pos;
};

struct RawEntry {
  TextPos pos;
  std::string heading;
  std::map<Field, Value> fields;
};

struct RawDoc {
  std::optional<Value> version;
  std::optional<Value> title;   // a level-1 heading
  std::vector<Value> headings;  // heading-like lines before the first entry
  std::vector<RawEntry> entries;
};

using WarnFn = std::function<void(TextPos, absl::string_view)>;

bool IsHeadingLike(absl::string_view s) {
  if (s.size() > 120) return false;
  for (absl::string_view end : {".", "。", ":", "：", ";", "；", ","}) {
    if (absl::EndsWith(s, end)) return false;
  }
  return true;
}

// Finds the label colon (ASCII or full-width); npos when none.
std::pair<size_t, size_t> FindColon(absl::string_view s) {
  size_t a = s.find(':');
  size_t b = s.find("：");
  // "https://…" is a value, not a label.
  if (a != absl::string_view::npos && s.substr(a, 3) == "://") a = absl::string_view::npos;
  if (b != absl::string_view::npos && (a == absl::string_view::npos || b < a)) return {b, 3};
  return {a, 1};
}

// A value that names how an SDK is integrated ("Embedded SDK (Foo SDK)",
// "嵌入SDK") rather than how data moves ("SDK local acquisition").
bool LooksLikeSharingType(absl::string_view v) {
  const std::string n = NormalizeForMatch(v);
  if (absl::StrContains(n, "(") && absl::StrContains(n, "sdk")) return true;
  for (absl::string_view w : {"embed", "嵌入", "集成", "接入"}) {
    if (absl::StrContains(n, w)) return true;
  }
  return false;
}

// Builds raw entries from label/value pairs in document order.
class EntryBuilder {
 public:
  explicit EntryBuilder(RawDoc* doc) : doc_(doc) {}

  void Heading(Value h, int level) {
    if (level == 1 && !doc_->title && doc_->entries.empty()) {
      doc_->title = h;
      return;
    }
    if (doc_->entries.empty()) doc_->headings.push_back(h);
    pending_ = std::move(h);
  }

  // `at`: where the label (or the cell) starts, for errors about the entry.
  void Field(Field f, Value v, std::optional<TextPos> at = std::nullopt) {
    if (f == Field::kIgnored) return;
    if (f == Field::kVersion) {
      if (!doc_->version) doc_->version = std::move(v);
      return;
    }
    const bool fresh = doc_->entries.empty() || pending_;
    // Some statements label the sharing type "Sharing method".
    if (f == Field::kMethod && LooksLikeSharingType(v.text) &&
        (fresh || !doc_->entries.back().fields.count(Field::kSharingType))) {
      f = Field::kSharingType;
    }
    if (fresh || doc_->entries.back().fields.count(f) || StartsAnotherEntry(f)) {
      StartEntry(at.value_or(v.pos), pending_ ? pending_->text : "");
    }
    last_ = f;
    doc_->entries.back().fields[f] = std::move(v);
  }

  // An entry of its own (a table row), whatever fields came before.
  void StartEntry(TextPos pos, std::string heading) {
    RawEntry e;
    e.pos = pos;
    e.heading = std::move(heading);
    pending_.reset();
    last_.reset();
    doc_->entries.push_back(std::move(e));
  }

  // A line continuing the last field's value (a wrapped or listed value).
  bool Continue(const Value& v) {
    if (doc_->entries.empty() || pending_ || !last_) return false;
    Value& cur = doc_->entries.back().fields[*last_];
    if (!cur.text.empty()) cur.text += "\n";
    cur.text += v.text;
    return true;
  }

  bool LastValueEmpty() const {
    if (doc_->entries.empty() || !last_) return false;
    auto it = doc_->entries.back().fields.find(*last_);
    return it != doc_->entries.back().fields.end() && it->second.text.empty();
  }

 private:
  // A third party or SDK name after the entry's shared data starts a new
  // entry even when the new entry lists its fields in another order.
  bool StartsAnotherEntry(enum Field f) const {
    const auto& fields = doc_->entries.back().fields;
    if (f != Field::kThirdParty && f != Field::kSdk) return false;
    return fields.count(Field::kSharedData) > 0 &&
           (fields.count(Field::kThirdParty) > 0 || fields.count(Field::kSdk) > 0);
  }

  RawDoc* doc_;
  std::optional<Value> pending_;
  std::optional<enum Field> last_;
};

// ---- labelled blocks -----------------------------------------------------------

constexpr absl::string_view kBullets[] = {"•", "·", "●", "▪", "◦", "○", "- ", "* ", "+ "};

int IndentOf(absl::string_view raw) {
  int n = 0;
  for (size_t i = 0; i < raw.size();) {
    if (raw[i] == ' ') {
      ++n;
      ++i;
    } else if (raw[i] == '\t') {
      n += 4;
      ++i;
    } else if (raw.substr(i, 3) == "\u3000") {
      n += 2;
      i += 3;
    } else {
      break;
    }
  }
  return n;
}

absl::Status ReadLabelledLines(const std::vector<TextLine>& lines, EntryBuilder* b,
                               const WarnFn& warn,
                               const std::function<absl::Status(TextPos, absl::string_view)>& error,
                               const std::vector<absl::string_view>* raw_lines) {
  int field_indent = -1;
  for (const TextLine& l : lines) {
    absl::string_view s = Trim(l.text);
    if (s.empty()) continue;
    const int indent = raw_lines != nullptr && l.pos.line - 1 < static_cast<int>(raw_lines->size())
                           ? IndentOf((*raw_lines)[l.pos.line - 1])
                           : 0;
    // `l.pos` is where the trimmed text starts; `part` is a view into it.
    const absl::string_view whole = Trim(l.text);
    auto col = [&](absl::string_view part) {
      if (part.data() < whole.data() || part.data() > whole.data() + whole.size()) {
        return l.pos.column;
      }
      return l.pos.column - 1 + ColumnAt(whole, static_cast<size_t>(part.data() - whole.data()));
    };
    bool bullet = false;
    for (absl::string_view mark : kBullets) {
      if (absl::ConsumePrefix(&s, mark)) {
        bullet = true;
        s = Trim(s);
        break;
      }
    }
    if (!bullet) {
      // "1." / "1)" / "（1）" numbering is a bullet too.
      size_t k = 0;
      while (k < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[k]))) ++k;
      // Numbered lines with a label are fields; without one, headings.
      if (k > 0 && k < s.size() && (s[k] == '.' || s[k] == ')') && k + 1 < s.size() &&
          s[k + 1] == ' ' && FindColon(s).first != absl::string_view::npos) {
        s = Trim(s.substr(k + 1));
        bullet = true;
      }
    }
    auto [colon, colon_len] = FindColon(s);
    std::optional<Field> field;
    absl::string_view value;
    if (colon != absl::string_view::npos) {
      field = LabelField(Trim(s.substr(0, colon)));
      value = Trim(s.substr(colon + colon_len));
    }
    if (field) {
      b->Field(*field, Value{std::string(value), {l.pos.line, col(value)}},
               TextPos{l.pos.line, col(s)});
      field_indent = indent;
      continue;
    }
    // A listed or wrapped value: under a label with no value of its own, or
    // indented deeper than its label.
    if ((b->LastValueEmpty() && (bullet || indent > 0)) ||
        (field_indent >= 0 && indent > field_indent && l.heading_level == 0)) {
      if (b->Continue(Value{std::string(s), {l.pos.line, col(s)}})) continue;
    }
    if (bullet) {
      if (colon == absl::string_view::npos) {
        return error({l.pos.line, col(s)}, "bullet is not 'Label: value'");
      }
      warn({l.pos.line, col(s)}, absl::StrCat("label '", Trim(s.substr(0, colon)), "' ignored"));
      continue;
    }
    field_indent = -1;
    if (l.heading_level > 0 || IsHeadingLike(s)) {
      b->Heading(Value{std::string(s), {l.pos.line, col(s)}}, l.heading_level);
    }
  }
  return absl::OkStatus();
}

// ---- tables ----------------------------------------------------------------------

struct Columns {
  std::vector<std::optional<Field>> fields;  // per column
  size_t header_row = 0;
};

// The header row of an SDK table: the first of its first three rows with a
// shared-data column and a third-party or SDK column.
std::optional<Columns> SdkHeader(const DocTable& t) {
  for (size_t r = 0; r < t.rows.size() && r < 3; ++r) {
    Columns c;
    c.header_row = r;
    std::set<Field> seen;
    for (const TableCell& cell : t.rows[r]) {
      std::optional<Field> f = LabelField(cell.text);
      if (f && f != Field::kIgnored && seen.count(*f)) f.reset();  // a repeated header cell
      if (f) seen.insert(*f);
      c.fields.push_back(f);
    }
    if (seen.count(Field::kSharedData) &&
        (seen.count(Field::kThirdParty) || seen.count(Field::kSdk))) {
      return c;
    }
  }
  return std::nullopt;
}

// A two-column table of "label | value" rows (one block per SDK).
bool IsLabelTable(const DocTable& t) {
  int labels = 0;
  for (const auto& row : t.rows) {
    if (row.size() != 2) return false;
    if (LabelField(row[0].text)) ++labels;
  }
  return labels >= 3;
}

void ReadSdkTable(const DocTable& t, const Columns& c, EntryBuilder* b, const WarnFn& warn) {
  const auto& header = t.rows[c.header_row];
  for (size_t k = 0; k < header.size(); ++k) {
    if (!c.fields[k] && !header[k].text.empty()) {
      warn(header[k].pos, absl::StrCat("column '", header[k].text, "' ignored"));
    }
  }
  std::string section;  // a merged row above: the heading of the rows below
  for (size_t r = c.header_row + 1; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    std::set<std::string> distinct;
    for (const TableCell& cell : row) {
      if (!cell.text.empty()) distinct.insert(cell.text);
    }
    if (distinct.empty()) continue;
    // A row repeating the header (a table split over pages) is skipped; a
    // row of one merged cell is a section heading.
    bool header_again = true;
    for (size_t k = 0; k < row.size() && k < header.size(); ++k) {
      header_again = header_again && row[k].text == header[k].text;
    }
    if (header_again) continue;
    if (distinct.size() == 1 && (row.size() == 1 || row[0].text == row.back().text)) {
      section = row[0].text;
      continue;
    }
    b->StartEntry(row[0].pos, section);
    for (size_t k = 0; k < row.size() && k < c.fields.size(); ++k) {
      if (c.fields[k] && *c.fields[k] != Field::kIgnored) {
        b->Field(*c.fields[k], Value{row[k].text, row[k].pos});
      }
    }
  }
}

// ---- the mapping pass --------------------------------------------------------------

struct Match {
  size_t begin;
  size_t end;
  std::string id;
};

// Leftmost-longest scan for terms over normalised text; whole words for
// Latin terms. Terms are indexed by their first byte, so a scan costs the
// text length times the few terms sharing a first byte.
class TermMatcher {
 public:
  void Add(const std::string& term, const std::string& id) {
    std::string n = NormalizeForMatch(term);
    if (!n.empty()) by_first_[static_cast<unsigned char>(n[0])].push_back({n, id});
  }
  void Finish() {
    for (auto& [first, terms] : by_first_) {
      std::stable_sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) {
        return a.first.size() > b.first.size();
      });
    }
  }
  // Matches over `norm` (already normalised), in text order.
  std::vector<Match> FindNormalized(absl::string_view norm) const {
    std::vector<Match> out;
    size_t i = 0;
    while (i < norm.size()) {
      bool matched = false;
      auto it = by_first_.find(static_cast<unsigned char>(norm[i]));
      if (it != by_first_.end() && (i == 0 || !IsAlnum(norm[i - 1]) || !IsAlnum(norm[i]))) {
        for (const auto& [term, id] : it->second) {
          if (norm.compare(i, term.size(), term) != 0) continue;
          size_t end = i + term.size();
          if (IsAlnum(term.back()) && end < norm.size() && IsAlnum(norm[end])) continue;
          out.push_back({i, end, id});
          i = end;
          matched = true;
          break;
        }
      }
      if (matched) continue;
      // Skip one whole word (or one UTF-8 character), so terms start at word starts.
      if (IsAlnum(norm[i])) {
        while (i < norm.size() && IsAlnum(norm[i])) ++i;
      } else {
        ++i;
        while (i < norm.size() && (static_cast<unsigned char>(norm[i]) & 0xC0) == 0x80) ++i;
      }
    }
    return out;
  }
  std::vector<std::string> Find(absl::string_view text) const {
    std::vector<std::string> ids;
    for (Match& m : FindNormalized(NormalizeForMatch(text))) ids.push_back(std::move(m.id));
    return ids;
  }
  // Every (normalised term, id), for suggestions.
  std::vector<std::pair<std::string, std::string>> All() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [first, terms] : by_first_) out.insert(out.end(), terms.begin(), terms.end());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  absl::flat_hash_map<unsigned char, std::vector<std::pair<std::string, std::string>>> by_first_;
};

void AppendUnique(const std::vector<std::string>& ids, std::vector<std::string>* out) {
  for (const std::string& id : ids) {
    if (std::find(out->begin(), out->end(), id) == out->end()) out->push_back(id);
  }
}

constexpr absl::string_view kOpen[] = {"(", "（", "【", "["};
constexpr absl::string_view kClose[] = {")", "）", "】", "]"};

template <size_t N>
size_t TokenAt(absl::string_view s, size_t i, const absl::string_view (&set)[N]) {
  for (absl::string_view t : set) {
    if (s.substr(i, t.size()) == t) return t.size();
  }
  return 0;
}

// An item's head (text outside brackets) and its top-level bracket groups.
struct ItemParts {
  std::string head;
  std::vector<std::string> groups;
};

ItemParts SplitItem(absl::string_view s) {
  ItemParts out;
  std::string group;
  int depth = 0;
  for (size_t i = 0; i < s.size();) {
    if (size_t n = TokenAt(s, i, kOpen)) {
      if (depth++ > 0) group.append(s.data() + i, n);
      i += n;
      continue;
    }
    if (size_t n = TokenAt(s, i, kClose)) {
      if (depth == 0) {
        i += n;
        continue;
      }
      if (--depth > 0) {
        group.append(s.data() + i, n);
      } else {
        out.groups.push_back(std::move(group));
        group.clear();
        out.head.push_back(' ');
      }
      i += n;
      continue;
    }
    (depth > 0 ? group : out.head).push_back(s[i]);
    ++i;
  }
  if (!group.empty()) out.groups.push_back(std::move(group));
  return out;
}

bool IsDerivation(absl::string_view paren) {
  const std::string p = NormalizeForMatch(paren);
  for (absl::string_view marker :
       {"calculated based on", "based on", "derived from", "computed from", "基于", "根据", "由"}) {
    if (absl::StartsWith(p, marker)) return true;
  }
  return false;
}

// Words that carry no data type of their own ("whether or not user is …").
const std::set<std::string, std::less<>>& Stopwords() {
  static const auto* s = new std::set<std::string, std::less<>>{
      "a",        "about", "an",          "and",   "any",    "as",      "at",        "by",
      "content",  "data",  "details",     "e",     "g",      "eg",      "etc",       "for",
      "from",     "has",   "have",        "i",     "ie",     "in",      "including", "include",
      "includes", "info",  "information", "is",    "it",     "its",     "like",      "not",
      "of",       "on",    "or",          "other", "others", "related", "relevant",  "such",
      "that",     "the",   "their",       "this",  "to",     "user",    "users",     "whether",
      "which",    "with",  "you",         "your",  "s"};
  return *s;
}

constexpr absl::string_view kCjkStopwords[] = {
    "以及", "包括", "包含", "例如", "比如", "其他", "相关", "信息", "数据", "您的",
    "用户", "是否", "及",   "和",   "与",   "或",   "等",   "的",   "如"};

constexpr absl::string_view kConjunctions[] = {" and ", " or ", " as well as ", " & ", "以及",
                                               "和",    "及",   "与",           "或"};

// What of `norm` names data no match covers: the clause is cut at
// conjunctions outside matches ("bluetooth information and location"); a
// segment with a match is covered whole (the rest qualifies it: "mac
// addresses of xiaomi home devices"), the words of one without, minus
// stopwords, are the residue. "" when everything is covered.
std::string Residue(absl::string_view norm, const std::vector<Match>& matches) {
  auto in_match = [&](size_t pos) {
    for (const Match& m : matches) {
      if (pos >= m.begin && pos < m.end) return true;
    }
    return false;
  };
  std::vector<std::pair<size_t, size_t>> segments;
  size_t start = 0;
  for (size_t i = 0; i < norm.size();) {
    size_t cut = 0;
    if (!in_match(i)) {
      for (absl::string_view c : kConjunctions) {
        if (norm.substr(i, c.size()) == c) {
          cut = c.size();
          break;
        }
      }
    }
    if (cut > 0) {
      segments.push_back({start, i});
      i += cut;
      start = i;
    } else {
      ++i;
    }
  }
  segments.push_back({start, norm.size()});
  std::vector<std::string> words;
  for (const auto& [b, e] : segments) {
    bool covered = false;
    for (const Match& m : matches) covered = covered || (m.begin < e && m.end > b);
    if (covered) continue;
    std::vector<std::pair<absl::string_view, absl::string_view>> blanks;
    for (absl::string_view w : kCjkStopwords) blanks.push_back({w, " "});
    const std::string rest = absl::StrReplaceAll(norm.substr(b, e - b), blanks);
    std::string word;
    auto flush = [&] {
      if (!word.empty() && !Stopwords().count(word)) words.push_back(word);
      word.clear();
    };
    for (size_t i = 0; i < rest.size();) {
      size_t len = 1;
      char32_t cp = DecodeAt(rest, i, &len);
      if (cp < 0x80 ? IsAlnum(static_cast<char>(cp)) : IsCjk(cp) || (cp >= 0xC0 && cp < 0x2000)) {
        word.append(rest, i, len);
      } else {
        flush();
      }
      i += len;
    }
    flush();
  }
  return absl::StrJoin(words, " ");
}

std::vector<char32_t> CodePoints(absl::string_view s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    out.push_back(DecodeAt(s, i, &len));
    i += len;
  }
  return out;
}

size_t EditDistance(const std::vector<char32_t>& a, const std::vector<char32_t>& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The ontology's mapping tables, built once per import.
class Mapper {
 public:
  explicit Mapper(const Ontology& o) : o_(o) {
    for (const DataType& t : o.data_types) {
      for (const std::string& term : t.terms) types_.Add(term, t.id);
    }
    for (const Scenario& sc : o.scenario_defs) {
      for (const std::string& t : sc.terms) scenarios_.Add(t, sc.id);
    }
    for (const SharingMethod& m : o.sharing_methods) {
      for (const std::string& t : m.terms) methods_.Add(t, m.id);
    }
    for (const Consent& c : o.consents) {
      for (const std::string& t : c.terms) consents_.Add(t, c.id);
    }
    types_.Finish();
    scenarios_.Finish();
    methods_.Finish();
    consents_.Finish();
  }

  const TermMatcher& scenarios() const { return scenarios_; }
  const TermMatcher& methods() const { return methods_; }
  const TermMatcher& consents() const { return consents_; }

  ItemMapping Map(absl::string_view item) const {
    ItemMapping out;
    MapInto(item, &out.data_types, &out, 0);
    return out;
  }

  // Closest term to `text` when it is close enough to be a likely typo or
  // variant, else "".
  std::string Suggest(absl::string_view text) const {
    const std::string norm = NormalizeForMatch(text);
    const std::vector<char32_t> a = CodePoints(norm);
    if (a.empty() || a.size() > 48) return "";
    if (all_terms_.empty()) {
      for (const auto& [term, id] : types_.All())
        all_terms_.push_back({CodePoints(term), term, id});
    }
    size_t best = SIZE_MAX;
    std::string out;
    for (const auto& [cps, term, id] : all_terms_) {
      const size_t diff = cps.size() > a.size() ? cps.size() - a.size() : a.size() - cps.size();
      if (diff > 3) continue;
      const size_t d = EditDistance(a, cps);
      const size_t limit = std::max<size_t>(1, std::min(a.size(), cps.size()) / 4);
      if (d <= limit && d < best) {
        best = d;
        out = absl::StrCat("'", term, "' (", id, ")");
      }
    }
    return out;
  }

 private:
  // Appends the clause's types to `found`; returns whether it named any.
  // A type of the head is dropped when its own list names a narrower one
  // ("device ID (OAID)" is an OAID); siblings in a list are all kept.
  bool MapInto(absl::string_view clause, std::vector<std::string>* found, ItemMapping* out,
               int depth) const {
    ItemParts parts = SplitItem(clause);
    const std::string head_norm = NormalizeForMatch(parts.head);
    const std::vector<Match> head_matches = types_.FindNormalized(head_norm);
    std::vector<std::string> listed;
    const size_t unmapped_before = out->unmapped.size();
    for (const std::string& g : parts.groups) {
      if (IsDerivation(g) || depth >= 8) continue;
      for (const std::string& sub : SplitSharedData(g)) MapInto(sub, &listed, out, depth + 1);
    }
    // Nothing in the clause maps: it is reported whole, not piece by piece.
    if (head_matches.empty() && listed.empty()) {
      out->unmapped.resize(unmapped_before);
      out->residue.resize(unmapped_before);
      out->suggestion.resize(unmapped_before);
    }
    for (const Match& m : head_matches) {
      bool narrowed = false;
      for (const std::string& l : listed)
        narrowed = narrowed || (l != m.id && o_.Subsumes(m.id, l));
      if (!narrowed) AppendUnique({m.id}, found);
    }
    AppendUnique(listed, found);
    const std::string residue = Residue(head_norm, head_matches);
    // A head naming no type whose list maps is the list's group label
    // ("网络状态信息（IP 地址、网络类型）").
    if (!residue.empty() && !(head_matches.empty() && !listed.empty())) {
      out->unmapped.emplace_back(Trim(clause));
      out->residue.push_back(residue);
      out->suggestion.push_back(
          Suggest(head_matches.empty() ? std::string(Trim(parts.head)) : residue));
    }
    return !head_matches.empty() || !listed.empty();
  }

  const Ontology& o_;
  TermMatcher types_, scenarios_, methods_, consents_;
  struct Term {
    std::vector<char32_t> cps;
    std::string term;
    std::string id;
  };
  mutable std::vector<Term> all_terms_;
};

// "Embed SDK (Tianqin SDK)" -> {"Embed SDK", "Tianqin SDK"}.
std::pair<std::string, std::string> SplitSharingType(absl::string_view v) {
  for (size_t c = 0; c < std::size(kClose); ++c) {
    if (!absl::EndsWith(v, kClose[c])) continue;
    int depth = 0;
    size_t end = v.size() - kClose[c].size();
    for (size_t i = end + 1; i-- > 0;) {
      if (v.substr(i, kClose[c].size()) == kClose[c] && i <= end) ++depth;
      if (v.substr(i, kOpen[c].size()) == kOpen[c] && --depth == 0) {
        std::string type(Trim(v.substr(0, i)));
        std::string sdk(Trim(v.substr(i + kOpen[c].size(), end - i - kOpen[c].size())));
        if (type.empty() || sdk.empty()) break;
        return {type, sdk};
      }
    }
  }
  return {std::string(v), std::string(v)};
}

// Pinyin for Han characters, ASCII for accented Latin (ICU, loaded once).
std::string ToAscii(const std::string& text) {
  bool ascii = std::all_of(text.begin(), text.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return text;
  static icu::Transliterator* const translit = [] {
    UErrorCode status = U_ZERO_ERROR;
    icu::Transliterator* t = icu::Transliterator::createInstance(
        "Han-Latin; Latin-ASCII; [:^ASCII:] Remove", UTRANS_FORWARD, status);
    return U_FAILURE(status) ? nullptr : t;
  }();
  if (translit == nullptr) return text;
  // Transliterator::transliterate is not documented thread-safe.
  static std::mutex mu;
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(text);
  {
    std::lock_guard lock(mu);
    translit->transliterate(u);
  }
  std::string out;
  u.toUTF8String(out);
  return out;
}

std::string StatementId(const std::string& title, const std::string& source) {
  std::vector<std::string> words;
  for (absl::string_view w : absl::StrSplit(Slug(title), '-', absl::SkipEmpty())) {
    if (w != "third" && w != "party" && w != "statement" && w != "the" && w != "of" && w != "di" &&
        w != "san" && w != "fang") {
      words.emplace_back(w);
    }
  }
  // Long titles keep their first words, up to 64 characters.
  std::string id;
  for (const std::string& w : words) {
    if (!id.empty() && id.size() + 1 + w.size() > 64) break;
    absl::StrAppend(&id, id.empty() ? "" : "-", w);
  }
  if (!id.empty()) return id;
  std::string stem = source.substr(source.find_last_of('/') + 1);
  stem = stem.substr(0, stem.find('.'));
  std::string slug = Slug(stem);
  return slug.empty() ? "statement" : slug;
}

// Entity id for a party the ontology does not know: the slug of its name
// without the legal form.
std::string EntityId(const std::string& name) {
  std::string n(Trim(name));
  for (absl::string_view form : {"股份有限公司", "有限责任公司", "有限公司", "公司"}) {
    if (absl::EndsWith(n, form)) {
      n.resize(n.size() - form.size());
      break;
    }
  }
  std::vector<std::string> words = absl::StrSplit(Slug(n), '-', absl::SkipEmpty());
  static const std::set<std::string, std::less<>> kForms = {
      "co", "ltd", "inc", "llc", "limited", "corp", "corporation", "gmbh", "plc", "company"};
  while (!words.empty() && kForms.count(words.back())) words.pop_back();
  std::string id = absl::StrJoin(words, "_");
  return id.empty() ? "entity" : id;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\t') {
      out += "\\t";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

std::string Plain(const std::string& s) {
  bool ok = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return IsAlnum(c) || c == '_' || c == '-' || c == '.';
  });
  return ok ? s : Quote(s);
}

std::string FlowList(const std::vector<std::string>& ids) {
  std::vector<std::string> items;
  for (const std::string& id : ids) items.push_back(Plain(id));
  return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
}

Layout DetectLayout(const std::string& text) {
  if (LooksLikeHtml(text)) return Layout::kHtmlTable;
  for (const DocTable& t : ReadMarkdownTables(text)) {
    if (SdkHeader(t) || IsLabelTable(t)) return Layout::kMarkdownTable;
  }
  for (const DocTable& t : ReadTextTables(text)) {
    if (SdkHeader(t)) return Layout::kTextTable;
  }
  return Layout::kLabelled;
}

}  // namespace

absl::StatusOr<Layout> ParseLayout(absl::string_view name) {
  for (Layout l : {Layout::kAuto, Layout::kLabelled, Layout::kMarkdownTable, Layout::kHtmlTable,
                   Layout::kTextTable}) {
    if (name == LayoutName(l)) return l;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown layout '", name, "' (known: auto, labelled, markdown, html, text)"));
}

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kAuto:
      return "auto";
    case Layout::kLabelled:
      return "labelled";
    case Layout::kMarkdownTable:
      return "markdown";
    case Layout::kHtmlTable:
      return "html";
    case Layout::kTextTable:
      return "text";
  }
  return "auto";
}

std::string NormalizeForMatch(absl::string_view text) {
  // NBSP and full-width brackets first: FoldForMatch leaves them alone.
  std::string pre;
  pre.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, 2) == "\u00a0") {
      pre.push_back(' ');
      i += 2;
    } else if (text.substr(i, 3) == "【") {
      pre.push_back('(');
      i += 3;
    } else if (text.substr(i, 3) == "】") {
      pre.push_back(')');
      i += 3;
    } else {
      pre.push_back(text[i++]);
    }
  }
  const std::string folded = FoldForMatch(pre);
  // Drop spaces next to CJK characters: "mac 地址" -> "mac地址".
  std::string out;
  out.reserve(folded.size());
  bool prev_cjk = false;
  for (size_t i = 0; i < folded.size();) {
    size_t len = 1;
    char32_t cp = DecodeAt(folded, i, &len);
    if (cp == ' ') {
      size_t next_len = 1;
      const bool next_cjk = i + 1 < folded.size() && IsCjk(DecodeAt(folded, i + 1, &next_len));
      if (prev_cjk || next_cjk) {
        i += 1;
        continue;
      }
    }
    prev_cjk = IsCjk(cp);
    out.append(folded, i, len);
    i += len;
  }
  return out;
}

std::string Slug(const std::string& text) {
  const std::string ascii = ToAscii(text);
  std::string out;
  for (char c : ascii) {
    if (IsAlnum(c)) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

std::vector<std::string> SplitSharedData(const std::string& value) {
  absl::string_view v = Trim(value);
  // A whole-list wrapper: "【a、b】".
  if (absl::StartsWith(v, "【") && absl::EndsWith(v, "】") &&
      v.find("【", 1) == absl::string_view::npos) {
    v = Trim(v.substr(3, v.size() - 6));
  }
  std::vector<std::string> items;
  std::string cur;
  int depth = 0;
  auto flush = [&] {
    absl::string_view item = Trim(cur);
    // List markers of a value given one item per line.
    for (absl::string_view mark : kBullets) {
      if (absl::ConsumePrefix(&item, mark)) {
        item = Trim(item);
        break;
      }
    }
    for (absl::string_view lead : {"and ", "or ", "以及", "和", "及"}) {
      if (absl::StartsWith(item, lead)) {
        item = Trim(item.substr(lead.size()));
        break;
      }
    }
    while (absl::ConsumeSuffix(&item, ".") || absl::ConsumeSuffix(&item, "。")) item = Trim(item);
    if (!item.empty()) items.emplace_back(item);
    cur.clear();
  };
  for (size_t i = 0; i < v.size();) {
    if (size_t n = TokenAt(v, i, kOpen)) {
      ++depth;
      cur.append(v.data() + i, n);
      i += n;
      continue;
    }
    if (size_t n = TokenAt(v, i, kClose)) {
      depth = std::max(depth - 1, 0);
      cur.append(v.data() + i, n);
      i += n;
      continue;
    }
    if (depth == 0) {
      size_t sep = 0;
      for (absl::string_view s : {",", ";", "，", "、", "；", "\n"}) {
        if (v.substr(i, s.size()) == s) sep = s.size();
      }
      if (sep) {
        flush();
        i += sep;
        continue;
      }
    }
    cur.push_back(v[i]);
    ++i;
  }
  flush();
  return items;
}

ItemMapping MapSharedData(const std::string& item, const Ontology& ontology) {
  return Mapper(ontology).Map(item);
}

std::vector<std::string> MapSharedDataItem(const std::string& item, const Ontology& ontology) {
  return MapSharedData(item, ontology).data_types;
}

absl::Status ValidateImportText(absl::string_view text, const std::string& source_name) {
  if (text.size() > kMaxImportBytes) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ":1:1: the document is ",
                                                   text.size(), " bytes; the import limit is ",
                                                   kMaxImportBytes >> 20, " MiB"));
  }
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    auto fail = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ":", line, ":",
                       ColumnAt(text.substr(line_start), i - line_start), ": ", what));
    };
    if (b == '\n') {
      ++line;
      line_start = ++i;
      continue;
    }
    if (b < 0x80) {
      if ((b < 0x20 && b != '\t' && b != '\r') || b == 0x7F) {
        return fail(absl::StrCat("control character 0x", absl::Hex(b, absl::kZeroPad2),
                                 " (a published text holds none)"));
      }
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(std::string_view(text.data(), text.size()), i);
    const bool ok = n > 0;
    if (!ok) return fail("invalid UTF-8 (convert the document to UTF-8)");
    // C1 controls (U+0080..U+009F).
    if (b == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
      return fail("control character (a published text holds none)");
    }
    i += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> ImportStatementText(const std::string& text,
                                              const std::string& source_name,
                                              const Ontology& ontology,
                                              std::vector<std::string>* warnings) {
  return ImportStatementText(text, source_name, ontology, ImportOptions(), warnings);
}

absl::StatusOr<Statement> ImportStatementText(const std::string& text,
                                              const std::string& source_name,
                                              const Ontology& ontology,
                                              const ImportOptions& options,
                                              std::vector<std::string>* warnings) {
  auto error = [&](TextPos p, absl::string_view msg) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":", p.line, ":", p.column, ": ", msg));
  };
  WarnFn warn = [&](TextPos p, absl::string_view msg) {
    if (warnings) {
      warnings->push_back(absl::StrCat(source_name, ":", p.line, ":", p.column, ": ", msg));
    }
  };
  if (absl::Status st = ValidateImportText(text, source_name); !st.ok()) return st;

  // ---- pass 1: the layout's reader -> raw entries ----------------------------
  const Layout layout = options.layout == Layout::kAuto ? DetectLayout(text) : options.layout;
  RawDoc doc;
  EntryBuilder builder(&doc);
  std::vector<absl::string_view> raw_lines;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    absl::ConsumeSuffix(&l, "\r");
    raw_lines.push_back(l);
  }
  std::vector<DocTable> tables;
  std::vector<TextLine> lines;
  switch (layout) {
    case Layout::kHtmlTable:
      tables = ReadHtmlTables(text, &lines);
      break;
    case Layout::kMarkdownTable:
      tables = ReadMarkdownTables(text);
      lines = LinesOutside(text, tables);
      break;
    case Layout::kTextTable:
      tables = ReadTextTables(text);
      lines = LinesOutside(text, tables);
      break;
    case Layout::kLabelled:
    case Layout::kAuto:
      lines = LinesOutside(text, {});
      break;
  }
  auto status_error = [&](TextPos p, absl::string_view m) -> absl::Status { return error(p, m); };
  const std::vector<absl::string_view>* positions =
      layout == Layout::kHtmlTable ? nullptr : &raw_lines;
  if (tables.empty()) {
    if (absl::Status st = ReadLabelledLines(lines, &builder, warn, status_error, positions);
        !st.ok()) {
      return st;
    }
  } else {
    // Text and tables in document order: headings and the version line
    // around the tables, then each table's rows.
    size_t next_line = 0;
    for (const DocTable& t : tables) {
      std::vector<TextLine> before;
      while (next_line < lines.size() && lines[next_line].pos.line < t.pos.line) {
        before.push_back(lines[next_line++]);
      }
      if (absl::Status st = ReadLabelledLines(before, &builder, warn, status_error, positions);
          !st.ok()) {
        return st;
      }
      if (std::optional<Columns> c = SdkHeader(t)) {
        ReadSdkTable(t, *c, &builder, warn);
      } else if (IsLabelTable(t)) {
        std::vector<TextLine> kv;
        for (const auto& row : t.rows) {
          kv.push_back({absl::StrCat(row[0].text, ": ", row[1].text), row[0].pos, 0});
        }
        if (absl::Status st = ReadLabelledLines(kv, &builder, warn, status_error, nullptr);
            !st.ok()) {
          return st;
        }
      } else {
        warn(t.pos,
             "table without a recognised SDK header (third party or SDK name, and shared "
             "data); skipped");
      }
    }
    std::vector<TextLine> after(lines.begin() + static_cast<long>(next_line), lines.end());
    if (absl::Status st = ReadLabelledLines(after, &builder, warn, status_error, positions);
        !st.ok()) {
      return st;
    }
  }

  const int last_line = static_cast<int>(raw_lines.size());
  if (doc.entries.empty()) {
    return error({last_line, 1},
                 "no entries (expected '• Third party name: …' blocks or an SDK table with "
                 "third-party or SDK-name and shared-data columns)");
  }
  Statement st;
  if (!options.version.empty()) {
    st.version = options.version;
  } else if (doc.version && !doc.version->text.empty()) {
    st.version = doc.version->text;
  } else if (doc.version) {
    return error(doc.version->pos, "empty version");
  } else {
    return error({1, 1},
                 "no version line ('Version:', '版本：', 'Last updated:', '更新日期：'); "
                 "give one with --version");
  }
  st.source = source_name;
  // The title: --title, a level-1 heading, or the first of two headings
  // before the first entry; a lone heading is the first entry's own when
  // later entries have headings too.
  bool later_headings = std::any_of(doc.entries.begin() + 1, doc.entries.end(),
                                    [](const RawEntry& e) { return !e.heading.empty(); });
  if (!options.title.empty()) {
    st.title = options.title;
  } else if (doc.title) {
    st.title = doc.title->text;
  } else if (doc.headings.size() >= 2) {
    st.title = doc.headings.front().text;
  } else if (doc.headings.size() == 1 && !later_headings) {
    st.title = doc.headings.front().text;
    doc.entries.front().heading.clear();
  }
  st.id = StatementId(st.title, source_name);
  if (auto it = options.taken_ids.find(st.id);
      it != options.taken_ids.end() && it->second != source_name) {
    std::string base = st.id;
    int n = 2;
    while (options.taken_ids.count(st.id)) st.id = absl::StrCat(base, "-", n++);
    warn({1, 1}, absl::StrCat("statement id '", base, "' is taken by ", it->second,
                              "; this one is '", st.id, "'"));
  }

  // ---- pass 2: raw entries -> entries through the ontology ------------------
  const Mapper mapper(ontology);
  // Parties met in this document that the ontology does not know.
  std::map<std::string, std::string> new_entity_by_name;  // folded name -> id
  std::set<std::string> ids_taken;
  for (const Entity& e : ontology.entities) ids_taken.insert(e.id);
  auto find_entity = [&](const std::string& name) -> std::string {
    const std::string folded = NormalizeForMatch(name);
    for (const Entity& e : ontology.entities) {
      if (NormalizeForMatch(e.name) == folded) return e.id;
      for (const std::string& a : e.aliases) {
        if (NormalizeForMatch(a) == folded) return e.id;
      }
    }
    auto it = new_entity_by_name.find(folded);
    return it == new_entity_by_name.end() ? "" : it->second;
  };

  for (const RawEntry& r : doc.entries) {
    auto get = [&](Field f) -> const Value* {
      auto fit = r.fields.find(f);
      return fit == r.fields.end() ? nullptr : &fit->second;
    };
    Entry e;
    e.title = r.heading;
    const Value* party = get(Field::kThirdParty);
    const Value* sdk = get(Field::kSdk);
    const Value* type = get(Field::kSharingType);
    if (party == nullptr || party->text.empty()) {
      return error(party ? party->pos : r.pos,
                   absl::StrCat("entry", sdk ? absl::StrCat(" '", sdk->text, "'") : "",
                                " has no third party name"));
    }
    e.third_party = party->text;
    if (sdk != nullptr && !sdk->text.empty()) {
      e.sdk = sdk->text;
      if (type != nullptr) {
        auto [t, named] = SplitSharingType(type->text);
        e.sharing_type =
            named != t && NormalizeForMatch(named) == NormalizeForMatch(e.sdk) ? t : type->text;
      }
    } else if (type != nullptr && !type->text.empty()) {
      std::tie(e.sharing_type, e.sdk) = SplitSharingType(type->text);
    } else {
      return error(r.pos,
                   "entry has no sharing type or SDK name (e.g. 'Sharing type: Embedded SDK "
                   "(Foo SDK)' or an 'SDK name' column)");
    }
    e.entity = find_entity(e.third_party);
    if (e.entity.empty()) {
      Entity added;
      added.name = e.third_party;
      std::string id = EntityId(e.third_party);
      std::string unique = id;
      for (int n = 2; ids_taken.count(unique); ++n) unique = absl::StrCat(id, "_", n);
      added.id = unique;
      ids_taken.insert(unique);
      new_entity_by_name[NormalizeForMatch(e.third_party)] = unique;
      e.entity = unique;
      warn(party->pos,
           absl::StrCat("third party '", e.third_party,
                        "' is not in the ontology: added as entity '", unique,
                        "' (no domains: add them to ontology.yaml so that recipient checks "
                        "can name its hosts)"));
      st.entities.push_back(std::move(added));
    }
    if (const Value* data = get(Field::kSharedData); data != nullptr && !data->text.empty()) {
      e.shared_data = SplitSharedData(data->text);
      for (const std::string& item : e.shared_data) {
        ItemMapping m = mapper.Map(item);
        AppendUnique(m.data_types, &e.data_types);
        for (size_t k = 0; k < m.unmapped.size(); ++k) {
          if (std::find(e.unmapped.begin(), e.unmapped.end(), m.unmapped[k]) != e.unmapped.end()) {
            continue;
          }
          e.unmapped.push_back(m.unmapped[k]);
          std::string msg = absl::StrCat("shared-data clause '", m.unmapped[k], "' of ", e.sdk);
          if (m.residue[k] != NormalizeForMatch(m.unmapped[k])) {
            absl::StrAppend(&msg, " ('", m.residue[k], "')");
          }
          absl::StrAppend(&msg, " maps to no data type; kept as unmapped, not judged");
          if (!m.suggestion[k].empty())
            absl::StrAppend(&msg, "; did you mean ", m.suggestion[k], "?");
          warn(data->pos, msg);
        }
      }
    } else {
      warn(data ? data->pos : r.pos, absl::StrCat("entry ", e.sdk, " has no shared data"));
    }
    if (const Value* v = get(Field::kPurpose)) e.purpose = v->text;
    if (const Value* v = get(Field::kScenario)) {
      e.usage_scenario = v->text;
      AppendUnique(mapper.scenarios().Find(v->text), &e.scenarios);
      if (e.scenarios.empty() && !v->text.empty()) {
        warn(v->pos, "usage scenario matches no ontology scenario");
      }
    }
    if (const Value* v = get(Field::kMethod)) {
      AppendUnique(mapper.methods().Find(v->text), &e.sharing_methods);
      if (e.sharing_methods.empty() && !v->text.empty()) {
        warn(v->pos, absl::StrCat("sharing method '", v->text, "' matches no ontology method"));
      }
    }
    if (const Value* v = get(Field::kRules)) e.rules_link = v->text;
    // Consent keys the published text ties the sharing to, in ontology order.
    std::vector<std::string> mentioned = mapper.consents().Find(absl::StrCat(
        get(Field::kSharedData) ? get(Field::kSharedData)->text : "", " \n ", e.purpose));
    for (const Consent& c : ontology.consents) {
      if (std::count(mentioned.begin(), mentioned.end(), c.id)) e.requires_consent.push_back(c.id);
    }
    st.entries.push_back(std::move(e));
  }

  // Ids: slug of the SDK ("sdk" alone is no name: the third party's entity
  // id goes first); an SDK in several entries adds its first scenario.
  std::vector<std::string> base(st.entries.size());
  std::map<std::string, int> count;
  for (size_t i = 0; i < st.entries.size(); ++i) {
    Entry& e = st.entries[i];
    std::string id = Slug(e.sdk);
    if (id.empty() || id == "sdk") id = absl::StrCat(e.entity, id.empty() ? "" : "-sdk");
    base[i] = id;
    count[id]++;
  }
  std::set<std::string> used;
  std::map<std::string, int> next_suffix;
  for (size_t i = 0; i < st.entries.size(); ++i) {
    Entry& e = st.entries[i];
    std::string id = base[i];
    if (count[id] > 1) {
      id += "-" + (e.scenarios.empty() ? std::to_string(i + 1) : Slug(e.scenarios.front()));
    }
    std::string unique = id;
    if (used.count(unique)) {
      int& n = next_suffix[id];
      if (n < 2) n = 2;
      do {
        unique = absl::StrCat(id, "-", n++);
      } while (used.count(unique));
    }
    used.insert(unique);
    e.id = unique;
  }
  return st;
}

std::string StatementToYaml(const Statement& s) {
  std::string out;
  absl::StrAppend(&out, "schema: idflow.policy/v1\nkind: statement\n");
  absl::StrAppend(&out, "id: ", Plain(s.id), "\n", "version: ", Plain(s.version), "\n");
  absl::StrAppend(&out, "title: ", Quote(s.title), "\n", "source: ", Quote(s.source), "\n");
  if (!s.entities.empty()) {
    absl::StrAppend(&out, "entities:\n");
    for (const Entity& e : s.entities) {
      absl::StrAppend(&out, "  - id: ", Plain(e.id), "\n    name: ", Quote(e.name), "\n");
    }
  }
  absl::StrAppend(&out, "entries:", s.entries.empty() ? " []" : "", "\n");
  for (const Entry& e : s.entries) {
    absl::StrAppend(&out, "  - id: ", Plain(e.id), "\n");
    absl::StrAppend(&out, "    title: ", Quote(e.title), "\n");
    absl::StrAppend(&out, "    third_party: ", Quote(e.third_party), "\n");
    absl::StrAppend(&out, "    entity: ", Plain(e.entity), "\n");
    absl::StrAppend(&out, "    sharing_type: ", Quote(e.sharing_type), "\n");
    absl::StrAppend(&out, "    sdk: ", Quote(e.sdk), "\n");
    absl::StrAppend(&out, "    shared_data:", e.shared_data.empty() ? " []" : "", "\n");
    for (const std::string& item : e.shared_data)
      absl::StrAppend(&out, "      - ", Quote(item), "\n");
    absl::StrAppend(&out, "    data_types: ", FlowList(e.data_types), "\n");
    if (!e.unmapped.empty()) {
      absl::StrAppend(&out, "    unmapped:\n");
      for (const std::string& item : e.unmapped)
        absl::StrAppend(&out, "      - ", Quote(item), "\n");
    }
    absl::StrAppend(&out, "    purpose: ", Quote(e.purpose), "\n");
    absl::StrAppend(&out, "    usage_scenario: ", Quote(e.usage_scenario), "\n");
    absl::StrAppend(&out, "    scenarios: ", FlowList(e.scenarios), "\n");
    absl::StrAppend(&out, "    sharing_methods: ", FlowList(e.sharing_methods), "\n");
    absl::StrAppend(&out, "    requires_consent: ", FlowList(e.requires_consent), "\n");
    absl::StrAppend(&out, "    rules_link: ", Quote(e.rules_link), "\n");
  }
  return out;
}

}  // namespace idflow::policy

// Statement importer: a line-oriented parser for the published statement
// format (English or Chinese), plus the YAML emitter for the checked-in files.
#include "collector/policy/importer.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace idflow::policy {
namespace {

enum class Field { kThirdParty, kSharingType, kSharedData, kPurpose, kScenario, kMethod, kRules };

// Labels as published, lower-cased; English and Chinese.
const std::map<std::string, Field>& Labels() {
  static const auto* labels = new std::map<std::string, Field>{
      {"third party name", Field::kThirdParty},
      {"third-party name", Field::kThirdParty},
      {"third party", Field::kThirdParty},
      {"第三方公司名称", Field::kThirdParty},
      {"第三方名称", Field::kThirdParty},
      {"sharing type", Field::kSharingType},
      {"共享类型", Field::kSharingType},
      {"shared data", Field::kSharedData},
      {"shared information", Field::kSharedData},
      {"shared personal information", Field::kSharedData},
      {"共享信息", Field::kSharedData},
      {"共享数据", Field::kSharedData},
      {"共享个人信息", Field::kSharedData},
      {"purpose of use", Field::kPurpose},
      {"purpose", Field::kPurpose},
      {"使用目的", Field::kPurpose},
      {"usage scenario", Field::kScenario},
      {"usage scenarios", Field::kScenario},
      {"使用场景", Field::kScenario},
      {"sharing method", Field::kMethod},
      {"共享方式", Field::kMethod},
      {"third party information processing rules", Field::kRules},
      {"third-party information processing rules", Field::kRules},
      {"third party personal information processing rules", Field::kRules},
      {"privacy policy", Field::kRules},
      {"第三方个人信息处理规则/官网链接", Field::kRules},
      {"第三方个人信息处理规则", Field::kRules},
      {"官网链接", Field::kRules},
  };
  return *labels;
}

bool IsAlnum(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }

// Trims ASCII whitespace, NBSP and the ideographic space.
absl::string_view Trim(absl::string_view s) {
  for (bool changed = true; changed;) {
    changed = false;
    s = absl::StripAsciiWhitespace(s);
    for (absl::string_view ws : {"\u00a0", "\u3000"}) {
      if (absl::ConsumePrefix(&s, ws) || absl::ConsumeSuffix(&s, ws)) changed = true;
    }
  }
  return s;
}

struct Pos {
  int line = 1;
  int column = 1;
};

struct Value {
  std::string text;
  Pos pos;
};

struct RawEntry {
  Pos pos;
  std::string heading;
  std::map<Field, Value> fields;
};

// Leftmost-longest scan for ontology terms; whole words for Latin text.
class TermMatcher {
 public:
  void Add(const std::string& term, const std::string& id) {
    if (!term.empty()) terms_.push_back({absl::AsciiStrToLower(term), id});
  }
  void Finish() {
    std::stable_sort(terms_.begin(), terms_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  // Matched ids in text order (duplicates kept).
  std::vector<std::string> Find(absl::string_view text) const {
    const std::string lower = absl::AsciiStrToLower(text);
    std::vector<std::string> out;
    size_t i = 0;
    while (i < lower.size()) {
      bool matched = false;
      for (const auto& [term, id] : terms_) {
        if (lower.compare(i, term.size(), term) != 0) continue;
        if (IsAlnum(term.front()) && i > 0 && IsAlnum(lower[i - 1])) continue;
        size_t end = i + term.size();
        if (IsAlnum(term.back()) && end < lower.size() && IsAlnum(lower[end])) continue;
        out.push_back(id);
        i = end;
        matched = true;
        break;
      }
      if (matched) continue;
      // Skip one whole word (or one UTF-8 character), so terms start at word starts.
      if (IsAlnum(lower[i])) {
        while (i < lower.size() && IsAlnum(lower[i])) ++i;
      } else {
        ++i;
        while (i < lower.size() && (static_cast<unsigned char>(lower[i]) & 0xC0) == 0x80) ++i;
      }
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> terms_;
};

void AppendUnique(const std::vector<std::string>& ids, std::vector<std::string>* out) {
  for (const std::string& id : ids) {
    if (std::find(out->begin(), out->end(), id) == out->end()) out->push_back(id);
  }
}

TermMatcher DataTypeMatcher(const Ontology& o) {
  TermMatcher m;
  for (const DataType& t : o.data_types) {
    for (const std::string& term : t.terms) m.Add(term, t.id);
  }
  m.Finish();
  return m;
}

constexpr absl::string_view kOpen[] = {"(", "（", "【"};
constexpr absl::string_view kClose[] = {")", "）", "】"};

// Length of the bracket token at `s[i]` if it is one of `set`, else 0.
template <size_t N>
size_t TokenAt(absl::string_view s, size_t i, const absl::string_view (&set)[N]) {
  for (absl::string_view t : set) {
    if (s.substr(i, t.size()) == t) return t.size();
  }
  return 0;
}

// Splits `s` into a head and the first top-level parenthetical's content.
std::pair<std::string, std::string> HeadAndParen(absl::string_view s) {
  std::string head, paren;
  int depth = 0;
  for (size_t i = 0; i < s.size();) {
    if (size_t n = TokenAt(s, i, kOpen)) {
      if (depth++ > 0) paren.append(s.data() + i, n);
      i += n;
      continue;
    }
    if (size_t n = TokenAt(s, i, kClose)) {
      if (--depth > 0) paren.append(s.data() + i, n);
      depth = std::max(depth, 0);
      i += n;
      continue;
    }
    (depth > 0 ? paren : head).push_back(s[i]);
    ++i;
  }
  return {head, paren};
}

bool IsDerivation(absl::string_view paren) {
  const std::string p = absl::AsciiStrToLower(Trim(paren));
  for (absl::string_view marker :
       {"calculated based on", "based on", "derived from", "computed from", "基于", "根据", "由"}) {
    if (absl::StartsWith(p, marker)) return true;
  }
  return false;
}

std::vector<std::string> MapItem(absl::string_view item, const Ontology& o, const TermMatcher& m) {
  auto [head, paren] = HeadAndParen(item);
  std::vector<std::string> found;
  AppendUnique(m.Find(head), &found);
  if (!paren.empty() && !IsDerivation(paren)) AppendUnique(m.Find(paren), &found);
  // A parenthetical narrows its head: "device ID (OAID)" is an OAID.
  std::vector<std::string> out;
  for (const std::string& t : found) {
    bool broader = false;
    for (const std::string& u : found) broader = broader || (u != t && o.Subsumes(t, u));
    if (!broader) out.push_back(t);
  }
  return out;
}

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

std::string StatementId(const std::string& title, const std::string& source) {
  std::vector<std::string> words;
  for (absl::string_view w : absl::StrSplit(Slug(title), '-', absl::SkipEmpty())) {
    if (w != "third" && w != "party" && w != "statement" && w != "the" && w != "of") {
      words.emplace_back(w);
    }
  }
  if (!words.empty()) return absl::StrJoin(words, "-");
  std::string stem = source.substr(source.find_last_of('/') + 1);
  stem = stem.substr(0, stem.find('.'));
  std::string slug = Slug(stem);
  return slug.empty() ? "statement" : slug;
}

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
  if (b != absl::string_view::npos && (a == absl::string_view::npos || b < a)) return {b, 3};
  return {a, 1};
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
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

}  // namespace

std::string Slug(const std::string& text) {
  std::string out;
  for (char c : text) {
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
    for (absl::string_view lead : {"and ", "or ", "以及", "和", "及"}) {
      if (absl::StartsWith(item, lead)) {
        item = Trim(item.substr(lead.size()));
        break;
      }
    }
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
      for (absl::string_view s : {",", ";", "，", "、", "；"}) {
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

std::vector<std::string> MapSharedDataItem(const std::string& item, const Ontology& ontology) {
  return MapItem(item, ontology, DataTypeMatcher(ontology));
}

absl::StatusOr<Statement> ImportStatementText(const std::string& text,
                                              const std::string& source_name,
                                              const Ontology& ontology) {
  return ImportStatementText(text, source_name, ontology, nullptr);
}

absl::StatusOr<Statement> ImportStatementText(const std::string& text,
                                              const std::string& source_name,
                                              const Ontology& ontology,
                                              std::vector<std::string>* warnings) {
  auto error = [&](Pos p, absl::string_view msg) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":", p.line, ":", p.column, ": ", msg));
  };
  auto warn = [&](Pos p, absl::string_view msg) {
    if (warnings)
      warnings->push_back(absl::StrCat(source_name, ":", p.line, ":", p.column, ": ", msg));
  };

  // ---- pass 1: lines -> version, headings, raw entries ----------------------
  std::optional<Value> version;
  std::vector<Value> pre_headings;  // heading-like lines before the first field
  std::optional<Value> pending;     // heading since the last field line
  std::vector<RawEntry> raw;
  int line_no = 0;
  for (absl::string_view raw_line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (absl::EndsWith(raw_line, "\r")) raw_line.remove_suffix(1);
    absl::string_view s = Trim(raw_line);
    if (s.empty()) continue;
    // Columns count characters (UTF-8 code points), as editors show them.
    auto col = [&](absl::string_view part) {
      int c = 1;
      for (const char* p = raw_line.data(); p < part.data(); ++p) {
        if ((static_cast<unsigned char>(*p) & 0xC0) != 0x80) ++c;
      }
      return c;
    };
    bool bullet = false;
    for (absl::string_view mark : {"•", "·", "●", "▪", "- ", "* "}) {
      if (absl::ConsumePrefix(&s, mark)) {
        bullet = true;
        s = Trim(s);
        break;
      }
    }
    auto [colon, colon_len] = FindColon(s);
    std::string label;
    absl::string_view value;
    if (colon != absl::string_view::npos) {
      label = absl::AsciiStrToLower(Trim(s.substr(0, colon)));
      value = Trim(s.substr(colon + colon_len));
    }
    if (label == "version" || label == "版本") {
      version = Value{std::string(value), {line_no, col(value)}};
      continue;
    }
    auto it = Labels().find(label);
    if (it == Labels().end()) {
      if (bullet) {
        if (colon == absl::string_view::npos) {
          return error({line_no, col(s)}, "bullet is not 'Label: value'");
        }
        warn({line_no, col(s)}, absl::StrCat("label '", Trim(s.substr(0, colon)), "' ignored"));
      } else if (IsHeadingLike(s)) {
        Value h{std::string(s), {line_no, col(s)}};
        if (raw.empty()) pre_headings.push_back(h);
        pending = h;
      }
      continue;
    }
    const Field field = it->second;
    if (raw.empty() || pending || raw.back().fields.count(field)) {
      RawEntry e;
      e.pos = {line_no, col(s)};
      if (pending) e.heading = pending->text;
      raw.push_back(std::move(e));
      pending.reset();
    }
    raw.back().fields[field] = Value{std::string(value), {line_no, col(value)}};
  }
  if (!version) return error({1, 1}, "no 'Version:' line");
  if (version->text.empty()) return error(version->pos, "empty version");
  if (raw.empty())
    return error({line_no, 1}, "no entries (expected '• Third party name: …' bullets)");

  Statement st;
  st.version = version->text;
  st.source = source_name;
  // A lone heading before the first entry is the statement title only when
  // no entry has a heading of its own; otherwise it is the first entry's.
  bool later_headings =
      std::any_of(raw.begin() + 1, raw.end(), [](const RawEntry& e) { return !e.heading.empty(); });
  if (pre_headings.size() >= 2) {
    st.title = pre_headings.front().text;
  } else if (pre_headings.size() == 1 && !later_headings) {
    st.title = pre_headings.front().text;
    raw.front().heading.clear();
  }
  st.id = StatementId(st.title, source_name);

  // ---- pass 2: raw entries -> entries through the ontology ------------------
  const TermMatcher types = DataTypeMatcher(ontology);
  TermMatcher scenarios, methods, consents;
  for (const Scenario& sc : ontology.scenario_defs) {
    for (const std::string& t : sc.terms) scenarios.Add(t, sc.id);
  }
  for (const SharingMethod& m : ontology.sharing_methods) {
    for (const std::string& t : m.terms) methods.Add(t, m.id);
  }
  for (const Consent& c : ontology.consents) {
    for (const std::string& t : c.terms) consents.Add(t, c.id);
  }
  scenarios.Finish();
  methods.Finish();
  consents.Finish();

  for (const RawEntry& r : raw) {
    auto get = [&](Field f) -> const Value* {
      auto fit = r.fields.find(f);
      return fit == r.fields.end() ? nullptr : &fit->second;
    };
    Entry e;
    e.title = r.heading;
    const Value* party = get(Field::kThirdParty);
    if (party == nullptr || party->text.empty())
      return error(r.pos, "entry has no third party name");
    e.third_party = party->text;
    const Entity* entity = ontology.FindEntityByName(e.third_party);
    if (entity == nullptr) {
      return error(party->pos, absl::StrCat("third party '", e.third_party,
                                            "' is no entity name or alias in the ontology"));
    }
    e.entity = entity->id;
    const Value* type = get(Field::kSharingType);
    if (type == nullptr || type->text.empty()) return error(r.pos, "entry has no sharing type");
    std::tie(e.sharing_type, e.sdk) = SplitSharingType(type->text);
    if (const Value* data = get(Field::kSharedData)) {
      e.shared_data = SplitSharedData(data->text);
      for (const std::string& item : e.shared_data) {
        std::vector<std::string> ids = MapItem(item, ontology, types);
        if (ids.empty()) {
          warn(data->pos, absl::StrCat("shared data item '", item, "' maps to no data type"));
        }
        AppendUnique(ids, &e.data_types);
      }
    } else {
      warn(r.pos, "entry has no shared data");
    }
    if (const Value* v = get(Field::kPurpose)) e.purpose = v->text;
    if (const Value* v = get(Field::kScenario)) {
      e.usage_scenario = v->text;
      AppendUnique(scenarios.Find(v->text), &e.scenarios);
      if (e.scenarios.empty()) warn(v->pos, "usage scenario matches no ontology scenario");
    }
    if (const Value* v = get(Field::kMethod)) {
      AppendUnique(methods.Find(v->text), &e.sharing_methods);
      if (e.sharing_methods.empty()) warn(v->pos, "sharing method matches no ontology method");
    }
    if (const Value* v = get(Field::kRules)) e.rules_link = v->text;
    // Consent keys the published text ties the sharing to, in ontology order.
    std::vector<std::string> mentioned = consents.Find(absl::StrCat(
        get(Field::kSharedData) ? get(Field::kSharedData)->text : "", " \n ", e.purpose));
    for (const Consent& c : ontology.consents) {
      if (std::count(mentioned.begin(), mentioned.end(), c.id)) e.requires_consent.push_back(c.id);
    }
    st.entries.push_back(std::move(e));
  }

  // Ids: slug of the SDK; an SDK in several entries adds its first scenario.
  std::map<std::string, int> sdk_count;
  for (const Entry& e : st.entries) sdk_count[Slug(e.sdk)]++;
  std::set<std::string> used;
  for (size_t i = 0; i < st.entries.size(); ++i) {
    Entry& e = st.entries[i];
    std::string id = Slug(e.sdk);
    if (id.empty()) id = absl::StrCat("entry-", i + 1);
    if (sdk_count[Slug(e.sdk)] > 1) {
      id += "-" + (e.scenarios.empty() ? std::to_string(i + 1) : Slug(e.scenarios.front()));
    }
    std::string unique = id;
    for (int n = 2; used.count(unique); ++n) unique = absl::StrCat(id, "-", n);
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

// Cookie tables as published -> CookiePolicy -> YAML; cookie verdicts.
#include "collector/policy/cookies.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "collector/policy/importer.h"
#include "collector/policy/text_normalize.h"

namespace idflow::policy {
namespace {

constexpr int64_t kMinute = 60;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kWeek = 7 * kDay;
constexpr int64_t kMonth = 30 * kDay;  // conventional; JudgeCookie allows slack
constexpr int64_t kYear = 365 * kDay;

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

std::string CollapseSpace(absl::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// Word or digit count: "5", "Five", "a"/"an" ("an hour").
std::optional<int64_t> Number(absl::string_view word) {
  static const std::map<std::string, int64_t> kWords = {
      {"a", 1},         {"an", 1},      {"one", 1},     {"two", 2},     {"three", 3},
      {"four", 4},      {"five", 5},    {"six", 6},     {"seven", 7},   {"eight", 8},
      {"nine", 9},      {"ten", 10},    {"eleven", 11}, {"twelve", 12}, {"thirteen", 13},
      {"eighteen", 18}, {"twenty", 20}, {"thirty", 30}};
  int64_t n = 0;
  if (!word.empty() && word.size() <= 9 &&
      std::all_of(word.begin(), word.end(), [](char c) { return absl::ascii_isdigit(c); }) &&
      absl::SimpleAtoi(word, &n)) {
    return n;
  }
  auto it = kWords.find(Lower(word));
  if (it != kWords.end()) return it->second;
  return std::nullopt;
}

std::optional<int64_t> Unit(absl::string_view word) {
  std::string w = Lower(word);
  while (!w.empty() && !absl::ascii_isalpha(static_cast<unsigned char>(w.back()))) w.pop_back();
  static const std::map<std::string, int64_t> kUnits = {
      {"second", 1},       {"seconds", 1},       {"sec", 1},       {"secs", 1},
      {"minute", kMinute}, {"minutes", kMinute}, {"min", kMinute}, {"mins", kMinute},
      {"hour", kHour},     {"hours", kHour},     {"hr", kHour},    {"hrs", kHour},
      {"day", kDay},       {"days", kDay},       {"week", kWeek},  {"weeks", kWeek},
      {"month", kMonth},   {"months", kMonth},   {"mo", kMonth},   {"year", kYear},
      {"years", kYear},    {"yr", kYear},        {"yrs", kYear}};
  auto it = kUnits.find(w);
  if (it != kUnits.end()) return it->second;
  return std::nullopt;
}

bool IsSessionWord(absl::string_view word) {
  std::string w = Lower(word);
  while (!w.empty() && !absl::ascii_isalpha(static_cast<unsigned char>(w.back()))) w.pop_back();
  return w == "session";
}

// Tokens split on whitespace; also splits "4Hours"-style glued forms? No:
// published tables write "4 Hours", and gluing would misread names.
std::vector<std::string> Tokens(absl::string_view s) {
  return absl::StrSplit(s, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty());
}

// The last duration phrase in `tokens` as [begin, end), if any.
std::optional<std::pair<size_t, size_t>> LastDurationSpan(const std::vector<std::string>& tokens,
                                                          size_t from) {
  for (size_t i = tokens.size(); i-- > from;) {
    if (IsSessionWord(tokens[i])) return std::make_pair(i, i + 1);
    if (i + 1 < tokens.size() && Number(tokens[i]) && Unit(tokens[i + 1])) {
      return std::make_pair(i, i + 2);
    }
  }
  return std::nullopt;
}

std::string Trim(absl::string_view s) { return std::string(absl::StripAsciiWhitespace(s)); }

// "`name`" -> "name", "[Text](url)" -> "Text", whitespace collapsed.
std::string CleanCell(absl::string_view raw) {
  std::string s = CollapseSpace(raw);
  if (s.size() >= 2 && s.front() == '[') {
    size_t close = s.find("](");
    if (close != std::string::npos && s.back() == ')') s = s.substr(1, close - 1);
  }
  if (s.size() >= 2 && s.front() == '`' && s.back() == '`') s = s.substr(1, s.size() - 2);
  return Trim(s);
}

std::string CategoryFromWords(absl::string_view text) {
  const std::string t = Lower(text);
  static const std::vector<std::pair<const char*, const char*>> kCategories = {
      {"strictly necessary", "essential"}, {"necessary", "essential"},
      {"essential", "essential"},          {"required", "essential"},
      {"analytics", "analytics"},          {"analytical", "analytics"},
      {"performance", "analytics"},        {"statistic", "analytics"},
      {"functional", "functional"},        {"preference", "functional"},
      {"advertising", "advertising"},      {"marketing", "advertising"},
      {"targeting", "advertising"}};
  for (const auto& [word, id] : kCategories) {
    if (absl::StartsWith(t, word)) return id;
  }
  return "";
}

// A short heading such as "Essential Cookies" or "Analytics cookies (optional)".
std::string CategoryHeading(absl::string_view line) {
  std::string s = Trim(line);
  while (!s.empty() && (s.front() == '#' || s.front() == ' ')) s.erase(0, 1);
  if (s.empty() || s.size() > 60 || s.back() == '.' || !absl::StrContains(Lower(s), "cookie")) {
    return "";
  }
  return CategoryFromWords(s);
}

std::string CategoryFromPurpose(const std::string& purpose) {
  const std::string p = Lower(purpose);
  if (absl::StrContains(p, "advertis") || absl::StrContains(p, " ads")) return "advertising";
  if (absl::StrContains(p, "analytic")) return "analytics";
  return "unspecified";
}

enum class Col { kName, kPurpose, kDuration, kSource, kOther };

Col ColumnOf(absl::string_view header) {
  std::string h = Lower(CleanCell(header));
  while (!h.empty() && !absl::ascii_isalnum(static_cast<unsigned char>(h.back()))) h.pop_back();
  if (h == "cookie" || h == "cookies" || h == "name" || h == "cookie name" ||
      h == "name of cookie") {
    return Col::kName;
  }
  if (h == "purpose" || h == "description" || h == "purpose of cookie" || h == "what it does" ||
      h == "used for") {
    return Col::kPurpose;
  }
  if (h == "duration" || h == "expiration" || h == "expires" || h == "expiry" || h == "lifespan" ||
      h == "retention" || h == "retention period" || h == "storage period") {
    return Col::kDuration;
  }
  if (h == "source" || h == "provider" || h == "provider of cookie" || h == "party" ||
      h == "domain" || h == "set by") {
    return Col::kSource;
  }
  return Col::kOther;
}

struct Fields {
  std::string name, purpose, duration, source;
};

// How a table was published decides which empty cells stand for "as above".
//  - kCells (pipe and HTML tables): every row writes its own purpose and
//    lifetime; only the source (provider) is written once and left empty below
//    (seed 000). An empty purpose or duration cell is empty.
//  - kWords (whitespace tables, seed 001): the table is a flattened web table
//    whose merged purpose and source cells appear only on their first row.
enum class Layout { kCells, kWords };

class TableReader {
 public:
  TableReader(std::string source, CookiePolicy* out, std::vector<std::string>* warnings)
      : source_(std::move(source)), out_(out), warnings_(warnings) {}

  void Warn(int line, int column, absl::string_view msg) {
    if (warnings_) warnings_->push_back(absl::StrCat(source_, ":", line, ":", column, ": ", msg));
  }

  void Heading(absl::string_view text) {
    std::string c = CategoryHeading(text);
    if (!c.empty()) category_ = c;
  }

  // A header row: returns whether it names a cookie and a duration column.
  bool Header(const std::vector<std::string>& cells, Layout layout) {
    std::vector<Col> cols;
    bool name = false, duration = false;
    for (const std::string& c : cells) {
      cols.push_back(ColumnOf(c));
      name = name || cols.back() == Col::kName;
      duration = duration || cols.back() == Col::kDuration;
    }
    if (!name || !duration) return false;
    cols_ = cols;
    layout_ = layout;
    carry_ = Fields{};
    return true;
  }

  void EndTable() {
    cols_.clear();
    carry_ = Fields{};
  }
  bool InTable() const { return !cols_.empty(); }

  int IndexOf(Col c) const {
    for (size_t i = 0; i < cols_.size(); ++i) {
      if (cols_[i] == c) return static_cast<int>(i);
    }
    return -1;
  }

  // A pipe or HTML row under the current header.
  void CellRow(std::vector<std::string> cells, int line) {
    for (std::string& c : cells) c = CleanCell(c);
    while (!cells.empty() && cells.back().empty() && cells.size() > cols_.size()) cells.pop_back();
    if (cells.size() > cols_.size()) {
      Warn(line, 1,
           absl::StrCat("row has ", cells.size(), " cells but the header has ", cols_.size(),
                        "; extra cells ignored"));
    }
    cells.resize(std::max(cells.size(), cols_.size()));
    const int name_i = IndexOf(Col::kName), purpose_i = IndexOf(Col::kPurpose),
              dur_i = IndexOf(Col::kDuration), source_i = IndexOf(Col::kSource);
    Fields f;
    f.name = cells[name_i];
    auto cell = [&](int i) { return i >= 0 ? cells[i] : std::string(); };
    if (!cell(dur_i).empty() && ParseDuration(cell(dur_i)).ok) {
      f.purpose = cell(purpose_i);
      f.duration = cell(dur_i);
      f.source = cell(source_i);
    } else {
      // Cells shifted left by a missing purpose ("msttime1 | 1 Day | ||"):
      // anchor on the first cell that reads as a lifetime.
      int d = -1;
      for (int i = 0; i < static_cast<int>(cols_.size()); ++i) {
        if (i != name_i && !cells[i].empty() && ParseDuration(cells[i]).ok) {
          d = i;
          break;
        }
      }
      if (d < 0) {
        f.purpose = cell(purpose_i);
        f.duration = cell(dur_i);
        f.source = cell(source_i);
      } else {
        std::vector<std::string> before;
        for (int i = name_i + 1; i < d; ++i) {
          if (!cells[i].empty()) before.push_back(cells[i]);
        }
        f.purpose = absl::StrJoin(before, " ");
        f.duration = cells[d];
        if (source_i > dur_i) {
          for (int i = d + 1; i < static_cast<int>(cols_.size()); ++i) {
            if (!cells[i].empty()) {
              f.source = cells[i];
              break;
            }
          }
        } else {
          f.source = cell(source_i);
        }
      }
    }
    Add(std::move(f), line);
  }

  // A whitespace row: "name purpose words... <duration> [source words]".
  bool WordRow(absl::string_view text, int line) {
    std::vector<std::string> tokens = Tokens(text);
    if (tokens.empty() || !LooksLikeName(tokens[0])) return false;
    auto span = LastDurationSpan(tokens, 1);
    if (!span) return false;
    Fields f;
    f.name = tokens[0];
    f.purpose = absl::StrJoin(tokens.begin() + 1, tokens.begin() + span->first, " ");
    f.duration = absl::StrJoin(tokens.begin() + span->first, tokens.begin() + span->second, " ");
    f.source = absl::StrJoin(tokens.begin() + span->second, tokens.end(), " ");
    Add(std::move(f), line);
    return true;
  }

  static bool LooksLikeName(absl::string_view s) {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
             c == '.' || c == '%' || c == '@' || c == '$' || c == '~';
    });
  }

 private:
  void Add(Fields f, int line) {
    if (!LooksLikeName(f.name)) {
      Warn(line, 1, absl::StrCat("'", f.name, "' is not a cookie name; row skipped"));
      return;
    }
    // Cells the layout leaves empty for "as above" carry down from the row
    // above; the source in every layout, the purpose only in whitespace tables.
    if (f.source.empty()) f.source = carry_.source;
    if (layout_ == Layout::kWords && f.purpose.empty()) f.purpose = carry_.purpose;
    carry_ = f;
    CookieRow row;
    row.name = f.name;
    row.purpose = f.purpose;
    row.duration = f.duration;
    row.source = f.source;
    row.category = category_.empty() ? CategoryFromPurpose(f.purpose) : category_;
    Duration d = ParseDuration(f.duration);
    row.session = d.session;
    row.max_age_seconds = d.ok ? d.seconds : -1;
    if (!d.ok) {
      Warn(line, 1,
           absl::StrCat("cookie ", f.name, ": lifetime '", f.duration,
                        "' names no duration; kept, lifetime not checked"));
    }
    row.source_line = line;
    out_->cookies.push_back(std::move(row));
  }

  std::string source_;
  CookiePolicy* out_;
  std::vector<std::string>* warnings_;
  std::vector<Col> cols_;
  Layout layout_ = Layout::kCells;
  Fields carry_;
  std::string category_;
};

std::vector<std::string> SplitPipes(absl::string_view line) {
  std::string s = Trim(line);
  if (!s.empty() && s.front() == '|') s.erase(0, 1);
  return absl::StrSplit(s, '|');
}

bool IsSeparatorRow(const std::vector<std::string>& cells) {
  bool any = false;
  for (const std::string& raw : cells) {
    std::string c = Trim(raw);
    if (c.empty()) continue;
    any = true;
    if (!std::all_of(c.begin(), c.end(), [](char ch) { return ch == '-' || ch == ':'; })) {
      return false;
    }
  }
  return any;
}

std::string DecodeEntities(const std::string& s) {
  static const std::vector<std::pair<std::string, std::string>> kEntities = {
      {"&amp;", "&"},
      {"&lt;", "<"},
      {"&gt;", ">"},
      {"&quot;", "\""},
      {"&#39;", "'"},
      {"&nbsp;", " "},
      {"&rsquo;", "\xE2\x80\x99"},
      {"&lsquo;", "\xE2\x80\x98"}};
  std::string out = s;
  for (const auto& [from, to] : kEntities) {
    size_t pos = 0;
    while ((pos = out.find(from, pos)) != std::string::npos) {
      out.replace(pos, from.size(), to);
      pos += to.size();
    }
  }
  return out;
}

// HTML: <h1>-<h6> headings set the category, <tr> rows with <th>/<td> cells.
void ReadHtml(const std::string& text, TableReader* r) {
  const std::string lower = Lower(text);
  auto line_of = [&](size_t pos) {
    return 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
  };
  auto strip_tags = [&](size_t b, size_t e) {
    std::string out;
    bool in_tag = false;
    for (size_t i = b; i < e; ++i) {
      if (text[i] == '<') in_tag = true;
      if (!in_tag) out.push_back(text[i]);
      if (text[i] == '>') in_tag = false;
    }
    return CollapseSpace(DecodeEntities(out));
  };
  size_t pos = 0;
  while (pos < lower.size()) {
    size_t h = lower.find("<h", pos);
    size_t tr = lower.find("<tr", pos);
    size_t table_end = lower.find("</table", pos);
    size_t next = std::min({h, tr, table_end});
    if (next == std::string::npos) break;
    if (next == table_end) {
      r->EndTable();
      pos = next + 7;
      continue;
    }
    if (next == h) {
      if (h + 2 < lower.size() && absl::ascii_isdigit(lower[h + 2])) {
        size_t open_end = lower.find('>', h);
        size_t close = lower.find("</h", h);
        if (open_end == std::string::npos || close == std::string::npos) break;
        r->Heading(strip_tags(open_end + 1, close));
        pos = close + 3;
      } else {
        pos = h + 2;
      }
      continue;
    }
    size_t tr_end = lower.find("</tr", tr);
    if (tr_end == std::string::npos) tr_end = lower.size();
    std::vector<std::string> cells;
    bool header = false;
    size_t c = tr;
    while (true) {
      size_t th = lower.find("<th", c);
      size_t td = lower.find("<td", c);
      size_t cell = std::min(th, td);
      if (cell == std::string::npos || cell >= tr_end) break;
      // "<thead" is not a cell.
      if (cell == th && th + 3 < lower.size() && absl::ascii_isalpha(lower[th + 3])) {
        c = th + 3;
        continue;
      }
      header = header || cell == th;
      size_t open_end = lower.find('>', cell);
      if (open_end == std::string::npos || open_end >= tr_end) break;
      size_t close = lower.find(cell == th ? "</th" : "</td", open_end);
      if (close == std::string::npos || close > tr_end) close = tr_end;
      cells.push_back(strip_tags(open_end + 1, close));
      c = close + 1;
    }
    const int line = line_of(tr);
    if (header || !r->InTable()) {
      if (!r->Header(cells, Layout::kCells) && !r->InTable()) {
        r->Warn(line, 1, "table row without a recognised cookie header; skipped");
      }
    } else if (!cells.empty()) {
      r->CellRow(cells, line);
    }
    pos = tr_end + 1;
  }
}

void ReadText(const std::string& text, TableReader* r) {
  enum class Mode { kProse, kPipe, kWords } mode = Mode::kProse;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::ConsumeSuffix(&raw, "\r");
    const std::string line = Trim(raw);
    const bool pipe = std::count(line.begin(), line.end(), '|') >= 2;
    if (mode == Mode::kPipe && !pipe) {
      r->EndTable();
      mode = Mode::kProse;
    }
    if (mode == Mode::kWords) {
      if (!line.empty() && r->WordRow(line, line_no)) continue;
      r->EndTable();
      mode = Mode::kProse;
    }
    if (line.empty()) continue;
    if (pipe) {
      std::vector<std::string> cells = SplitPipes(line);
      if (mode == Mode::kPipe) {
        if (IsSeparatorRow(cells)) continue;
        // A repeated header starts a new table with fresh carry-down.
        std::vector<std::string> trimmed;
        for (const auto& c : cells) trimmed.push_back(Trim(c));
        while (!trimmed.empty() && trimmed.back().empty()) trimmed.pop_back();
        if (r->Header(trimmed, Layout::kCells)) continue;
        r->CellRow(cells, line_no);
        continue;
      }
      std::vector<std::string> trimmed;
      for (const auto& c : cells) trimmed.push_back(Trim(c));
      while (!trimmed.empty() && trimmed.back().empty()) trimmed.pop_back();
      if (r->Header(trimmed, Layout::kCells)) {
        mode = Mode::kPipe;
      }
      continue;
    }
    // "Cookie Purpose Duration Source": a whitespace header.
    std::vector<std::string> words = Tokens(line);
    if (words.size() >= 2 && words.size() <= 6 && r->Header(words, Layout::kWords)) {
      mode = Mode::kWords;
      continue;
    }
    r->Heading(line);
  }
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

std::string FileStem(const std::string& path) {
  std::string base =
      path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  size_t dot = base.rfind('.');
  if (dot != std::string::npos && dot > 0) base = base.substr(0, dot);
  return base;
}

std::string DefaultTitle(const std::string& text) {
  int n = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    if (++n > 5) break;
    std::string s = Trim(raw);
    while (!s.empty() && s.front() == '#') s = Trim(s.substr(1));
    if (absl::StartsWith(s, "title:")) s = Trim(s.substr(6));
    if (!s.empty() && s.size() <= 60 && s.back() != '.' && absl::StrContains(Lower(s), "cookie")) {
      return s;
    }
  }
  return "";
}

// Matched suffix length when `pattern` ("host" or "*.host") covers `host`, else -1.
int SiteMatch(const std::string& pattern, const std::string& host) {
  std::string p = Lower(pattern);
  if (absl::StartsWith(p, "*.")) {
    std::string base = p.substr(2);
    if (host == base || absl::EndsWith(host, "." + base)) return static_cast<int>(base.size());
    return -1;
  }
  return host == p ? static_cast<int>(p.size()) : -1;
}

std::string NormalizeSite(const std::string& site) {
  std::string h = Lower(Trim(site));
  if (absl::StartsWith(h, ".")) h.erase(0, 1);  // Set-Cookie Domain=.example.com
  size_t colon = h.find(':');
  if (colon != std::string::npos && h.find(':', colon + 1) == std::string::npos) h.resize(colon);
  while (!h.empty() && h.back() == '.') h.pop_back();
  return h;
}

std::string Lifetime(bool session, int64_t seconds) {
  if (session) return "for the session";
  if (seconds < 0) return "for an unknown time";
  if (seconds % kYear == 0 && seconds >= kYear) return absl::StrCat(seconds / kYear, " year(s)");
  if (seconds % kDay == 0 && seconds >= kDay) return absl::StrCat(seconds / kDay, " day(s)");
  if (seconds % kHour == 0 && seconds >= kHour) return absl::StrCat(seconds / kHour, " hour(s)");
  return absl::StrCat(seconds, " s");
}

// A row naming the same cookie as an earlier row with another lifetime.
struct DuplicateRow {
  const CookieRow* first;
  const CookieRow* again;
};

bool SameLifetime(const CookieRow& a, const CookieRow& b) {
  return a.session == b.session && a.max_age_seconds == b.max_age_seconds;
}

// Every row whose name an earlier row of `p` lists with a different lifetime,
// paired with the first such earlier row, in row order.
std::vector<DuplicateRow> DuplicateLifetimes(const CookiePolicy& p) {
  std::vector<DuplicateRow> out;
  std::map<std::string, std::vector<const CookieRow*>> seen;
  for (const CookieRow& r : p.cookies) {
    std::vector<const CookieRow*>& earlier = seen[r.name];
    for (const CookieRow* e : earlier) {
      if (!SameLifetime(*e, r)) {
        out.push_back({e, &r});
        break;
      }
    }
    earlier.push_back(&r);
  }
  return out;
}

std::string Quoted(const CookieRow& r) {
  return r.duration.empty() ? std::string("no lifetime") : absl::StrCat("'", r.duration, "'");
}

// "cookie X is listed again with lifetime '4 Hours' (line 33: '4 Day'); ...".
std::string DuplicateMessage(const DuplicateRow& d, int first_line) {
  return absl::StrCat("cookie ", d.again->name, " is listed again with lifetime ", Quoted(*d.again),
                      " (line ", first_line, ": ", Quoted(*d.first),
                      "); verdicts allow the longest declared lifetime");
}

}  // namespace

Duration ParseDuration(const std::string& text) {
  Duration d;
  const std::string t = Lower(text);
  if (absl::StrContains(t, "session") || absl::StrContains(t, "closes browser") ||
      absl::StrContains(t, "close the browser") || absl::StrContains(t, "closes the browser") ||
      absl::StrContains(t, "closes their browser")) {
    d.ok = true;
    d.session = true;
    return d;
  }
  // "1 Month", "13 months EEA UK; 24 months elsewhere": the longest one named.
  std::string spaced;
  for (char c : t) {
    spaced.push_back(absl::ascii_isalnum(static_cast<unsigned char>(c)) ? c : ' ');
  }
  std::vector<std::string> tokens = Tokens(spaced);
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    auto n = Number(tokens[i]);
    auto u = Unit(tokens[i + 1]);
    if (!n || !u) continue;
    if (*n > std::numeric_limits<int64_t>::max() / *u) continue;  // no overflow on nonsense
    d.ok = true;
    d.seconds = std::max(d.seconds, *n * *u);
  }
  return d;
}

absl::StatusOr<CookiePolicy> ImportCookieText(const std::string& text,
                                              const std::string& source_name,
                                              const CookieImportOptions& options,
                                              std::vector<std::string>* warnings) {
  CookiePolicy p;
  p.source = source_name;
  p.id = options.id.empty() ? Slug(FileStem(source_name)) : options.id;
  if (p.id.empty()) p.id = "cookies";
  p.version = options.version.empty() ? "unversioned" : options.version;
  p.title = options.title.empty() ? DefaultTitle(text) : options.title;
  p.sites = options.sites;
  const std::string lower = Lower(text);
  p.first_party_only = absl::StrContains(lower, "only use first-party cookies") ||
                       absl::StrContains(lower, "only uses first-party cookies") ||
                       absl::StrContains(lower, "only first-party cookies");
  TableReader reader(source_name, &p, warnings);
  if (absl::StrContains(lower, "<table")) {
    ReadHtml(text, &reader);
  } else {
    ReadText(text, &reader);
  }
  if (p.cookies.empty()) {
    const int lines = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    return absl::InvalidArgumentError(absl::StrCat(source_name, ":", lines,
                                                   ":1: no cookie table (expected a header such as "
                                                   "'Cookie | Purpose | Duration | Source')"));
  }
  // First-party: the row's source is the site owner (default: the first row's).
  std::string owner = options.owner;
  for (const CookieRow& r : p.cookies) {
    if (owner.empty() && !r.source.empty()) owner = r.source;
  }
  const std::vector<std::string> owner_words = Tokens(Lower(owner));
  for (CookieRow& r : p.cookies) {
    const std::vector<std::string> words = Tokens(Lower(r.source));
    r.first_party = owner_words.empty() || words.empty() || words[0] == owner_words[0];
  }
  if (warnings != nullptr) {
    for (const DuplicateRow& d : DuplicateLifetimes(p)) {
      warnings->push_back(absl::StrCat(source_name, ":", d.again->source_line,
                                       ":1: ", DuplicateMessage(d, d.first->source_line)));
    }
  }
  return p;
}

std::string CookiePolicyToYaml(const CookiePolicy& p) {
  std::string out = "schema: idflow.policy/v1\nkind: cookies\n";
  absl::StrAppend(&out, "id: ", Quote(p.id), "\nversion: ", Quote(p.version), "\n");
  absl::StrAppend(&out, "title: ", Quote(p.title), "\nsource: ", Quote(p.source), "\n");
  std::vector<std::string> sites;
  for (const std::string& s : p.sites) sites.push_back(Quote(s));
  absl::StrAppend(&out, "sites: [", absl::StrJoin(sites, ", "), "]\n");
  absl::StrAppend(&out, "first_party_only: ", p.first_party_only ? "true" : "false", "\n");
  absl::StrAppend(&out, "cookies:", p.cookies.empty() ? " []" : "", "\n");
  for (const CookieRow& r : p.cookies) {
    absl::StrAppend(&out, "  - name: ", Quote(r.name), "\n");
    absl::StrAppend(&out, "    category: ", Quote(r.category), "\n");
    absl::StrAppend(&out, "    purpose: ", Quote(r.purpose), "\n");
    absl::StrAppend(&out, "    duration: ", Quote(r.duration), "\n");
    absl::StrAppend(&out, "    session: ", r.session ? "true" : "false", "\n");
    absl::StrAppend(&out, "    max_age_seconds: ", r.max_age_seconds, "\n");
    absl::StrAppend(&out, "    source: ", Quote(r.source), "\n");
    absl::StrAppend(&out, "    first_party: ", r.first_party ? "true" : "false", "\n");
    absl::StrAppend(&out, "    source_line: ", r.source_line, "\n");
  }
  return out;
}

namespace {

// Whether a cookie for `domain` (normalized, non-empty) stays within the sites
// of `cp`.
bool WithinSites(const CookiePolicy& cp, const std::string& domain) {
  for (const std::string& s : cp.sites) {
    if (SiteMatch(s, domain) >= 0) return true;
  }
  return false;
}

CookieVerdict Done(CookieVerdict v, Category c, std::string explanation) {
  v.category = c;
  v.finding = FindingOf(c);
  v.explanation = AsSentence(explanation);
  return v;
}

}  // namespace

CookieVerdict JudgeCookie(const Policy& policy, const CookieObservation& cookie) {
  CookieVerdict v;
  const std::string host = NormalizeSite(cookie.host);
  const std::string domain = NormalizeSite(cookie.domain);
  const bool set = cookie.direction == CookieDirection::kSetByServer;
  const std::string where = absl::StrCat(set ? "set by " : "sent to ",
                                         host.empty() ? std::string("an unknown host") : host);
  const CookiePolicy* cp = nullptr;
  int best = -1;
  for (const CookiePolicy& p : policy.cookie_policies) {
    for (const std::string& s : p.sites) {
      int len = SiteMatch(s, host);
      if (len > best) {
        best = len;
        cp = &p;
      }
    }
  }
  if (cp == nullptr) {
    // Without a policy, the browser's rule: a Domain the host is not within.
    v.first_party = domain.empty() || host == domain || absl::EndsWith(host, "." + domain);
    return Done(v, Category::kNoCookiePolicy,
                absl::StrCat("Cookie ", cookie.name, " ", where,
                             " is covered by no loaded cookie policy."));
  }
  v.policy = cp->id;
  v.version = cp->version;
  // A host-only cookie belongs to the covered host; a Domain attribute
  // reaching outside the policy's sites makes it third-party.
  v.first_party = domain.empty() || WithinSites(*cp, domain);
  const std::string ref = absl::StrCat("cookie policy ", cp->id, " ", cp->version);
  const std::string scope = v.first_party ? std::string() : absl::StrCat(" for domain ", domain);
  if (!v.first_party && cp->first_party_only) {
    return Done(v, Category::kThirdPartyCookie,
                absl::StrCat("Cookie ", cookie.name, " ", where, scope, " is third-party, but ",
                             ref, " says the site uses first-party cookies only."));
  }
  // A name listed in several rows is judged against the row with the longest
  // declared lifetime (no lifetime = longest, session = shortest; ties: the
  // first), so a cookie within any declared lifetime is never lifetime_exceeded.
  const CookieRow* row = nullptr;
  auto longer = [](const CookieRow& a, const CookieRow& b) {
    auto key = [](const CookieRow& r) {
      return r.max_age_seconds < 0 ? std::numeric_limits<int64_t>::max() : r.max_age_seconds;
    };
    return key(a) > key(b);
  };
  for (const CookieRow& r : cp->cookies) {
    if (r.name == cookie.name && (row == nullptr || longer(r, *row))) row = &r;
  }
  if (row == nullptr) {
    return Done(
        v, Category::kUndeclaredCookie,
        absl::StrCat("Cookie ", cookie.name, " ", where, " is declared by no row of ", ref, "."));
  }
  v.cookie = row->name;
  v.source_line = row->source_line;
  const std::string row_ref = absl::StrCat("row ", row->name, " (", row->category, ", ",
                                           row->duration.empty() ? "no duration" : row->duration,
                                           ", line ", row->source_line, ") of ", ref);
  if (!v.first_party && row->first_party) {
    return Done(v, Category::kThirdPartyCookie,
                absl::StrCat("Cookie ", cookie.name, " ", where, scope, " is third-party, but ",
                             row_ref, " declares it first-party."));
  }
  // A Cookie request header carries no lifetime: only Set-Cookie is checked.
  const bool observed_known = set && (cookie.session || cookie.max_age_seconds >= 0);
  if (observed_known && row->max_age_seconds >= 0) {
    const int64_t observed = cookie.session ? 0 : cookie.max_age_seconds;
    const int64_t declared = row->max_age_seconds;
    // Expiries come from server clocks and calendar months/years vary: allow
    // 1/30 of the declared lifetime (a day per month), at least a minute.
    const int64_t slack = std::max<int64_t>(kMinute, declared / 30);
    if (observed > declared && observed - declared > slack) {
      return Done(v, Category::kLifetimeExceeded,
                  absl::StrCat("Cookie ", cookie.name, " ", where, " lives ",
                               Lifetime(false, observed), ", longer than ", row_ref, " declares."));
    }
  }
  return Done(v, Category::kClear,
              absl::StrCat("Cookie ", cookie.name, " ", where, " (",
                           v.first_party ? "first" : "third", "-party, ",
                           observed_known ? Lifetime(cookie.session, cookie.max_age_seconds)
                                          : std::string("lifetime unknown"),
                           ") is as declared by ", row_ref, "."));
}

std::vector<std::string> LintCookiePolicy(const CookiePolicy& policy) {
  std::vector<std::string> out;
  for (const DuplicateRow& d : DuplicateLifetimes(policy)) {
    out.push_back(
        absl::StrCat(policy.file, ":", d.again->line, ": ", DuplicateMessage(d, d.first->line)));
  }
  return out;
}

}  // namespace idflow::policy

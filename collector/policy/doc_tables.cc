// Table readers for published documents. See doc_tables.h.
#include "collector/policy/doc_tables.h"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/utf8.h"

namespace idflow::policy {
namespace {

bool IsCont(unsigned char c) { return (c & 0xC0) == 0x80; }

char32_t CodePointAt(absl::string_view s, size_t i, size_t* len) {
  return DecodeUtf8(std::string_view(s.data(), s.size()), i, len);
}

// Monospace display width: East Asian wide and full-width forms count 2.
int DisplayWidth(char32_t cp) {
  if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
      (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
      (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
      (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD)) {
    return 2;
  }
  return 1;
}

struct Line {
  absl::string_view text;  // without '\r'
  int number = 0;
};

std::vector<Line> SplitLines(absl::string_view text) {
  std::vector<Line> out;
  int n = 0;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    absl::ConsumeSuffix(&l, "\r");
    out.push_back({l, ++n});
  }
  return out;
}

// ---- Markdown ----------------------------------------------------------------

bool IsPipeRow(absl::string_view trimmed) {
  return absl::StartsWith(trimmed, "|") || std::count(trimmed.begin(), trimmed.end(), '|') >= 2;
}

std::vector<TableCell> PipeCells(const Line& line) {
  std::vector<TableCell> cells;
  absl::string_view s = line.text;
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  if (i < s.size() && s[i] == '|') ++i;
  std::string cur;
  size_t start = i;
  auto flush = [&](size_t end_byte) {
    (void)end_byte;
    // <br> inside a cell is a line break.
    const std::string text = absl::StrReplaceAll(
        cur, {{"<br>", "\n"}, {"<br/>", "\n"}, {"<br />", "\n"}, {"<BR>", "\n"}});
    absl::string_view t = TrimText(text);
    // The column of the cell's first non-blank character.
    size_t lead = start;
    while (lead < s.size() && (s[lead] == ' ' || s[lead] == '\t')) ++lead;
    cells.push_back({std::string(t), {line.number, ColumnAt(s, lead)}});
    cur.clear();
  };
  for (; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '|') {
      cur.push_back('|');
      ++i;
      continue;
    }
    if (s[i] == '|') {
      flush(i);
      start = i + 1;
      continue;
    }
    cur.push_back(s[i]);
  }
  if (!absl::string_view(TrimText(cur)).empty()) flush(s.size());
  return cells;
}

bool IsSeparator(const std::vector<TableCell>& cells) {
  if (cells.empty()) return false;
  for (const TableCell& c : cells) {
    absl::string_view t = c.text;
    if (t.empty()) return false;
    for (char ch : t) {
      if (ch != '-' && ch != ':' && ch != ' ') return false;
    }
    if (t.find('-') == absl::string_view::npos) return false;
  }
  return true;
}

// ---- plain text ----------------------------------------------------------------

struct Chunk {
  std::string text;
  int display = 0;  // display column where the chunk starts (0-based)
  TextPos pos;
};

// Splits on tabs, runs of 2+ spaces and ideographic spaces.
std::vector<Chunk> TextChunks(const Line& line) {
  std::vector<Chunk> out;
  absl::string_view s = line.text;
  int display = 0;
  size_t i = 0;
  Chunk cur;
  bool in_chunk = false;
  int spaces = 0;
  auto end_chunk = [&] {
    if (in_chunk) {
      absl::string_view t = TrimText(cur.text);
      if (!t.empty()) {
        cur.text = std::string(t);
        out.push_back(cur);
      }
    }
    in_chunk = false;
    cur = Chunk();
  };
  while (i < s.size()) {
    size_t len = 1;
    char32_t cp = CodePointAt(s, i, &len);
    const bool tab = cp == '\t';
    const bool wide_space = cp == 0x3000;
    if (cp == ' ') {
      ++spaces;
    } else {
      spaces = 0;
    }
    if (tab || wide_space || spaces >= 2) {
      end_chunk();
    } else if (cp != ' ' && !in_chunk) {
      in_chunk = true;
      cur.display = display;
      cur.pos = {line.number, ColumnAt(s, i)};
    }
    if (in_chunk) cur.text.append(s.data() + i, len);
    display += tab ? 8 - display % 8 : DisplayWidth(cp);
    i += len;
  }
  end_chunk();
  return out;
}

// Index of the header column a chunk starting at `display` belongs to.
size_t ColumnFor(const std::vector<int>& starts, int display) {
  size_t best = 0;
  for (size_t c = 0; c < starts.size(); ++c) {
    if (starts[c] <= display + 1) best = c;
  }
  return best;
}

// ---- HTML ------------------------------------------------------------------------

bool IsTag(const xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && n->name != nullptr &&
         xmlStrcasecmp(n->name, reinterpret_cast<const xmlChar*>(name)) == 0;
}

bool IsBlock(const xmlNode* n) {
  for (const char* t : {"p",      "div",   "li",      "br", "tr", "h1",         "h2",      "h3",
                        "h4",     "h5",    "h6",      "ul", "ol", "section",    "article", "header",
                        "footer", "title", "caption", "dt", "dd", "blockquote", "pre"}) {
    if (IsTag(n, t)) return true;
  }
  return false;
}

int HeadingLevel(const xmlNode* n) {
  static const char* kH[] = {"h1", "h2", "h3", "h4", "h5", "h6"};
  for (int i = 0; i < 6; ++i) {
    if (IsTag(n, kH[i])) return i + 1;
  }
  return 0;
}

// Text of a subtree; block elements and <br> become line breaks.
void AppendText(const xmlNode* n, std::string* out) {
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
      const char* t = reinterpret_cast<const char*>(c->content);
      if (t == nullptr) continue;
      // Collapse HTML whitespace, as a browser would render it.
      for (const char* p = t; *p; ++p) {
        const bool ws = *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t';
        if (ws) {
          if (!out->empty() && out->back() != ' ' && out->back() != '\n') out->push_back(' ');
        } else {
          out->push_back(*p);
        }
      }
    } else if (c->type == XML_ELEMENT_NODE) {
      if (IsTag(c, "script") || IsTag(c, "style")) continue;
      const bool block = IsBlock(c);
      if (block && !out->empty() && out->back() != '\n') out->push_back('\n');
      AppendText(c, out);
      if (block && !out->empty() && out->back() != '\n') out->push_back('\n');
    }
  }
}

std::string CellText(const xmlNode* n) {
  std::string raw;
  AppendText(n, &raw);
  // Trim every line, drop empty ones.
  std::string out;
  for (absl::string_view l : absl::StrSplit(raw, '\n')) {
    absl::string_view t = TrimText(l);
    if (t.empty()) continue;
    if (!out.empty()) out.push_back('\n');
    out.append(t.data(), t.size());
  }
  return out;
}

int IntAttr(const xmlNode* n, const char* name, int def, int max) {
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (v == nullptr) return def;
  int out = 0;
  for (const xmlChar* p = v; *p >= '0' && *p <= '9'; ++p) {
    out = out * 10 + (*p - '0');
    if (out > max) break;
  }
  xmlFree(v);
  return std::clamp(out, 1, max);
}

// The rows of `table` that belong to it (not to tables nested inside).
void CollectRows(const xmlNode* n, std::vector<const xmlNode*>* rows) {
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (IsTag(c, "table")) continue;
    if (IsTag(c, "tr")) {
      rows->push_back(c);
      continue;
    }
    CollectRows(c, rows);
  }
}

// Spans are capped so a hostile document cannot make a huge grid.
constexpr int kMaxSpan = 64;
constexpr size_t kMaxColumns = 256;

DocTable GridOf(const xmlNode* table) {
  DocTable t;
  t.pos = {static_cast<int>(xmlGetLineNo(table)), 1};
  std::vector<const xmlNode*> rows;
  CollectRows(table, &rows);
  // Cells still spanning down from rows above: column -> (remaining, cell).
  std::map<size_t, std::pair<int, TableCell>> pending;
  for (const xmlNode* tr : rows) {
    std::vector<TableCell> row;
    const int line = static_cast<int>(xmlGetLineNo(tr));
    auto fill_pending = [&] {
      for (auto it = pending.find(row.size()); it != pending.end() && row.size() < kMaxColumns;
           it = pending.find(row.size())) {
        row.push_back(it->second.second);
        if (--it->second.first == 0) pending.erase(it);
      }
    };
    for (const xmlNode* c = tr->children; c != nullptr; c = c->next) {
      if (!IsTag(c, "td") && !IsTag(c, "th")) continue;
      fill_pending();
      TableCell cell{CellText(c), {static_cast<int>(xmlGetLineNo(c)), 1}};
      if (cell.pos.line <= 0) cell.pos.line = line;
      const int colspan = IntAttr(c, "colspan", 1, kMaxSpan);
      const int rowspan = IntAttr(c, "rowspan", 1, kMaxSpan);
      for (int k = 0; k < colspan && row.size() < kMaxColumns; ++k) {
        if (rowspan > 1) pending[row.size()] = {rowspan - 1, cell};
        row.push_back(cell);
      }
    }
    fill_pending();
    if (row.empty()) continue;
    if (t.rows.empty()) t.pos = row.front().pos;
    t.last_line = std::max(t.last_line, line);
    t.rows.push_back(std::move(row));
  }
  return t;
}

void Walk(const xmlNode* n, std::vector<DocTable>* tables, std::vector<TextLine>* lines) {
  for (const xmlNode* c = n; c != nullptr; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (IsTag(c, "table")) {
      DocTable t = GridOf(c);
      if (!t.rows.empty()) tables->push_back(std::move(t));
      // Nested tables are tables of their own.
      std::vector<DocTable> inner;
      for (const xmlNode* k = c->children; k != nullptr; k = k->next) Walk(k, &inner, nullptr);
      for (DocTable& t2 : inner) tables->push_back(std::move(t2));
      continue;
    }
    if (IsTag(c, "script") || IsTag(c, "style")) continue;
    // A block without block children is a line of text.
    bool has_block_child = false;
    for (const xmlNode* k = c->children; k != nullptr; k = k->next) {
      if (k->type == XML_ELEMENT_NODE && (IsBlock(k) || IsTag(k, "table"))) has_block_child = true;
    }
    if (lines != nullptr && IsBlock(c) && !has_block_child) {
      std::string text = CellText(c);
      for (absl::string_view l : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
        lines->push_back({std::string(l), {static_cast<int>(xmlGetLineNo(c)), 1}, HeadingLevel(c)});
      }
      continue;
    }
    Walk(c->children, tables, lines);
  }
}

}  // namespace

absl::string_view TrimText(absl::string_view s) {
  for (bool changed = true; changed;) {
    changed = false;
    s = absl::StripAsciiWhitespace(s);
    for (absl::string_view ws : {"\u00a0", "\u3000"}) {
      if (absl::ConsumePrefix(&s, ws) || absl::ConsumeSuffix(&s, ws)) changed = true;
    }
  }
  return s;
}

int ColumnAt(absl::string_view s, size_t byte) {
  int c = 1;
  for (size_t i = 0; i < byte && i < s.size(); ++i) {
    if (!IsCont(static_cast<unsigned char>(s[i]))) ++c;
  }
  return c;
}

std::vector<DocTable> ReadMarkdownTables(absl::string_view text) {
  std::vector<DocTable> out;
  const std::vector<Line> lines = SplitLines(text);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (!IsPipeRow(TrimText(lines[i].text))) continue;
    std::vector<TableCell> header = PipeCells(lines[i]);
    std::vector<TableCell> sep = PipeCells(lines[i + 1]);
    if (header.empty() || !IsSeparator(sep)) continue;
    DocTable t;
    t.pos = lines[i].number > 0 ? TextPos{lines[i].number, 1} : TextPos{};
    t.rows.push_back(std::move(header));
    t.last_line = lines[i + 1].number;
    size_t j = i + 2;
    for (; j < lines.size(); ++j) {
      absl::string_view trimmed = TrimText(lines[j].text);
      if (trimmed.empty() || !IsPipeRow(trimmed)) break;
      t.rows.push_back(PipeCells(lines[j]));
      t.last_line = lines[j].number;
    }
    out.push_back(std::move(t));
    i = j - 1;
  }
  return out;
}

std::vector<DocTable> ReadTextTables(absl::string_view text) {
  std::vector<DocTable> out;
  const std::vector<Line> lines = SplitLines(text);
  DocTable cur;
  std::vector<int> starts;  // display column of each header cell
  auto end_table = [&] {
    if (cur.rows.size() >= 2) out.push_back(std::move(cur));
    cur = DocTable();
    starts.clear();
  };
  for (const Line& line : lines) {
    absl::string_view trimmed = TrimText(line.text);
    if (trimmed.empty() || IsPipeRow(trimmed)) {
      end_table();
      continue;
    }
    std::vector<Chunk> chunks = TextChunks(line);
    if (starts.empty()) {
      if (chunks.size() < 3) continue;
      for (const Chunk& c : chunks) starts.push_back(c.display);
      cur.pos = chunks.front().pos;
      std::vector<TableCell> header;
      for (Chunk& c : chunks) header.push_back({std::move(c.text), c.pos});
      cur.rows.push_back(std::move(header));
      cur.last_line = line.number;
      continue;
    }
    const bool indented = !line.text.empty() && (line.text[0] == ' ' || line.text[0] == '\t' ||
                                                 absl::StartsWith(line.text, "\u3000"));
    if (chunks.size() < 2 && !(indented && cur.rows.size() >= 2)) {
      // Prose after the table ends it.
      end_table();
      continue;
    }
    std::vector<TableCell> row(starts.size());
    const bool continuation = indented && cur.rows.size() >= 2;
    for (Chunk& c : chunks) {
      size_t col = chunks.size() == starts.size() && !continuation
                       ? static_cast<size_t>(&c - chunks.data())
                       : ColumnFor(starts, c.display);
      TableCell& cell = row[col];
      if (cell.text.empty()) {
        cell = {std::move(c.text), c.pos};
      } else {
        cell.text += " " + c.text;
      }
    }
    if (continuation) {
      std::vector<TableCell>& prev = cur.rows.back();
      for (size_t k = 0; k < row.size() && k < prev.size(); ++k) {
        if (row[k].text.empty()) continue;
        // A wrapped list continues with its next item; a wrapped phrase with a space.
        const bool cjk_join =
            !prev[k].text.empty() && static_cast<unsigned char>(prev[k].text.back()) >= 0x80;
        prev[k].text += cjk_join ? "" : " ";
        prev[k].text += row[k].text;
      }
    } else {
      for (size_t k = 0; k < row.size(); ++k) {
        if (row[k].pos.line == 1 && row[k].text.empty()) row[k].pos = {line.number, 1};
      }
      cur.rows.push_back(std::move(row));
    }
    cur.last_line = line.number;
  }
  end_table();
  return out;
}

bool LooksLikeHtml(absl::string_view text) {
  const std::string head = absl::AsciiStrToLower(text.substr(0, 1 << 16));
  for (absl::string_view tag : {"<table", "<html", "<body", "<!doctype html"}) {
    if (head.find(tag.data(), 0, tag.size()) != std::string::npos) return true;
  }
  return false;
}

std::vector<DocTable> ReadHtmlTables(absl::string_view html, std::vector<TextLine>* lines) {
  std::vector<DocTable> out;
  if (html.empty()) return out;
  htmlDocPtr doc = htmlReadMemory(
      html.data(), static_cast<int>(std::min<size_t>(html.size(), INT32_MAX)), nullptr, "UTF-8",
      HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
          HTML_PARSE_NOIMPLIED | HTML_PARSE_COMPACT);
  if (doc == nullptr) return out;
  Walk(xmlDocGetRootElement(doc), &out, lines);
  xmlFreeDoc(doc);
  return out;
}

std::vector<TextLine> LinesOutside(absl::string_view text, const std::vector<DocTable>& tables) {
  std::vector<TextLine> out;
  // Table spans in line order, walked once: linear in lines + tables.
  std::vector<std::pair<int, int>> spans;
  for (const DocTable& t : tables) spans.push_back({t.pos.line, t.last_line});
  std::sort(spans.begin(), spans.end());
  size_t next = 0;
  for (const Line& l : SplitLines(text)) {
    while (next < spans.size() && spans[next].second < l.number) ++next;
    if (next < spans.size() && l.number >= spans[next].first) continue;
    absl::string_view trimmed = TrimText(l.text);
    if (trimmed.empty()) continue;
    int level = 0;
    absl::string_view rest = trimmed;
    while (absl::ConsumePrefix(&rest, "#")) ++level;
    if (level > 0 && level <= 6 && absl::StartsWith(rest, " ")) {
      out.push_back({std::string(TrimText(rest)),
                     {l.number, ColumnAt(l.text, rest.data() - l.text.data())},
                     level});
    } else {
      out.push_back(
          {std::string(trimmed), {l.number, ColumnAt(l.text, trimmed.data() - l.text.data())}, 0});
    }
  }
  return out;
}

}  // namespace idflow::policy

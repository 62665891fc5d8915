// Tables and text lines out of the documents vendors publish: Markdown pipe
// tables, HTML tables (libxml2's HTML parser, rowspan/colspan expanded) and
// plain-text tables (tab- or space-aligned columns). Layout-agnostic: the
// statement importer decides what the columns mean. Positions are 1-based
// lines and columns (code points) of the source text.
#ifndef IDFLOW_COLLECTOR_POLICY_DOC_TABLES_H_
#define IDFLOW_COLLECTOR_POLICY_DOC_TABLES_H_

#include <string>
#include <vector>
#include "absl/strings/string_view.h"

namespace idflow::policy {

struct TextPos {
  int line = 1;
  int column = 1;
};

struct TableCell {
  std::string text;  // trimmed; line breaks inside the cell kept as '\n'
  TextPos pos;
};

struct DocTable {
  TextPos pos;                               // of the first row
  int last_line = 0;                         // of the last row
  std::vector<std::vector<TableCell>> rows;  // rows[0] is usually the header
};

// A line of running text outside tables (HTML: one block element).
struct TextLine {
  std::string text;
  TextPos pos;
  int heading_level = 0;  // 1-6 for Markdown '#' and HTML <h1>-<h6>, else 0
};

// GitHub-style pipe tables: a header row, a |---| separator row, body rows.
// `\|` is a literal bar; `<br>` inside a cell is a line break.
std::vector<DocTable> ReadMarkdownTables(absl::string_view text);

// Tables whose columns are separated by tabs, or by two or more spaces or an
// ideographic space, with at least 3 columns in the header. A row with fewer
// cells is aligned to the header's columns by display position (CJK counts 2);
// an indented row continues the row above.
std::vector<DocTable> ReadTextTables(absl::string_view text);

// Every <table> of an HTML document (innermost rows only for nested tables),
// and the document's other block text in `lines` when non-null.
std::vector<DocTable> ReadHtmlTables(absl::string_view html, std::vector<TextLine>* lines);

// True when `text` looks like HTML (a <table>, <html> or <body> tag).
bool LooksLikeHtml(absl::string_view text);

// Lines of `text` with their numbers, without the lines `tables` cover
// (used to find titles and versions around tables).
std::vector<TextLine> LinesOutside(absl::string_view text, const std::vector<DocTable>& tables);

// Trims ASCII whitespace, NBSP and the ideographic space.
absl::string_view TrimText(absl::string_view s);

// Number of code points in `s` before byte offset `byte` (+1: a column).
int ColumnAt(absl::string_view s, size_t byte);

}  // namespace idflow::policy

#endif  // IDFLOW_COLLECTOR_POLICY_DOC_TABLES_H_

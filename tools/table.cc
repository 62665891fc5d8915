#include "tools/table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace idflow::tools {

std::string FormatTable(const std::vector<std::vector<std::string>>& rows,
                        const std::vector<std::string>& notes) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size());
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (size_t row = 0; row < rows.size(); ++row) {
    std::string line;
    for (size_t i = 0; i < rows[row].size(); ++i) {
      absl::StrAppend(&line, rows[row][i], std::string(width[i] - rows[row][i].size() + 2, ' '));
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
    if (row > 0 && row - 1 < notes.size() && !notes[row - 1].empty()) {
      absl::StrAppend(&out, "    ", notes[row - 1], "\n");
    }
  }
  return out;
}

}  // namespace idflow::tools

// Aligned plain-text tables for idflowctl (first row: headers).
#ifndef IDFLOW_TOOLS_TABLE_H_
#define IDFLOW_TOOLS_TABLE_H_

#include <string>
#include <vector>

namespace idflow::tools {

// Columns padded to their widest cell, two spaces apart, no trailing blanks.
// `notes[i]`, when non-empty, is printed indented under row i + 1.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows,
                        const std::vector<std::string>& notes = {});

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_TABLE_H_

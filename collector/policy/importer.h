// Published data-sharing statements and SDK sharing lists -> Statement, and
// Statement -> the checked-in YAML. Layouts and derivation rules:
// docs/POLICY.md section 4.
#ifndef IDFLOW_COLLECTOR_POLICY_IMPORTER_H_
#define IDFLOW_COLLECTOR_POLICY_IMPORTER_H_

#include <cstddef>
#include <map>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/policy/policy.h"

namespace idflow::policy {

// Documents larger than this are refused: published statements and SDK lists
// are tens of kilobytes; the bound keeps a mistaken input from taking the
// importer's memory (docs/POLICY.md §4).
inline constexpr size_t kMaxImportBytes = 32u << 20;

enum class Layout {
  kAuto,           // decided from the text (HTML tags, pipe tables, aligned columns, labels)
  kLabelled,       // "• Label: value" blocks (seed 002), also 2-column label tables
  kMarkdownTable,  // one SDK per row of a pipe table
  kHtmlTable,      // one SDK per row of an HTML <table>
  kTextTable,      // one SDK per row of a tab- or space-aligned table
};

// "auto", "labelled", "markdown", "html", "text".
absl::StatusOr<Layout> ParseLayout(absl::string_view name);
const char* LayoutName(Layout layout);

struct ImportOptions {
  Layout layout = Layout::kAuto;
  std::string version;  // overrides the document's version line; needed when it has none
  std::string title;    // overrides the document's title
  // Statement ids already taken, with the source each was imported from: a
  // different document deriving the same id gets a suffix and a warning.
  std::map<std::string, std::string> taken_ids;
};

// Refuses what no published text contains: more than kMaxImportBytes,
// invalid UTF-8, NUL and other control characters (tab, LF, CR allowed).
// InvalidArgument "SOURCE:LINE:COLUMN: message".
absl::Status ValidateImportText(absl::string_view text, const std::string& source_name);

// Parses the published text into a Statement whose id lists are derived
// through `ontology`. Errors are InvalidArgument "SOURCE:LINE:COLUMN: message".
// Non-fatal findings go to `warnings` in the same form: clauses kept verbatim
// as `unmapped` (with a suggestion when an ontology term is close), third
// parties added as new entities, ignored labels, derived ids.
absl::StatusOr<Statement> ImportStatementText(const std::string& text,
                                              const std::string& source_name,
                                              const Ontology& ontology,
                                              const ImportOptions& options,
                                              std::vector<std::string>* warnings);

// Defaults for the options.
absl::StatusOr<Statement> ImportStatementText(const std::string& text,
                                              const std::string& source_name,
                                              const Ontology& ontology,
                                              std::vector<std::string>* warnings = nullptr);

// Emits `statement` in the format of policies/statements/*.yaml.
std::string StatementToYaml(const Statement& statement);

// Lower-case ASCII slug: runs of other characters become one '-'. Chinese
// text is transliterated to pinyin first ("友盟" -> "you-meng").
std::string Slug(const std::string& text);

// Splits a published shared-data list into items: on , ， 、 ; ； and line
// breaks outside (nested) (), （）, 【】; a leading "and "/"or "/和/及/以及 is
// dropped.
std::vector<std::string> SplitSharedData(const std::string& value);

// How one shared-data item maps: the ontology ids, and the clauses of it that
// map to none (verbatim). Clauses are the item's head and each element of its
// parenthetical lists; a head naming no type is a group label when its list
// maps. Text is compared normalised (width, case, spaces inside CJK terms).
struct ItemMapping {
  std::vector<std::string> data_types;
  std::vector<std::string> unmapped;
  std::vector<std::string> residue;     // per unmapped clause: the words no term covered
  std::vector<std::string> suggestion;  // per unmapped clause: closest term, "" if none
};
ItemMapping MapSharedData(const std::string& item, const Ontology& ontology);

// Ontology data type ids one shared-data item maps to.
std::vector<std::string> MapSharedDataItem(const std::string& item, const Ontology& ontology);

// Text as the importer compares it: FoldForMatch, NBSP as a space, full-width
// brackets as ASCII, no spaces next to CJK characters ("MAC 地址" ->
// "mac地址").
std::string NormalizeForMatch(absl::string_view text);

}  // namespace idflow::policy

#endif  // IDFLOW_COLLECTOR_POLICY_IMPORTER_H_

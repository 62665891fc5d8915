// Text folding shared by everything that matches names people type or that
// documents publish (SDK names, importer text). Rules: docs/POLICY.md §3.
#ifndef IDFLOW_COLLECTOR_POLICY_TEXT_NORMALIZE_H_
#define IDFLOW_COLLECTOR_POLICY_TEXT_NORMALIZE_H_

#include <string>
#include <string_view>

namespace idflow::policy {

// The form two names are compared in: UTF-8 in, UTF-8 out.
//  - full-width ASCII U+FF01..U+FF5E folds to ASCII 0x21..0x7E (the NFKC
//    width folding of Latin letters, digits and punctuation), U+3000
//    (ideographic space) to a space;
//  - ASCII letters are lowercased (other letters are kept as they are);
//  - runs of whitespace (ASCII space, tab, CR, LF, VT, FF and the folded
//    U+3000) become one space, and leading and trailing whitespace is dropped.
// Everything else, including malformed UTF-8, is copied byte for byte.
// "ｉｄｍ　ＳＤＫ " and "IDM  sdk" both fold to "idm sdk".
std::string FoldForMatch(std::string_view text);

// FoldForMatch(a) == FoldForMatch(b), without allocating (it runs per event).
bool SameFolded(std::string_view a, std::string_view b);

// `text` as one sentence: surrounding whitespace dropped, a leading ASCII
// lowercase letter capitalised, and exactly one terminal period (a name
// ending in a period, "Xiaomi Inc.", does not get a second one).
std::string AsSentence(std::string_view text);

}  // namespace idflow::policy

#endif  // IDFLOW_COLLECTOR_POLICY_TEXT_NORMALIZE_H_

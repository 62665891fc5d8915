// Every verdict category idflow produces, declared once. The policy engine's
// enum, the proto enum (idflow.v1.Category, pinned equal by
// tests/common/verdict_categories_test.cc), the store, /metrics, the reports
// and the dashboard all take names and findings from this list.
//
// A finding is what a category means for a QA run (docs/POLICY.md §1):
//   clear        the flow is what was declared;
//   violation    an identifier left the process beyond the declarations, or a
//                declared SDK collected beyond them: fails `idflowctl violations`;
//   observation  worth showing, never failing a run (unbound code reading an
//                identifier without sending it, an unattributable call, a
//                cookie from a site no cookie policy covers, an identifier
//                passed between processes of the same app).
#ifndef IDFLOW_COMMON_VERDICT_CATEGORIES_H_
#define IDFLOW_COMMON_VERDICT_CATEGORIES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace idflow {

enum class Finding : uint8_t { kClear = 1, kObservation = 2, kViolation = 3 };

// X(enumerator, name, finding, one-line meaning). The order is the wire
// order: idflow.v1.Category value = position + 1. Append only.
#define IDFLOW_VERDICT_CATEGORIES(X)                                                        \
  X(kClear, "clear", kClear, "declared exactly: SDK, data type, recipient and context fit") \
  X(kVague, "vague", kViolation, "declared only through a broader data type")               \
  X(kOmitted, "omitted", kViolation, "the SDK is declared, this data type is not")          \
  X(kUndeclaredParty, "undeclared_party", kViolation,                                       \
    "sent by a module that no statement declares")                                          \
  X(kWrongRecipient, "wrong_recipient", kViolation,                                         \
    "the destination belongs to another party than the declared one")                       \
  X(kOutOfScenario, "out_of_scenario", kViolation, "outside the declared usage scenario")   \
  X(kNoConsent, "no_consent", kViolation, "a consent the declaration requires is withheld") \
  X(kMethodMismatch, "method_mismatch", kViolation, "not the declared sharing method")      \
  X(kUndeclaredCookie, "undeclared_cookie", kViolation,                                     \
    "a cookie the site's cookie policy does not list")                                      \
  X(kLifetimeExceeded, "lifetime_exceeded", kViolation,                                     \
    "a cookie living longer than its declared duration")                                    \
  X(kThirdPartyCookie, "third_party_cookie", kViolation,                                    \
    "a third-party cookie where the policy declares first-party ones")                      \
  X(kLocalAcquisition, "local_acquisition", kObservation,                                   \
    "the app's own or unbound code read an identifier without sending it")                  \
  X(kUnattributable, "unattributable", kObservation,                                        \
    "no module could be held responsible (e.g. a call during fork)")                        \
  X(kNoCookiePolicy, "no_cookie_policy", kObservation,                                      \
    "a cookie from a site that no cookie policy covers")                                    \
  X(kSameAppIpc, "same_app_ipc", kObservation,                                              \
    "an identifier passed between processes of the same executable")

enum class Category : uint8_t {
#define IDFLOW_CATEGORY_ENUM_(e, name, finding, meaning) e,
  IDFLOW_VERDICT_CATEGORIES(IDFLOW_CATEGORY_ENUM_)
#undef IDFLOW_CATEGORY_ENUM_
};

inline constexpr size_t kCategoryCount = 0
#define IDFLOW_CATEGORY_COUNT_(e, name, finding, meaning) +1
    IDFLOW_VERDICT_CATEGORIES(IDFLOW_CATEGORY_COUNT_)
#undef IDFLOW_CATEGORY_COUNT_
    ;

// Names are C strings so that every string library (std, absl) takes them.
struct CategoryInfo {
  Category category;
  const char* name;
  Finding finding;
  const char* meaning;
};

inline constexpr CategoryInfo kCategories[] = {
#define IDFLOW_CATEGORY_INFO_(e, name, finding, meaning) \
  {Category::e, name, Finding::finding, meaning},
    IDFLOW_VERDICT_CATEGORIES(IDFLOW_CATEGORY_INFO_)
#undef IDFLOW_CATEGORY_INFO_
};
static_assert(sizeof(kCategories) / sizeof(kCategories[0]) == kCategoryCount);

constexpr const CategoryInfo& InfoOf(Category c) { return kCategories[static_cast<size_t>(c)]; }
constexpr const char* CategoryName(Category c) { return InfoOf(c).name; }
constexpr Finding FindingOf(Category c) { return InfoOf(c).finding; }
constexpr bool IsViolation(Category c) { return FindingOf(c) == Finding::kViolation; }

// "clear", "observation", "violation".
constexpr const char* FindingName(Finding f) {
  switch (f) {
    case Finding::kClear:
      return "clear";
    case Finding::kObservation:
      return "observation";
    case Finding::kViolation:
      return "violation";
  }
  return "violation";
}

// Category by name; nullopt for a name no list entry has.
constexpr std::optional<Category> CategoryFromName(std::string_view name) {
  for (const CategoryInfo& i : kCategories) {
    if (std::string_view(i.name) == name) return i.category;
  }
  return std::nullopt;
}

// Finding of a stored category name. An unknown name counts as a violation:
// a verdict the reader cannot classify must not pass a QA run silently.
constexpr Finding FindingOfName(std::string_view name) {
  auto c = CategoryFromName(name);
  return c ? FindingOf(*c) : Finding::kViolation;
}

}  // namespace idflow

#endif  // IDFLOW_COMMON_VERDICT_CATEGORIES_H_

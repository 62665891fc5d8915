// Per SDK, the data types its declarations name against the ones observed
// (`idflowctl summary`, the README's demo): what a reviewer compares first,
// before reading the violations one by one.
#ifndef IDFLOW_TOOLS_SDK_SUMMARY_H_
#define IDFLOW_TOOLS_SDK_SUMMARY_H_

#include <string>
#include <vector>

#include "collector/policy/policy.h"
#include "idflow/v1/query.pb.h"

namespace idflow::tools {

// How the declarations cover an observed data type, whatever the context.
enum class Coverage {
  kDeclared,    // an entry (or app feature) of the SDK names it
  kBroader,     // only an ancestor is named (`via`): vague at best
  kUndeclared,  // nothing the SDK declares covers it
};

struct ObservedType {
  std::string data_type;
  Coverage coverage = Coverage::kUndeclared;
  std::string via;                      // the broader declared type (kBroader)
  std::vector<std::string> categories;  // verdict categories seen for it, sorted
};

struct ObservedCookie {
  std::string name;
  std::vector<std::string> categories;  // sorted
};

struct SdkSummary {
  std::string sdk;                      // as the declarations spell it; "" when none names it
  std::vector<std::string> modules;     // responsible modules seen, sorted
  std::vector<std::string> declared;    // data types over all its entries, in file order
  std::vector<ObservedType> observed;   // sorted by data type
  std::vector<ObservedCookie> cookies;  // sorted by name
};

// One summary per SDK seen in `verdicts` (keyed by declared SDK name, else by
// module), declared SDKs first, each group sorted by name. Verdicts without
// a module (unattributable) are left out: they belong to no SDK.
std::vector<SdkSummary> SummarizeSdks(const policy::Policy& policy,
                                      const std::vector<idflow::v1::Verdict>& verdicts);

// Text: one block per SDK ("declared", "observed", "cookies" lines), then
// every violation with its explanation; "no verdicts" when there are none.
std::string FormatSdkSummary(const std::vector<SdkSummary>& sdks,
                             const std::vector<idflow::v1::Verdict>& verdicts);

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_SDK_SUMMARY_H_

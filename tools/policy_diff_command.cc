// `idflowctl policy diff OLD NEW`.
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "collector/policy/cookies.h"
#include "collector/policy/diff.h"
#include "collector/policy/importer.h"
#include "collector/policy/policy.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "common/json.h"
#include "common/verdict_categories.h"
#include "tools/commands.h"
#include "tools/policy_common.h"

namespace idflow::tools {

namespace fs = std::filesystem;

namespace {

// OLD/NEW: a policy dir (all its statements) or one statement YAML file,
// loaded against the ontology of --policies.
absl::StatusOr<std::vector<policy::Statement>> LoadStatements(const std::string& path,
                                                              const std::string& policies) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    auto p = policy::LoadPolicyDir(path);
    if (!p.ok()) return p.status();
    return p->statements;
  }
  auto text = ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":1:1: cannot read: ", text.status().message()));
  }
  auto onto = LoadOntologyOnly(policies);
  if (!onto.ok()) return onto.status();
  auto p = policy::LoadPolicyFromStrings(onto->file, {{path, *text}}, {});
  if (!p.ok()) return p.status();
  return p->statements;
}

}  // namespace

int PolicyDiff(int argc, char** argv) {
  FlagSet flags;
  flags.Add("policies", DefaultPoliciesDir(), "dir whose ontology.yaml loads statement files");
  if (auto st = flags.Parse(argc, argv, 3, /*allow_positional=*/true); !st.ok()) {
    return Usage(std::string(st.message()));
  }
  if (flags.Positional().size() != 2) return Usage("diff takes OLD and NEW");
  auto a = LoadStatements(flags.Positional()[0], flags.Get("policies"));
  if (!a.ok()) {
    Report(std::cerr, "text", "error", std::string(a.status().message()));
    return 2;
  }
  auto b = LoadStatements(flags.Positional()[1], flags.Get("policies"));
  if (!b.ok()) {
    Report(std::cerr, "text", "error", std::string(b.status().message()));
    return 2;
  }
  const policy::PolicyDiff d = policy::DiffStatements(*a, *b);
  std::cout << policy::FormatDiff(d);
  return d.empty() ? 0 : 1;
}

}  // namespace idflow::tools

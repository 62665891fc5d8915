// `idflowctl policy diff OLD NEW`.
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "collector/policy/diff.h"
#include "collector/policy/policy.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "tools/commands.h"
#include "tools/policy_common.h"

namespace idflow::tools {

namespace fs = std::filesystem;

namespace {

// OLD/NEW: a policy dir, or one statement YAML file loaded against the
// ontology of --policies (a policy holding that ontology and statement only).
struct Side {
  policy::Policy policy;
  bool statement_file = false;
};

absl::StatusOr<Side> LoadSide(const std::string& path, const std::string& policies) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    auto p = policy::LoadPolicyDir(path);
    if (!p.ok()) return p.status();
    return Side{*std::move(p), false};
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
  return Side{*std::move(p), true};
}

// Compared with a statement file, a dir counts for its ontology and
// statements only: the file holds no bindings, cookies or app policies.
void KeepOntologyAndStatements(policy::Policy* p) {
  p->bindings.clear();
  p->runtime.clear();
  p->first_party.clear();
  p->cookie_policies.clear();
  p->app_policies.clear();
  policy::IndexModules(p);
}

}  // namespace

int PolicyDiff(int argc, char** argv) {
  FlagSet flags;
  flags.Add("policies", DefaultPoliciesDir(), "dir whose ontology.yaml loads statement files");
  flags.Add("format", "text", "text or json");
  if (auto st = flags.Parse(argc, argv, 3, /*allow_positional=*/true); !st.ok()) {
    return Usage(std::string(st.message()));
  }
  const std::string format = flags.Get("format");
  if (format != "text" && format != "json") return Usage("--format must be text or json");
  if (flags.Positional().size() != 2) return Usage("diff takes OLD and NEW");
  Side sides[2];
  for (int i = 0; i < 2; ++i) {
    auto s = LoadSide(flags.Positional()[i], flags.Get("policies"));
    if (!s.ok()) {
      Report(std::cerr, format, "error", std::string(s.status().message()));
      return 2;
    }
    sides[i] = *std::move(s);
  }
  if (sides[0].statement_file != sides[1].statement_file) {
    KeepOntologyAndStatements(&sides[sides[0].statement_file ? 1 : 0].policy);
  }
  const policy::PolicyDiff d = policy::DiffPolicies(sides[0].policy, sides[1].policy);
  std::cout << (format == "json" ? policy::DiffToJson(d) : policy::FormatDiff(d));
  return d.empty() ? 0 : 1;
}

}  // namespace idflow::tools

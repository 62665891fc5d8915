// `idflowctl policy import|lint|diff|explain`: the declared policies from the
// command line. Exit codes (DESIGN §6): 0 ok, 1 findings (diff: different;
// lint --werror: warnings), 2 bad input or usage with the reason on stderr.
// This file: dispatch, import and lint; diff and explain have their own files.
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

// A file under a `seeds/` directory is cited as seeds/<name>, as the checked-in
// statements do, so a re-import reproduces them byte for byte.
std::string SourceName(const std::string& path) {
  fs::path p(path);
  if (p.parent_path().filename() == "seeds") return "seeds/" + p.filename().string();
  return path;
}

}  // namespace

int PolicyImport(int argc, char** argv) {
  FlagSet flags;
  flags.Add("kind", "statement", "statement or cookies");
  flags.Add("output", "", "write the YAML here (atomically) instead of stdout; also -o");
  flags.Add("format", "text", "text or json (errors and warnings on stderr)");
  flags.Add("policies", DefaultPoliciesDir(), "policy dir whose ontology.yaml maps the terms");
  flags.Add("layout", "auto",
            "statement layout: auto, labelled, markdown, html or text (auto: from the text)");
  flags.Add("id", "", "cookies: policy id (default: slug of the file name)");
  flags.Add("version", "",
            "version (statement: overrides the document's version line; cookies: default "
            "unversioned)");
  flags.Add("title", "", "title (default: the document's title or cookie heading)");
  flags.Add("site", "", "cookies: host the policy covers, host.tld or *.host.tld (repeatable)");
  flags.Add("owner", "", "cookies: whose cookies are first-party (default: first row's source)");
  std::vector<std::string> storage;
  std::vector<char*> args = Normalize(argc, argv, &storage);
  if (auto st = flags.Parse(argc, args.data(), 3, /*allow_positional=*/true); !st.ok()) {
    return Usage(std::string(st.message()));
  }
  const std::string format = flags.Get("format");
  const std::string kind = flags.Get("kind");
  if (format != "text" && format != "json") return Usage("--format must be text or json");
  if (kind != "statement" && kind != "cookies") return Usage("--kind must be statement or cookies");
  if (flags.Positional().size() != 1) return Usage("import takes exactly one FILE");
  const std::string file = flags.Positional()[0];
  auto fail = [&](const absl::Status& st) {
    Report(std::cerr, format, "error", std::string(st.message()));
    return 2;
  };
  // Bounded before reading: a mistaken multi-gigabyte input is refused, not loaded.
  std::error_code ec;
  if (fs::is_regular_file(file, ec) && fs::file_size(file, ec) > policy::kMaxImportBytes) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat(file, ":1:1: the document is ", fs::file_size(file, ec),
                     " bytes; the import limit is ", policy::kMaxImportBytes >> 20, " MiB")));
  }
  auto text = ReadFile(file);
  if (!text.ok()) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat(file, ":1:1: cannot read: ", text.status().message())));
  }
  const std::string source = SourceName(file);
  if (absl::Status valid = policy::ValidateImportText(*text, source); !valid.ok()) {
    return fail(valid);
  }
  std::vector<std::string> warnings;
  std::string yaml;
  if (kind == "statement") {
    auto ontology = LoadOntologyOnly(flags.Get("policies"));
    if (!ontology.ok()) return fail(ontology.status());
    policy::ImportOptions options;
    auto layout = policy::ParseLayout(flags.Get("layout"));
    if (!layout.ok()) return Usage(std::string(layout.status().message()));
    options.layout = *layout;
    options.version = flags.Get("version");
    options.title = flags.Get("title");
    // Ids the policy dir already uses: another document must not take one.
    if (auto existing = policy::LoadPolicyDir(flags.Get("policies")); existing.ok()) {
      for (const policy::Statement& s : existing->statements) options.taken_ids[s.id] = s.source;
    } else {
      warnings.push_back(
          absl::StrCat(flags.Get("policies"),
                       ": statement ids not checked for clashes: ", existing.status().message()));
    }
    auto st = policy::ImportStatementText(*text, source, ontology->ontology, options, &warnings);
    if (!st.ok()) return fail(st.status());
    yaml = policy::StatementToYaml(*st);
    // Never hand out a policy the loader would refuse.
    auto reload =
        policy::LoadPolicyFromStrings(ontology->file, {{source + " (imported)", yaml}}, {});
    if (!reload.ok()) return fail(reload.status());
  } else {
    policy::CookieImportOptions opts;
    opts.id = flags.Get("id");
    opts.version = flags.Get("version");
    opts.title = flags.Get("title");
    opts.owner = flags.Get("owner");
    for (const std::string& site : flags.GetAll("site")) opts.sites.push_back(site);
    auto cp = policy::ImportCookieText(*text, source, opts, &warnings);
    if (!cp.ok()) return fail(cp.status());
    yaml = policy::CookiePolicyToYaml(*cp);
    // Never hand out a policy the loader would refuse.
    auto reload = policy::ParseCookiePolicyYaml(yaml, source + " (imported)");
    if (!reload.ok()) return fail(reload.status());
  }
  for (const std::string& w : warnings) Report(std::cerr, format, "warning", w);
  const std::string out = flags.Get("output");
  if (out.empty() || out == "-") {
    std::cout << yaml;
    return 0;
  }
  if (auto st = WriteFileAtomic(out, yaml); !st.ok()) {
    return fail(
        absl::InvalidArgumentError(absl::StrCat(out, ":1:1: cannot write: ", st.message())));
  }
  return 0;
}

int PolicyLint(int argc, char** argv) {
  FlagSet flags;
  flags.Add("format", "text", "text or json (one object per finding and line)");
  flags.AddBool("werror", "exit 1 when there are warnings");
  if (auto st = flags.Parse(argc, argv, 3, /*allow_positional=*/true); !st.ok()) {
    return Usage(std::string(st.message()));
  }
  const std::string format = flags.Get("format");
  if (format != "text" && format != "json") return Usage("--format must be text or json");
  if (flags.Positional().size() != 1) return Usage("lint takes exactly one DIR");
  auto p = policy::LoadPolicyDir(flags.Positional()[0]);
  if (!p.ok()) {
    Report(std::cerr, format, "error", std::string(p.status().message()));
    return 2;
  }
  const std::vector<std::string> findings = policy::LintPolicy(*p);
  for (const std::string& f : findings) Report(std::cout, format, "warning", f);
  if (format == "text") {
    size_t entries = 0;
    for (const auto& s : p->statements) entries += s.entries.size();
    std::cerr << "policy " << flags.Positional()[0] << ": " << p->statements.size()
              << " statement(s), " << entries << " entries, " << p->cookie_policies.size()
              << " cookie policy(ies), " << p->app_policies.size() << " app policy(ies), "
              << findings.size() << " warning(s), 0 errors\n";
  }
  return findings.empty() || !flags.GetBool("werror") ? 0 : 1;
}

int PolicyCommand(int argc, char** argv) {
  if (argc < 3) return Usage("missing subcommand");
  const std::string sub = argv[2];
  if (sub == "import") return PolicyImport(argc, argv);
  if (sub == "lint") return PolicyLint(argc, argv);
  if (sub == "diff") return PolicyDiff(argc, argv);
  if (sub == "explain") return PolicyExplain(argc, argv);
  if (sub == "help" || sub == "--help" || sub == "-h") {
    std::cout << kPolicyUsage;
    return 0;
  }
  return Usage(absl::StrCat("unknown subcommand '", sub, "'"));
}

}  // namespace idflow::tools

// `idflowctl policy import|lint|diff|explain`: the declared policies from the
// command line. Exit codes (DESIGN §6): 0 ok, 1 findings (diff: different;
// lint --werror: warnings), 2 bad input or usage with the reason on stderr.
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

namespace idflow::tools {
namespace {

namespace fs = std::filesystem;
using policy::Policy;

constexpr char kUsage[] =
    "usage: idflowctl policy import FILE [--kind statement|cookies] [-o OUT.yaml]\n"
    "                               [--format text|json] [--policies DIR]\n"
    "                               [--id ID] [--version V] [--title T] [--site HOST]...\n"
    "                               [--owner NAME]   (cookies)\n"
    "       idflowctl policy lint DIR [--format text|json] [--werror]\n"
    "       idflowctl policy diff OLD NEW [--policies DIR]\n"
    "       idflowctl policy explain --sdk NAME|--module PATH... --data TYPE [--policies DIR]\n"
    "                               [--exe PATH] [--peer-exe PATH] [--scenario S]...\n"
    "                               [--consent KEY=true|false]... [--host H] [--ip IP]\n"
    "                               [--action transmit|acquire] [--channel C]\n"
    "                               [--format text|json]\n"
    "exit: 0 ok, 1 findings (diff: the policies differ; lint --werror: warnings), 2 bad input\n";

// "FILE:LINE:COLUMN: message", "FILE:LINE: message" or a bare message, split
// so that --format json can carry the position as fields.
struct Located {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
};

Located Locate(const std::string& text) {
  // The first ":N:" (optionally ":N:M:") followed by a space ends the file name.
  for (size_t i = text.find(':'); i != std::string::npos; i = text.find(':', i + 1)) {
    size_t j = i + 1;
    size_t k = j;
    while (k < text.size() && absl::ascii_isdigit(text[k])) ++k;
    if (k == j || k >= text.size() || text[k] != ':') continue;
    Located l;
    l.file = text.substr(0, i);
    (void)absl::SimpleAtoi(text.substr(j, k - j), &l.line);
    size_t m = k + 1;
    size_t n = m;
    while (n < text.size() && absl::ascii_isdigit(text[n])) ++n;
    if (n > m && n < text.size() && text[n] == ':') {
      (void)absl::SimpleAtoi(text.substr(m, n - m), &l.column);
      m = n + 1;
    }
    l.message = std::string(absl::StripLeadingAsciiWhitespace(text.substr(m)));
    return l;
  }
  return {"", 0, 0, text};
}

std::string JsonFinding(const std::string& severity, const std::string& text) {
  const Located l = Locate(text);
  return absl::StrCat("{\"severity\":\"", severity, "\",\"file\":\"", JsonEscape(l.file),
                      "\",\"line\":", l.line, ",\"column\":", l.column, ",\"message\":\"",
                      JsonEscape(l.message), "\"}");
}

// Prints one finding: text as "FILE:LINE:COL: severity: msg", json as one object per line.
void Report(std::ostream& os, const std::string& format, const std::string& severity,
            const std::string& text) {
  if (format == "json") {
    os << JsonFinding(severity, text) << "\n";
    return;
  }
  const Located l = Locate(text);
  if (l.file.empty() && l.line == 0) {
    os << severity << ": " << text << "\n";
  } else {
    os << l.file << ":" << l.line << ":";
    if (l.column > 0) os << l.column << ":";
    os << " " << severity << ": " << l.message << "\n";
  }
}

int Usage(const std::string& why) {
  std::cerr << "idflowctl policy: " << why << "\n" << kUsage;
  return 2;
}

// Strips the "-o" short form down to what FlagSet knows ("--output").
std::vector<char*> Normalize(int argc, char** argv, std::vector<std::string>* storage) {
  storage->reserve(argc);
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-o") a = "--output";
    if (a.rfind("-o", 0) == 0 && a.size() > 2 && a[2] != '-') a = "--output=" + a.substr(2);
    storage->push_back(std::move(a));
  }
  std::vector<char*> out;
  for (std::string& s : *storage) out.push_back(s.data());
  return out;
}

// <dir of idflowctl>/../../policies (build/bin -> repo), else ./policies.
std::string DefaultPoliciesDir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) {
    fs::path exe(std::string(buf, static_cast<size_t>(n)));
    fs::path p = exe.parent_path() / ".." / ".." / "policies";
    std::error_code ec;
    if (fs::is_directory(p, ec)) return p.lexically_normal().string();
  }
  return "policies";
}

// The ontology alone is enough to import or to load a single statement.
struct LoadedOntology {
  policy::PolicyFile file;
  policy::Ontology ontology;
};

absl::StatusOr<LoadedOntology> LoadOntologyOnly(const std::string& dir) {
  const std::string path = (fs::path(dir) / "ontology.yaml").string();
  auto text = ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":1:1: cannot read ontology: ", text.status().message()));
  }
  LoadedOntology out{{path, *std::move(text)}, {}};
  auto p = policy::LoadPolicyFromStrings(out.file, {}, {});
  if (!p.ok()) return p.status();
  out.ontology = std::move(p->ontology);
  return out;
}

// A file under a `seeds/` directory is cited as seeds/<name>, as the checked-in
// statements do, so a re-import reproduces them byte for byte.
std::string SourceName(const std::string& path) {
  fs::path p(path);
  if (p.parent_path().filename() == "seeds") return "seeds/" + p.filename().string();
  return path;
}

int Import(int argc, char** argv) {
  FlagSet flags;
  flags.Add("kind", "statement", "statement or cookies");
  flags.Add("output", "", "write the YAML here (atomically) instead of stdout; also -o");
  flags.Add("format", "text", "text or json (errors and warnings on stderr)");
  flags.Add("policies", DefaultPoliciesDir(), "policy dir whose ontology.yaml maps the terms");
  flags.Add("id", "", "cookies: policy id (default: slug of the file name)");
  flags.Add("version", "", "cookies: policy version (default: unversioned)");
  flags.Add("title", "", "cookies: title (default: the document's cookie heading)");
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
  auto text = ReadFile(file);
  if (!text.ok()) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat(file, ":1:1: cannot read: ", text.status().message())));
  }
  const std::string source = SourceName(file);
  std::vector<std::string> warnings;
  std::string yaml;
  if (kind == "statement") {
    auto ontology = LoadOntologyOnly(flags.Get("policies"));
    if (!ontology.ok()) return fail(ontology.status());
    auto st = policy::ImportStatementText(*text, source, ontology->ontology, &warnings);
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

int Lint(int argc, char** argv) {
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

int Diff(int argc, char** argv) {
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

int Explain(int argc, char** argv) {
  FlagSet flags;
  flags.Add("sdk", "", "SDK held responsible, as named in the statements (or give --module)");
  flags.Add("module", "",
            "module on the call chain, innermost first (repeatable); the bindings decide who is "
            "responsible");
  flags.Add("exe", "", "executable of the process (process bindings, same-app IPC)");
  flags.Add("peer-exe", "", "executable of the unix socket or pipe peer");
  flags.Add("data", "", "ontology data type id, e.g. mac_address");
  flags.Add("policies", DefaultPoliciesDir(), "policy dir");
  flags.Add("scenario", "", "active usage scenario (repeatable)");
  flags.Add("consent", "", "consent state KEY=true|false (repeatable)");
  flags.Add("host", "", "destination hostname");
  flags.Add("ip", "", "destination IP address");
  flags.Add("action", "transmit", "transmit or acquire");
  flags.Add("channel", "tcp", "tcp, udp, tls-openssl, unix, pipe, file, ...");
  flags.Add("format", "text", "text or json");
  if (auto st = flags.Parse(argc, argv, 3, /*allow_positional=*/false); !st.ok()) {
    return Usage(std::string(st.message()));
  }
  const std::string format = flags.Get("format");
  if (format != "text" && format != "json") return Usage("--format must be text or json");
  if (!flags.IsSet("data")) return Usage("explain needs --data TYPE");
  if (!flags.IsSet("sdk") && !flags.IsSet("module") && !flags.IsSet("exe")) {
    return Usage("explain needs --sdk NAME or --module PATH");
  }
  const std::string action = flags.Get("action");
  if (action != "transmit" && action != "acquire") {
    return Usage("--action must be transmit or acquire");
  }
  policy::Flow f;
  f.data_type = flags.Get("data");
  f.action = action;
  f.channel = flags.Get("channel");
  f.dest_host = flags.Get("host");
  f.dest_ip = flags.Get("ip");
  f.exe = flags.Get("exe");
  f.peer_exe = flags.Get("peer-exe");
  if (flags.IsSet("module")) {
    for (const std::string& m : flags.GetAll("module")) f.call_chain.push_back(m);
  }
  for (const std::string& s : flags.GetAll("scenario")) f.scenarios.push_back(s);
  for (const std::string& c : flags.GetAll("consent")) {
    std::vector<std::string> kv = absl::StrSplit(c, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty() || (kv[1] != "true" && kv[1] != "false")) {
      return Usage(absl::StrCat("--consent takes KEY=true|false, got '", c, "'"));
    }
    f.consents[kv[0]] = kv[1] == "true";
  }
  auto p = policy::LoadPolicyDir(flags.Get("policies"));
  if (!p.ok()) {
    Report(std::cerr, format, "error", std::string(p.status().message()));
    return 2;
  }
  // --sdk answers "what if this SDK did it"; --module lets the bindings decide.
  policy::Verdict v;
  if (flags.IsSet("sdk")) {
    policy::Responsible r;
    r.role = policy::Responsible::Role::kSdk;
    r.module = f.call_chain.empty() ? "" : f.call_chain.front();
    r.sdk = flags.Get("sdk");
    v = policy::JudgeResolved(*p, r, f);
  } else {
    v = policy::Judge(*p, f);
  }
  const policy::Entry* entry = nullptr;
  for (const auto& s : p->statements) {
    if (s.id != v.statement || s.version != v.version) continue;
    for (const auto& e : s.entries) {
      if (e.id == v.entry) entry = &e;
    }
  }
  const std::string_view finding = FindingName(v.finding);
  if (format == "json") {
    std::cout << "{\"sdk\":\"" << JsonEscape(v.sdk) << "\",\"module\":\"" << JsonEscape(v.module)
              << "\",\"data_type\":\"" << JsonEscape(f.data_type) << "\",\"verdict\":\""
              << policy::CategoryName(v.category) << "\",\"finding\":\"" << finding
              << "\",\"statement\":\"" << JsonEscape(v.statement) << "\",\"version\":\""
              << JsonEscape(v.version) << "\",\"entry\":\"" << JsonEscape(v.entry)
              << "\",\"entry_title\":\"" << JsonEscape(entry ? entry->title : "")
              << "\",\"explanation\":\"" << JsonEscape(v.explanation) << "\"}\n";
    return 0;
  }
  std::cout << "verdict:     " << policy::CategoryName(v.category) << "\n"
            << "finding:     " << finding << "\n"
            << "responsible: " << (v.sdk.empty() ? "(no SDK)" : v.sdk) << ", module "
            << (v.module.empty() ? "(none)" : v.module) << "\n"
            << "statement:   " << (v.statement.empty() ? "(none)" : v.statement + " " + v.version)
            << "\n"
            << "entry:       " << (v.entry.empty() ? "(none)" : v.entry);
  if (entry != nullptr) {
    std::cout << " (\"" << entry->title << "\", " << entry->third_party << "; declares "
              << absl::StrJoin(entry->data_types, ", ") << ")";
  }
  std::cout << "\n"
            << "explanation: " << v.explanation << "\n";
  return 0;
}

}  // namespace

int PolicyCommand(int argc, char** argv) {
  if (argc < 3) return Usage("missing subcommand");
  const std::string sub = argv[2];
  if (sub == "import") return Import(argc, argv);
  if (sub == "lint") return Lint(argc, argv);
  if (sub == "diff") return Diff(argc, argv);
  if (sub == "explain") return Explain(argc, argv);
  if (sub == "help" || sub == "--help" || sub == "-h") {
    std::cout << kUsage;
    return 0;
  }
  return Usage(absl::StrCat("unknown subcommand '", sub, "'"));
}

}  // namespace idflow::tools

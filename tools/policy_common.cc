// Helpers shared by the `idflowctl policy` subcommands.
#include "tools/policy_common.h"

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

namespace fs = std::filesystem;

const char kPolicyUsage[] =
    "usage: idflowctl policy import FILE [--kind statement|cookies] [-o OUT.yaml]\n"
    "                               [--format text|json] [--policies DIR]\n"
    "                               [--id ID] [--version V] [--title T] [--site HOST]...\n"
    "                               [--owner NAME]   (cookies)\n"
    "       idflowctl policy lint DIR [--format text|json] [--werror]\n"
    "       idflowctl policy diff OLD NEW [--policies DIR] [--format text|json]\n"
    "       idflowctl policy explain --sdk NAME|--module PATH... --data TYPE [--policies DIR]\n"
    "                               [--exe PATH] [--peer-exe PATH] [--scenario S]...\n"
    "                               [--consent KEY=true|false]... [--host H] [--ip IP]\n"
    "                               [--action transmit|acquire] [--channel C]\n"
    "                               [--format text|json]\n"
    "exit: 0 ok, 1 findings (diff: the policies differ; lint --werror: warnings), 2 bad input\n";

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
  std::cerr << "idflowctl policy: " << why << "\n" << kPolicyUsage;
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

}  // namespace idflow::tools

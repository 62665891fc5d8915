// `idflowctl policy explain`: the verdict one flow would get, and why.
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
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
#include "absl/strings/string_view.h"
#include "collector/policy/cookies.h"
#include "collector/policy/diff.h"
#include "collector/policy/importer.h"
#include "collector/policy/policy.h"
#include "collector/policy/text_normalize.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "common/json.h"
#include "common/verdict_categories.h"
#include "tools/commands.h"
#include "tools/policy_common.h"

namespace idflow::tools {

namespace fs = std::filesystem;

namespace {

// "unknown --scenario 'x' (known scenarios are a, b)".
absl::Status Unknown(absl::string_view flag, absl::string_view value, absl::string_view what,
                     const std::vector<std::string>& known) {
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ", flag, " '", value, "' (known ", what, " are ",
                   known.empty() ? std::string("none") : absl::StrJoin(known, ", "), ")"));
}

// Every SDK name the statements and app policies declare, once each (as first
// spelled), in load order.
std::vector<std::string> KnownSdks(const policy::Policy& p) {
  std::vector<std::string> out;
  auto add = [&](const std::string& name) {
    for (const std::string& o : out) {
      if (policy::SameFolded(o, name)) return;
    }
    out.push_back(name);
  };
  for (const policy::Statement& s : p.statements) {
    for (const policy::Entry& e : s.entries) add(e.sdk);
  }
  for (const policy::AppPolicy& a : p.app_policies) {
    for (const std::string& sdk : a.sdks) add(sdk);
  }
  return out;
}

// Scenario ids, consent keys and the data type must be the ontology's, and
// --sdk a declared SDK (compared after FoldForMatch): a typo would otherwise
// be judged as an unknown context and answer a question nobody asked.
absl::Status CheckInputs(const policy::Policy& p, const policy::Flow& f,
                         const std::optional<std::string>& sdk) {
  const policy::Ontology& o = p.ontology;
  if (o.FindDataType(f.data_type) == nullptr) {
    std::vector<std::string> known;
    for (const policy::DataType& d : o.data_types) known.push_back(d.id);
    return Unknown("--data", f.data_type, "data types", known);
  }
  for (const std::string& sc : f.scenarios) {
    if (!o.HasScenario(sc)) return Unknown("--scenario", sc, "scenarios", o.scenarios);
  }
  for (const auto& [key, value] : f.consents) {
    if (!o.HasConsent(key)) {
      std::vector<std::string> known;
      for (const policy::Consent& c : o.consents) known.push_back(c.id);
      return Unknown("--consent", key, "consent keys", known);
    }
  }
  if (sdk.has_value()) {
    const std::vector<std::string> known = KnownSdks(p);
    bool found = false;
    for (const std::string& k : known) found = found || policy::SameFolded(k, *sdk);
    if (!found) return Unknown("--sdk", *sdk, "SDKs", known);
  }
  return absl::OkStatus();
}

}  // namespace

int PolicyExplain(int argc, char** argv) {
  FlagSet flags;
  flags.Add("sdk", "",
            "SDK held responsible, as named in the statements, case and width aside (or give "
            "--module)");
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
  const std::optional<std::string> sdk =
      flags.IsSet("sdk") ? std::optional<std::string>(flags.Get("sdk")) : std::nullopt;
  if (auto st = CheckInputs(*p, f, sdk); !st.ok()) {
    Report(std::cerr, format, "error", std::string(st.message()));
    return 2;
  }
  // --sdk answers "what if this SDK did it"; --module lets the bindings decide.
  policy::Verdict v;
  if (flags.IsSet("sdk")) {
    policy::Responsible r;
    r.role = policy::Responsible::Role::kSdk;
    r.module = f.call_chain.empty() ? "" : f.call_chain.front();
    r.sdk = *sdk;
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

}  // namespace idflow::tools

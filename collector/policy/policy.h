// Declared policies as plain C++ types, and the pure verdict function.
// No gRPC or protobuf here: the collector converts at its transport edge.
#ifndef IDFLOW_COLLECTOR_POLICY_POLICY_H_
#define IDFLOW_COLLECTOR_POLICY_POLICY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/verdict_categories.h"

namespace idflow::policy {

// ---- ontology ---------------------------------------------------------------

struct DataType {
  std::string id;                    // e.g. "oaid"
  std::vector<std::string> parents;  // direct broader terms, e.g. {"device_id"}
  std::vector<std::string> terms;    // English and Chinese wordings the documents use
};

struct Entity {
  std::string id;                    // e.g. "xiaomi"
  std::string name;                  // legal name
  std::vector<std::string> aliases;  // other legal names / short names
  std::vector<std::string> domains;  // "*.mi.com", "xiaomi.com"
};

// A usage scenario, with the wordings that name it (added beside the plain
// `Ontology::scenarios` id list, which stays the authoritative id set).
struct Scenario {
  std::string id;                  // e.g. "casting"
  std::vector<std::string> terms;  // e.g. {"during casting", "投屏时"}
};

// How a statement says data reaches the third party.
struct SharingMethod {
  std::string id;                    // e.g. "sdk_local_acquisition"
  std::vector<std::string> terms;    // e.g. {"SDK local acquisition"}
  std::vector<std::string> actions;  // event actions it covers: "acquire", "transmit"
  // Channel classes a transmit may take: "network" (tcp, udp, tls-*) and
  // "local" (unix, pipe: another process on the device). Empty = any.
  std::vector<std::string> channels;
};

// A consent key the app or harness reports, e.g. "user_experience_program".
struct Consent {
  std::string id;
  std::vector<std::string> terms;
};

struct Ontology {
  std::vector<DataType> data_types;
  std::vector<Entity> entities;
  std::vector<std::string> scenarios;  // known usage-scenario ids
  // Added beside the lead's fields; filled by the loader from ontology.yaml.
  std::vector<Scenario> scenario_defs;  // same ids as `scenarios`, with terms
  std::vector<SharingMethod> sharing_methods;
  std::vector<Consent> consents;

  const DataType* FindDataType(const std::string& id) const;
  // True when `ancestor` is `id` itself or a (transitive) broader term of it.
  bool Subsumes(const std::string& ancestor, const std::string& id) const;
  // Entity whose legal name or alias equals `name_or_alias` (case-insensitive).
  const Entity* FindEntityByName(const std::string& name_or_alias) const;
  // Entity owning `hostname` through its domain patterns; nullptr when none.
  const Entity* FindEntityByHost(const std::string& hostname) const;
  const Entity* FindEntity(const std::string& id) const;
  const SharingMethod* FindSharingMethod(const std::string& id) const;
  bool HasScenario(const std::string& id) const;
  bool HasConsent(const std::string& id) const;
};

// ---- statements -------------------------------------------------------------

struct Entry {
  std::string id;            // stable slug, e.g. "idm-sdk-discovery"
  std::string title;         // section heading, e.g. "Discovering and connecting to devices"
  std::string third_party;   // legal name as published
  std::string entity;        // ontology entity id of the third party
  std::string sharing_type;  // e.g. "Embed SDK"
  std::string sdk;           // e.g. "IDM SDK"
  std::vector<std::string> shared_data;  // as published, one item per element
  std::vector<std::string> data_types;   // ontology ids the items map to
  // Clauses of shared_data that map to no data type, verbatim: kept so that
  // nothing published is lost, reported by import and lint, never judged.
  std::vector<std::string> unmapped;
  std::string purpose;
  std::string usage_scenario;                 // as published
  std::vector<std::string> scenarios;         // ontology scenario ids
  std::vector<std::string> sharing_methods;   // e.g. {"sdk_local_acquisition"}
  std::vector<std::string> requires_consent;  // consent keys that must be true
  std::string rules_link;
  int line = 0;  // line of the entry in its YAML file
};

struct Statement {
  std::string id;       // e.g. "interconnectivity-data-sharing"
  std::string version;  // e.g. "v20250508"
  std::string title;
  std::string source;  // where the text was published / imported from
  // Third parties the ontology did not know when this was imported: merged
  // into the policy's ontology at load (no domains: recipient checks cannot
  // name their hosts until ontology.yaml lists them).
  std::vector<Entity> entities;
  std::vector<Entry> entries;
  std::string file;  // YAML file it was loaded from
};

// Which module, process or package is which SDK on a device image.
struct Binding {
  std::string sdk;
  std::vector<std::string> modules;    // glob patterns over the module path
  std::vector<std::string> processes;  // glob patterns over the executable path
  std::string file;
  int line = 0;
};

// A module pattern of the `runtime:` and `first_party:` lists of
// bindings/*.yaml: `soname: libc.so.6` (exact file name), `glob: "libQt5*.so*"`
// (fnmatch over the file name) or `path: "/usr/lib/*/libfoo.so"` (fnmatch over
// the whole path).
struct ModulePattern {
  enum class Kind { kSoname, kGlob, kPath };
  Kind kind = Kind::kSoname;
  std::string pattern;
  std::string file;
  int line = 0;
};

// ---- cookie policies (docs/POLICY.md §5) ------------------------------------

// One row of a published cookie table, with the cells the table left empty
// already carried down from the row above.
struct CookieRow {
  std::string name;      // cookie name, case-sensitive
  std::string category;  // "essential", "analytics", "functional", "advertising", "unspecified"
  std::string purpose;   // as published
  std::string duration;  // as published, e.g. "1 Month"
  bool session = false;  // expires when the browser closes
  // Normalised lifetime: 0 for session cookies, -1 when the text names none
  // (e.g. "Deleted when oauth state is validated").
  int64_t max_age_seconds = -1;
  std::string source;  // as published, e.g. "Xiaomi"; "" when the table has no such column
  bool first_party = true;
  int source_line = 0;  // line of the row in the published document
  int line = 0;         // line of the row in its YAML file
};

struct CookiePolicy {
  std::string id;
  std::string version;
  std::string title;
  std::string source;              // published document it was imported from
  std::vector<std::string> sites;  // hosts it covers: "host.tld" or "*.host.tld"
  bool first_party_only = false;   // the policy says the site uses first-party cookies only
  std::vector<CookieRow> cookies;
  std::string file;
};

// ---- app (mini-program) policies (docs/POLICY.md §6) --------------------------

// A feature of an app and the data it collects, e.g. "device sharing".
struct AppFeature {
  std::string id;
  std::string title;                    // as published
  std::string section;                  // where the document says it, e.g. "一（一）（3）"
  bool optional = false;                // an additional feature the user may decline
  std::vector<std::string> collected;   // data items as published
  std::vector<std::string> data_types;  // ontology ids
  std::string purpose;
  std::vector<std::string> requires_consent;  // consent keys that must be true
  int line = 0;
};

// A consent-gated purpose: while `consent` is false, the listed data types may
// not flow for this app (e.g. analytics only when enrolled in the User
// Experience Program).
struct ConsentPurpose {
  std::string id;
  std::string consent;  // ontology consent key
  std::string title;    // as published
  std::string section;
  std::string purpose;
  std::vector<std::string> data_types;  // data the purpose covers; empty = all of the app's flows
  int line = 0;
};

struct AppPolicy {
  std::string id;
  std::string version;
  std::string title;
  std::string source;
  std::string entity;             // ontology entity that runs the app
  std::vector<std::string> sdks;  // SDK names (Flow::sdk) this policy governs
  std::vector<AppFeature> features;
  std::vector<ConsentPurpose> consent_purposes;
  std::string file;
};

// Compiled form of the module patterns (runtime, first_party, binding
// globs): exact sonames in a hash set, globs bucketed by their literal
// prefix. Built by IndexModules; defined in responsible.cc.
class ModuleIndex;

struct Policy {
  Ontology ontology;
  std::vector<Statement> statements;
  std::vector<Binding> bindings;
  // Runtime libraries treated as transparent when deciding who is
  // responsible (libc, libstdc++, TLS, compression, event loops, language
  // runtimes...): never held responsible.
  std::vector<ModulePattern> runtime;
  // The app's own code (executables and libraries of the app maker).
  std::vector<ModulePattern> first_party;
  std::vector<CookiePolicy> cookie_policies;  // cookies/*.yaml
  std::vector<AppPolicy> app_policies;        // apps/*.yaml

  // Set by the loader (IndexModules). A Policy built or edited by hand has
  // none, or a stale one: call IndexModules again. Without one, lookups
  // compile the lists on every call (same answers, much slower).
  std::shared_ptr<const ModuleIndex> module_index;

  // SDK that a module (or, failing that, the process) maps to; "" when none.
  std::string SdkForModule(const std::string& module_path, const std::string& exe) const;
  // Whether the module's path or file name matches a `runtime:` /
  // `first_party:` pattern of the bindings.
  bool IsRuntime(const std::string& module_path) const;
  bool IsFirstParty(const std::string& module_path) const;
};

// (Re)compiles policy->runtime, first_party and the bindings' globs into
// policy->module_index. LoadPolicyDir / LoadPolicyFromStrings call it.
void IndexModules(Policy* policy);

// Who is responsible for a hooked call (docs/POLICY.md §2): the innermost
// module of the call chain that maps to a declared SDK (bindings' `modules`);
// else the innermost one that is not a runtime library: first-party when a
// `first_party` pattern names it, else the process's SDK when `processes`
// binds the executable, else unbound. Never a runtime library. With no such
// module, the process's SDK binding (module = exe), else nobody (kNone).
// Allocates nothing but the result.
struct Responsible {
  enum class Role {
    kSdk,         // `module` maps to `sdk`
    kFirstParty,  // the app's own code (first_party patterns)
    kUnbound,     // a module no binding names
    kNone,        // empty chain or only runtime libraries: unattributable
  };
  Role role = Role::kNone;
  std::string module;  // "" for kNone
  std::string sdk;     // for kSdk
};
Responsible ResolveResponsible(const Policy& policy, const std::vector<std::string>& call_chain,
                               const std::string& exe);

// Loads ontology.yaml, statements/*.yaml, bindings/*.yaml, cookies/*.yaml and
// apps/*.yaml below `dir`.
// Errors name file:line:column.
absl::StatusOr<Policy> LoadPolicyDir(const std::string& dir);

// A policy file given as (name, YAML text); `name` is what errors cite.
struct PolicyFile {
  std::string name;
  std::string text;
};

// Same stages as LoadPolicyDir over in-memory files, in the order given
// (LoadPolicyDir sorts by file name). For tests and tools.
absl::StatusOr<Policy> LoadPolicyFromStrings(const PolicyFile& ontology,
                                             const std::vector<PolicyFile>& statements,
                                             const std::vector<PolicyFile>& bindings);

// All policy files at once; cookies and apps are loaded after the bindings.
struct PolicyFiles {
  PolicyFile ontology;
  std::vector<PolicyFile> statements;
  std::vector<PolicyFile> bindings;
  std::vector<PolicyFile> cookies;
  std::vector<PolicyFile> apps;
};
absl::StatusOr<Policy> LoadPolicyFromStrings(const PolicyFiles& files);

// One `kind: cookies` file on its own (it references nothing else).
absl::StatusOr<CookiePolicy> ParseCookiePolicyYaml(const std::string& text,
                                                   const std::string& name);

// Non-fatal findings on a loaded policy ("FILE:LINE: message"), e.g. entries
// that declare no data type, or data types and scenarios nothing uses.
std::vector<std::string> LintPolicy(const Policy& policy);

// ---- verdicts ---------------------------------------------------------------

// The one list of categories: common/verdict_categories.h.
using ::idflow::Category;
using ::idflow::Finding;
using ::idflow::FindingOf;
using ::idflow::IsViolation;
// "clear", "vague", "omitted", "undeclared_party", ... (a string_view over a
// NUL-terminated literal). A using-declaration, not a wrapper: a second
// overload would make every unqualified call ambiguous through ADL.
using ::idflow::CategoryName;

// What was observed, in policy terms.
struct Flow {
  std::vector<std::string> call_chain;   // module paths, innermost first
  std::string exe;                       // executable of the process
  std::string peer_exe;                  // unix socket peer's executable, "" when unknown
  std::string data_type;                 // ontology id, e.g. "mac_address"
  std::string action;                    // "transmit" or "acquire"
  std::string channel;                   // "tcp", "udp", "unix", "tls-openssl", ...
  std::string dest_host;                 // hostname (resolver, SNI or Host header); "" when unknown
  std::string dest_ip;                   // "" when not a network destination
  std::vector<std::string> scenarios;    // active usage scenarios; empty = unknown
  std::map<std::string, bool> consents;  // consent states set by app or harness
};

struct Verdict {
  Category category = Category::kUndeclaredParty;
  Finding finding = Finding::kViolation;  // FindingOf(category)
  std::string module;                     // responsible module (ResolveResponsible), "" when none
  std::string sdk;                        // SDK it maps to, "" when none
  std::string statement;                  // statement id, "" when none applies
  std::string version;
  std::string entry;        // entry id, "" when none applies
  std::string explanation;  // one sentence
};

// Resolves who is responsible (ResolveResponsible over flow.call_chain and
// flow.exe), then JudgeResolved.
Verdict Judge(const Policy& policy, const Flow& flow);

// Judges `flow` as done by `responsible` (flow.call_chain is not looked at),
// e.g. `idflowctl policy explain --sdk NAME`: Responsible{kSdk, module, NAME}.
Verdict JudgeResolved(const Policy& policy, const Responsible& responsible, const Flow& flow);

}  // namespace idflow::policy

#endif  // IDFLOW_COLLECTOR_POLICY_POLICY_H_

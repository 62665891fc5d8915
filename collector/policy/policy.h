// Declared policies as plain C++ types, and the pure verdict function.
// No gRPC or protobuf here: the collector converts at its transport edge.
#ifndef IDFLOW_COLLECTOR_POLICY_POLICY_H_
#define IDFLOW_COLLECTOR_POLICY_POLICY_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

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
  std::string purpose;
  std::string usage_scenario;            // as published
  std::vector<std::string> scenarios;    // ontology scenario ids
  std::vector<std::string> sharing_methods;  // e.g. {"sdk_local_acquisition"}
  std::vector<std::string> requires_consent;  // consent keys that must be true
  std::string rules_link;
  int line = 0;  // line of the entry in its YAML file
};

struct Statement {
  std::string id;       // e.g. "interconnectivity-data-sharing"
  std::string version;  // e.g. "v20250508"
  std::string title;
  std::string source;   // where the text was published / imported from
  std::vector<Entry> entries;
  std::string file;     // YAML file it was loaded from
};

// Which module, process or package is which SDK on a device image.
struct Binding {
  std::string sdk;
  std::vector<std::string> modules;    // glob patterns over the module path
  std::vector<std::string> processes;  // glob patterns over the executable path
};

struct Policy {
  Ontology ontology;
  std::vector<Statement> statements;
  std::vector<Binding> bindings;

  // SDK that a module (or, failing that, the process) maps to; "" when none.
  std::string SdkForModule(const std::string& module_path, const std::string& exe) const;
};

// Loads ontology.yaml, statements/*.yaml and bindings/*.yaml below `dir`.
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

// Non-fatal findings on a loaded policy ("FILE:LINE: message"), e.g. entries
// that declare no data type, or data types and scenarios nothing uses.
std::vector<std::string> LintPolicy(const Policy& policy);

// ---- verdicts ---------------------------------------------------------------

enum class Category {
  kClear,
  kVague,
  kOmitted,
  kUndeclaredParty,
  kWrongRecipient,
  kOutOfScenario,
  kNoConsent,
  kMethodMismatch,
};

// "clear", "vague", "omitted", "undeclared_party", ...
const char* CategoryName(Category c);
bool IsViolation(Category c);  // everything but kClear

// What was observed, in policy terms.
struct Flow {
  std::string sdk;        // "" when the module maps to no SDK
  std::string module;     // calling shared object
  std::string data_type;  // ontology id, e.g. "mac_address"
  std::string action;     // "transmit" or "acquire"
  std::string channel;    // "tcp", "udp", "unix", "tls-openssl", ...
  std::string dest_host;  // hostname (resolver, SNI or Host header); "" when unknown
  std::string dest_ip;    // "" when not a network destination
  std::vector<std::string> scenarios;          // active usage scenarios; empty = unknown
  std::map<std::string, bool> consents;        // consent states set by app or harness
};

struct Verdict {
  Category category = Category::kUndeclaredParty;
  std::string statement;  // statement id, "" when none applies
  std::string version;
  std::string entry;      // entry id, "" when none applies
  std::string explanation;  // one sentence
};

Verdict Judge(const Policy& policy, const Flow& flow);

}  // namespace idflow::policy

#endif  // IDFLOW_COLLECTOR_POLICY_POLICY_H_

// Loads the policy YAML in stages, like Falco's rule loader: each file is
// parsed (YAML syntax), checked against the schema (header, known keys, types),
// then its references are resolved against what earlier stages loaded
// (ontology -> statements -> app policies -> bindings). Errors cite FILE:LINE:COLUMN, 1-based.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "collector/policy/policy.h"
#include "collector/policy/text_normalize.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace idflow::policy {
namespace {

constexpr absl::string_view kSchema = "idflow.policy/v1";

// Turns a yaml-cpp mark (0-based, or null) into "FILE:LINE:COLUMN: msg".
absl::Status ErrorAt(const std::string& file, const YAML::Mark& mark, absl::string_view msg) {
  int line = mark.is_null() ? 1 : mark.line + 1;
  int column = mark.is_null() ? 1 : mark.column + 1;
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ":", column, ": ", msg));
}

bool IsId(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Schema checks over one file; `file_` names it in every error.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }

  absl::Status Error(const YAML::Node& node, absl::string_view msg) const {
    return ErrorAt(file_, node.Mark(), msg);
  }

  absl::StatusOr<YAML::Node> Parse(const std::string& text) const {
    try {
      YAML::Node root = YAML::Load(text);
      if (!root.IsMap()) {
        return ErrorAt(file_, root.IsNull() ? YAML::Mark() : root.Mark(),
                       "expected a mapping with `schema` and `kind` at the top level");
      }
      return root;
    } catch (const YAML::Exception& e) {
      return ErrorAt(file_, e.mark, e.msg);
    } catch (const std::exception& e) {
      return ErrorAt(file_, YAML::Mark(), e.what());
    }
  }

  // Rejects keys outside `allowed`, so a typo cannot silently drop a field.
  absl::Status CheckMap(const YAML::Node& node, absl::string_view what,
                        std::initializer_list<absl::string_view> allowed) const {
    if (!node.IsMap()) return Error(node, absl::StrCat(what, " must be a mapping"));
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) return Error(kv.first, absl::StrCat(what, " has a non-scalar key"));
      const std::string& key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return Error(kv.first, absl::StrCat("unknown key '", key, "' in ", what,
                                            " (allowed: ", absl::StrJoin(allowed, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckHeader(const YAML::Node& root, absl::string_view kind) const {
    YAML::Node schema = root["schema"];
    if (!schema) return Error(root, "missing required key 'schema'");
    if (!schema.IsScalar() || schema.Scalar() != kSchema) {
      return Error(schema, absl::StrCat("unsupported schema, expected '", kSchema, "'"));
    }
    YAML::Node k = root["kind"];
    if (!k) return Error(root, "missing required key 'kind'");
    if (!k.IsScalar() || k.Scalar() != kind) {
      return Error(k, absl::StrCat("expected kind '", kind, "' in this file"));
    }
    return absl::OkStatus();
  }

  // Reads an optional (or required) scalar string at `key` of map `node`.
  absl::Status String(const YAML::Node& node, const char* key, bool required,
                      std::string* out) const {
    YAML::Node v = node[key];
    if (!v || v.IsNull()) {
      if (required) return Error(node, absl::StrCat("missing required key '", key, "'"));
      return absl::OkStatus();
    }
    if (!v.IsScalar()) return Error(v, absl::StrCat("'", key, "' must be a string"));
    *out = v.Scalar();
    if (required && out->empty()) return Error(v, absl::StrCat("'", key, "' must not be empty"));
    return absl::OkStatus();
  }

  absl::Status Bool(const YAML::Node& node, const char* key, bool* out) const {
    YAML::Node v = node[key];
    if (!v || v.IsNull()) return absl::OkStatus();
    if (!v.IsScalar() || (v.Scalar() != "true" && v.Scalar() != "false")) {
      return Error(v, absl::StrCat("'", key, "' must be true or false"));
    }
    *out = v.Scalar() == "true";
    return absl::OkStatus();
  }

  absl::Status Int(const YAML::Node& node, const char* key, int64_t min, int64_t* out) const {
    YAML::Node v = node[key];
    if (!v || v.IsNull()) return absl::OkStatus();
    int64_t n = 0;
    if (!v.IsScalar() || !absl::SimpleAtoi(v.Scalar(), &n) || n < min) {
      return Error(v, absl::StrCat("'", key, "' must be an integer >= ", min));
    }
    *out = n;
    return absl::OkStatus();
  }

  absl::Status Id(const YAML::Node& node, std::string* out) const {
    RETURN_IF_ERROR(String(node, "id", true, out));
    if (!IsId(*out)) {
      return Error(node["id"], absl::StrCat("id '", *out, "' must match [a-z0-9_-]+"));
    }
    return absl::OkStatus();
  }

  // Reads an optional list of scalars; `marks` (if given) receives each item's node.
  absl::Status List(const YAML::Node& node, const char* key, bool required,
                    std::vector<std::string>* out, std::vector<YAML::Node>* items = nullptr) const {
    YAML::Node v = node[key];
    if (!v || v.IsNull()) {
      if (required) return Error(node, absl::StrCat("missing required key '", key, "'"));
      return absl::OkStatus();
    }
    if (!v.IsSequence()) return Error(v, absl::StrCat("'", key, "' must be a list"));
    for (const auto& item : v) {
      if (!item.IsScalar())
        return Error(item, absl::StrCat("items of '", key, "' must be strings"));
      out->push_back(item.Scalar());
      if (items) items->push_back(item);
    }
    return absl::OkStatus();
  }

  // Iterates the optional list of mappings at `key`.
  absl::Status Each(const YAML::Node& node, const char* key,
                    const std::function<absl::Status(const YAML::Node&)>& fn) const {
    YAML::Node v = node[key];
    if (!v || v.IsNull()) return absl::OkStatus();
    if (!v.IsSequence()) return Error(v, absl::StrCat("'", key, "' must be a list"));
    for (const auto& item : v) RETURN_IF_ERROR(fn(item));
    return absl::OkStatus();
  }

 private:
  std::string file_;
};

// Guards against duplicate ids within one category.
class IdSet {
 public:
  explicit IdSet(std::string what) : what_(std::move(what)) {}
  absl::Status Add(const Reader& r, const YAML::Node& node, const std::string& id) {
    if (!ids_.insert(id).second)
      return r.Error(node["id"], absl::StrCat("duplicate ", what_, " '", id, "'"));
    return absl::OkStatus();
  }

 private:
  std::string what_;
  std::set<std::string> ids_;
};

absl::Status LoadOntology(const PolicyFile& f, Ontology* o) {
  Reader r(f.name);
  ASSIGN_OR_RETURN(YAML::Node root, r.Parse(f.text));
  RETURN_IF_ERROR(r.CheckHeader(root, "ontology"));
  RETURN_IF_ERROR(r.CheckMap(
      root, "ontology",
      {"schema", "kind", "data_types", "entities", "scenarios", "sharing_methods", "consents"}));
  // Parents are resolved after all types are read, so order in the file is free.
  std::vector<std::vector<YAML::Node>> parent_nodes;
  IdSet types("data type"), entities("entity"), scenarios("scenario"), methods("sharing method"),
      consents("consent");
  auto read_data_types = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(r.CheckMap(n, "data type", {"id", "parents", "terms", "description"}));
    DataType t;
    RETURN_IF_ERROR(r.Id(n, &t.id));
    RETURN_IF_ERROR(types.Add(r, n, t.id));
    parent_nodes.emplace_back();
    RETURN_IF_ERROR(r.List(n, "parents", false, &t.parents, &parent_nodes.back()));
    RETURN_IF_ERROR(r.List(n, "terms", false, &t.terms));
    o->data_types.push_back(std::move(t));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "data_types", read_data_types));
  for (size_t i = 0; i < o->data_types.size(); ++i) {
    for (size_t j = 0; j < o->data_types[i].parents.size(); ++j) {
      const std::string& p = o->data_types[i].parents[j];
      if (o->FindDataType(p) == nullptr) {
        return r.Error(parent_nodes[i][j], absl::StrCat("unknown parent data type '", p, "'"));
      }
    }
  }
  // Subsumption must be a DAG, or Subsumes() would be meaningless.
  for (size_t i = 0; i < o->data_types.size(); ++i) {
    const std::string& id = o->data_types[i].id;
    for (size_t j = 0; j < o->data_types[i].parents.size(); ++j) {
      if (o->Subsumes(id, o->data_types[i].parents[j])) {
        return r.Error(parent_nodes[i][j],
                       absl::StrCat("data type '", id, "' is its own ancestor through '",
                                    o->data_types[i].parents[j], "'"));
      }
    }
  }
  auto read_entities = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(r.CheckMap(n, "entity", {"id", "name", "aliases", "domains", "description"}));
    Entity e;
    RETURN_IF_ERROR(r.Id(n, &e.id));
    RETURN_IF_ERROR(entities.Add(r, n, e.id));
    RETURN_IF_ERROR(r.String(n, "name", true, &e.name));
    RETURN_IF_ERROR(r.List(n, "aliases", false, &e.aliases));
    std::vector<YAML::Node> domain_nodes;
    RETURN_IF_ERROR(r.List(n, "domains", false, &e.domains, &domain_nodes));
    for (size_t i = 0; i < e.domains.size(); ++i) {
      const std::string& d = e.domains[i];
      absl::string_view rest = d;
      if (rest.substr(0, 2) == "*.") rest.remove_prefix(2);
      if (rest.empty() || rest.find('*') != absl::string_view::npos ||
          rest.find('/') != absl::string_view::npos || rest.find(':') != absl::string_view::npos) {
        return r.Error(domain_nodes[i],
                       absl::StrCat("domain '", d, "' must be 'host.tld' or '*.host.tld'"));
      }
    }
    o->entities.push_back(std::move(e));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "entities", read_entities));
  auto read_scenarios = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(r.CheckMap(n, "scenario", {"id", "terms", "description"}));
    Scenario s;
    RETURN_IF_ERROR(r.Id(n, &s.id));
    RETURN_IF_ERROR(scenarios.Add(r, n, s.id));
    RETURN_IF_ERROR(r.List(n, "terms", false, &s.terms));
    o->scenarios.push_back(s.id);
    o->scenario_defs.push_back(std::move(s));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "scenarios", read_scenarios));
  auto read_sharing_methods = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(
        r.CheckMap(n, "sharing method", {"id", "terms", "actions", "channels", "description"}));
    SharingMethod m;
    RETURN_IF_ERROR(r.Id(n, &m.id));
    RETURN_IF_ERROR(methods.Add(r, n, m.id));
    RETURN_IF_ERROR(r.List(n, "terms", false, &m.terms));
    // Each item of `key` must be `a` or `b`.
    auto one_of = [&](const char* key, bool required, const char* what, const char* a,
                      const char* b, std::vector<std::string>* out) -> absl::Status {
      std::vector<YAML::Node> nodes;
      RETURN_IF_ERROR(r.List(n, key, required, out, &nodes));
      for (size_t i = 0; i < out->size(); ++i) {
        if ((*out)[i] != a && (*out)[i] != b) {
          return r.Error(nodes[i], absl::StrCat("unknown ", what, " '", (*out)[i], "' (expected ",
                                                a, " or ", b, ")"));
        }
      }
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(one_of("actions", true, "action", "acquire", "transmit", &m.actions));
    RETURN_IF_ERROR(one_of("channels", false, "channel class", "network", "local", &m.channels));
    o->sharing_methods.push_back(std::move(m));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "sharing_methods", read_sharing_methods));
  auto read_consents = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(r.CheckMap(n, "consent", {"id", "terms", "description"}));
    Consent c;
    RETURN_IF_ERROR(r.Id(n, &c.id));
    RETURN_IF_ERROR(consents.Add(r, n, c.id));
    RETURN_IF_ERROR(r.List(n, "terms", false, &c.terms));
    o->consents.push_back(std::move(c));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "consents", read_consents));
  return absl::OkStatus();
}

// Checks every id in `ids` with `known`, citing the offending list item.
absl::Status Resolve(const Reader& r, const std::vector<std::string>& ids,
                     const std::vector<YAML::Node>& nodes, absl::string_view what,
                     const std::function<bool(const std::string&)>& known) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!known(ids[i])) return r.Error(nodes[i], absl::StrCat("unknown ", what, " '", ids[i], "'"));
  }
  return absl::OkStatus();
}

absl::Status LoadStatement(const PolicyFile& f, Policy* p) {
  const Ontology& o = p->ontology;
  Reader r(f.name);
  ASSIGN_OR_RETURN(YAML::Node root, r.Parse(f.text));
  RETURN_IF_ERROR(r.CheckHeader(root, "statement"));
  RETURN_IF_ERROR(
      r.CheckMap(root, "statement",
                 {"schema", "kind", "id", "version", "title", "source", "entities", "entries"}));
  Statement s;
  s.file = f.name;
  RETURN_IF_ERROR(r.Id(root, &s.id));
  RETURN_IF_ERROR(r.String(root, "version", true, &s.version));
  RETURN_IF_ERROR(r.String(root, "title", false, &s.title));
  RETURN_IF_ERROR(r.String(root, "source", false, &s.source));
  for (const Statement& other : p->statements) {
    if (other.id == s.id && other.version == s.version) {
      return r.Error(root["id"], absl::StrCat("statement ", s.id, " ", s.version,
                                              " is already loaded from ", other.file));
    }
  }
  // Parties the ontology did not know at import: merged into the policy's
  // ontology before the entries that name them are resolved.
  auto read_entities = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(r.CheckMap(n, "entity", {"id", "name", "aliases"}));
    Entity e;
    RETURN_IF_ERROR(r.Id(n, &e.id));
    RETURN_IF_ERROR(r.String(n, "name", true, &e.name));
    RETURN_IF_ERROR(r.List(n, "aliases", false, &e.aliases));
    if (const Entity* known = p->ontology.FindEntity(e.id)) {
      if (known->name != e.name) {
        return r.Error(
            n["id"], absl::StrCat("entity '", e.id, "' is already defined as '", known->name, "'"));
      }
    } else {
      p->ontology.entities.push_back(e);
    }
    s.entities.push_back(std::move(e));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "entities", read_entities));
  IdSet entry_ids("entry id");
  auto read_entries = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(
        r.CheckMap(n, "entry",
                   {"id", "title", "third_party", "entity", "sharing_type", "sdk", "shared_data",
                    "data_types", "purpose", "usage_scenario", "unmapped", "scenarios",
                    "sharing_methods", "requires_consent", "rules_link"}));
    Entry e;
    e.line = n.Mark().line + 1;
    RETURN_IF_ERROR(r.Id(n, &e.id));
    RETURN_IF_ERROR(entry_ids.Add(r, n, e.id));
    RETURN_IF_ERROR(r.String(n, "title", false, &e.title));
    RETURN_IF_ERROR(r.String(n, "third_party", true, &e.third_party));
    RETURN_IF_ERROR(r.String(n, "entity", true, &e.entity));
    RETURN_IF_ERROR(r.String(n, "sharing_type", false, &e.sharing_type));
    RETURN_IF_ERROR(r.String(n, "sdk", true, &e.sdk));
    RETURN_IF_ERROR(r.List(n, "shared_data", false, &e.shared_data));
    RETURN_IF_ERROR(r.List(n, "unmapped", false, &e.unmapped));
    RETURN_IF_ERROR(r.String(n, "purpose", false, &e.purpose));
    RETURN_IF_ERROR(r.String(n, "usage_scenario", false, &e.usage_scenario));
    RETURN_IF_ERROR(r.String(n, "rules_link", false, &e.rules_link));
    std::vector<YAML::Node> dt_nodes, sc_nodes, m_nodes, c_nodes;
    RETURN_IF_ERROR(r.List(n, "data_types", true, &e.data_types, &dt_nodes));
    RETURN_IF_ERROR(r.List(n, "scenarios", false, &e.scenarios, &sc_nodes));
    RETURN_IF_ERROR(r.List(n, "sharing_methods", false, &e.sharing_methods, &m_nodes));
    RETURN_IF_ERROR(r.List(n, "requires_consent", false, &e.requires_consent, &c_nodes));
    // Stage 3: references into the ontology.
    const Entity* entity = o.FindEntity(e.entity);
    if (entity == nullptr)
      return r.Error(n["entity"], absl::StrCat("unknown entity '", e.entity, "'"));
    if (o.FindEntityByName(e.third_party) != entity) {
      return r.Error(n["third_party"],
                     absl::StrCat("third party '", e.third_party,
                                  "' is not a name or alias of entity '", e.entity, "'"));
    }
    RETURN_IF_ERROR(Resolve(r, e.data_types, dt_nodes, "data type",
                            [&](const std::string& id) { return o.FindDataType(id) != nullptr; }));
    RETURN_IF_ERROR(Resolve(r, e.scenarios, sc_nodes, "scenario",
                            [&](const std::string& id) { return o.HasScenario(id); }));
    RETURN_IF_ERROR(
        Resolve(r, e.sharing_methods, m_nodes, "sharing method",
                [&](const std::string& id) { return o.FindSharingMethod(id) != nullptr; }));
    RETURN_IF_ERROR(Resolve(r, e.requires_consent, c_nodes, "consent",
                            [&](const std::string& id) { return o.HasConsent(id); }));
    s.entries.push_back(std::move(e));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "entries", read_entries));
  p->statements.push_back(std::move(s));
  return absl::OkStatus();
}

// One item of a `runtime:` / `first_party:` list: a mapping with exactly one
// of soname, glob or path, whose value is a non-empty string.
absl::Status ReadModulePattern(const Reader& r, const YAML::Node& n, absl::string_view list,
                               std::vector<ModulePattern>* out) {
  const std::string expected =
      absl::StrCat("items of '", list, "' are mappings with exactly one of soname, glob, path");
  if (!n.IsMap() || n.size() == 0) return r.Error(n, expected);
  if (n.size() > 1) {
    auto second = std::next(n.begin());
    return r.Error(second->first, absl::StrCat(expected, "; found also '",
                                               second->first.as<std::string>(""), "'"));
  }
  const auto& kv = *n.begin();
  const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
  ModulePattern m;
  if (key == "soname") {
    m.kind = ModulePattern::Kind::kSoname;
  } else if (key == "glob") {
    m.kind = ModulePattern::Kind::kGlob;
  } else if (key == "path") {
    m.kind = ModulePattern::Kind::kPath;
  } else {
    return r.Error(kv.first, absl::StrCat("unknown pattern kind '", key, "' in '", list,
                                          "' (allowed: soname, glob, path)"));
  }
  // `soname:` with no value is marked where the next token starts: point at the key.
  const YAML::Node& at = kv.second.IsNull() || kv.second.Mark().is_null() ? kv.first : kv.second;
  if (!kv.second.IsScalar() || kv.second.Scalar().empty()) {
    return r.Error(at, absl::StrCat("'", key, "' must be a non-empty string"));
  }
  m.pattern = kv.second.Scalar();
  // soname and glob see the file name only: a '/' could never match.
  if (m.kind != ModulePattern::Kind::kPath && m.pattern.find('/') != std::string::npos) {
    return r.Error(at, absl::StrCat("'", key, "' matches the file name, which has no '/' ",
                                    "(use path: for a pattern over the whole path)"));
  }
  m.file = r.file();
  m.line = n.Mark().line + 1;
  out->push_back(std::move(m));
  return absl::OkStatus();
}

absl::Status LoadBindings(const PolicyFile& f, Policy* p) {
  Reader r(f.name);
  ASSIGN_OR_RETURN(YAML::Node root, r.Parse(f.text));
  RETURN_IF_ERROR(r.CheckHeader(root, "bindings"));
  RETURN_IF_ERROR(
      r.CheckMap(root, "bindings file", {"schema", "kind", "bindings", "runtime", "first_party"}));
  auto read_bindings = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(r.CheckMap(n, "binding", {"sdk", "modules", "processes"}));
    Binding b;
    b.file = f.name;
    b.line = n.Mark().line + 1;
    RETURN_IF_ERROR(r.String(n, "sdk", true, &b.sdk));
    RETURN_IF_ERROR(r.List(n, "modules", false, &b.modules));
    RETURN_IF_ERROR(r.List(n, "processes", false, &b.processes));
    if (b.modules.empty() && b.processes.empty()) {
      return r.Error(n, "binding needs at least one of 'modules' or 'processes'");
    }
    // A statement entry or an app policy (loaded before bindings) must name
    // the SDK: a binding to a name nothing declares could never be judged.
    bool declared = false;
    for (const Statement& s : p->statements) {
      for (const Entry& e : s.entries) declared = declared || SameFolded(e.sdk, b.sdk);
    }
    for (const AppPolicy& a : p->app_policies) {
      for (const std::string& sdk : a.sdks) declared = declared || SameFolded(sdk, b.sdk);
    }
    if (!declared) {
      return r.Error(n["sdk"], absl::StrCat("SDK '", b.sdk,
                                            "' is named in no loaded statement or app policy"));
    }
    // Two bindings of one SDK in different files would make the winner depend
    // on file order; one binding lists all its modules and processes.
    for (const Binding& other : p->bindings) {
      if (SameFolded(other.sdk, b.sdk)) {
        return r.Error(n["sdk"], absl::StrCat("SDK '", b.sdk, "' is already bound at ", other.file,
                                              ":", other.line));
      }
    }
    p->bindings.push_back(std::move(b));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "bindings", read_bindings));
  RETURN_IF_ERROR(r.Each(root, "runtime", [&](const YAML::Node& n) {
    return ReadModulePattern(r, n, "runtime", &p->runtime);
  }));
  return r.Each(root, "first_party", [&](const YAML::Node& n) {
    return ReadModulePattern(r, n, "first_party", &p->first_party);
  });
}

absl::Status CheckDomain(const Reader& r, const YAML::Node& node, const std::string& d) {
  absl::string_view rest = d;
  if (rest.substr(0, 2) == "*.") rest.remove_prefix(2);
  if (rest.empty() || rest.find('*') != absl::string_view::npos ||
      rest.find('/') != absl::string_view::npos || rest.find(':') != absl::string_view::npos) {
    return r.Error(node, absl::StrCat("domain '", d, "' must be 'host.tld' or '*.host.tld'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CookiePolicy> ReadCookies(const PolicyFile& f) {
  Reader r(f.name);
  ASSIGN_OR_RETURN(YAML::Node root, r.Parse(f.text));
  RETURN_IF_ERROR(r.CheckHeader(root, "cookies"));
  RETURN_IF_ERROR(r.CheckMap(root, "cookie policy",
                             {"schema", "kind", "id", "version", "title", "source", "sites",
                              "first_party_only", "cookies"}));
  CookiePolicy p;
  p.file = f.name;
  RETURN_IF_ERROR(r.Id(root, &p.id));
  RETURN_IF_ERROR(r.String(root, "version", true, &p.version));
  RETURN_IF_ERROR(r.String(root, "title", false, &p.title));
  RETURN_IF_ERROR(r.String(root, "source", false, &p.source));
  std::vector<YAML::Node> site_nodes;
  RETURN_IF_ERROR(r.List(root, "sites", false, &p.sites, &site_nodes));
  for (size_t i = 0; i < p.sites.size(); ++i) {
    RETURN_IF_ERROR(CheckDomain(r, site_nodes[i], p.sites[i]));
  }
  RETURN_IF_ERROR(r.Bool(root, "first_party_only", &p.first_party_only));
  auto read_row = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(r.CheckMap(n, "cookie",
                               {"name", "category", "purpose", "duration", "session",
                                "max_age_seconds", "source", "first_party", "source_line"}));
    CookieRow c;
    c.line = n.Mark().line + 1;
    RETURN_IF_ERROR(r.String(n, "name", true, &c.name));
    RETURN_IF_ERROR(r.String(n, "category", true, &c.category));
    if (!IsId(c.category)) {
      return r.Error(n["category"],
                     absl::StrCat("category '", c.category, "' must match [a-z0-9_-]+"));
    }
    RETURN_IF_ERROR(r.String(n, "purpose", false, &c.purpose));
    RETURN_IF_ERROR(r.String(n, "duration", false, &c.duration));
    RETURN_IF_ERROR(r.Bool(n, "session", &c.session));
    RETURN_IF_ERROR(r.Int(n, "max_age_seconds", -1, &c.max_age_seconds));
    if (c.session && c.max_age_seconds != 0) {
      return r.Error(n["max_age_seconds"], "a session cookie has max_age_seconds 0");
    }
    RETURN_IF_ERROR(r.String(n, "source", false, &c.source));
    RETURN_IF_ERROR(r.Bool(n, "first_party", &c.first_party));
    int64_t line = 0;
    RETURN_IF_ERROR(r.Int(n, "source_line", 0, &line));
    c.source_line = static_cast<int>(std::min<int64_t>(line, 1 << 30));
    p.cookies.push_back(std::move(c));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "cookies", read_row));
  return p;
}

absl::Status LoadCookies(const PolicyFile& f, Policy* p) {
  ASSIGN_OR_RETURN(CookiePolicy c, ReadCookies(f));
  for (const CookiePolicy& other : p->cookie_policies) {
    if (other.id == c.id && other.version == c.version) {
      return absl::InvalidArgumentError(absl::StrCat(f.name, ":1:1: cookie policy ", c.id, " ",
                                                     c.version, " is already loaded from ",
                                                     other.file));
    }
  }
  p->cookie_policies.push_back(std::move(c));
  return absl::OkStatus();
}

absl::Status LoadApp(const PolicyFile& f, Policy* p) {
  const Ontology& o = p->ontology;
  Reader r(f.name);
  ASSIGN_OR_RETURN(YAML::Node root, r.Parse(f.text));
  RETURN_IF_ERROR(r.CheckHeader(root, "app"));
  RETURN_IF_ERROR(r.CheckMap(root, "app policy",
                             {"schema", "kind", "id", "version", "title", "source", "entity",
                              "sdks", "features", "consent_purposes"}));
  AppPolicy a;
  a.file = f.name;
  RETURN_IF_ERROR(r.Id(root, &a.id));
  RETURN_IF_ERROR(r.String(root, "version", true, &a.version));
  RETURN_IF_ERROR(r.String(root, "title", false, &a.title));
  RETURN_IF_ERROR(r.String(root, "source", false, &a.source));
  RETURN_IF_ERROR(r.String(root, "entity", true, &a.entity));
  if (o.FindEntity(a.entity) == nullptr) {
    return r.Error(root["entity"], absl::StrCat("unknown entity '", a.entity, "'"));
  }
  RETURN_IF_ERROR(r.List(root, "sdks", true, &a.sdks));
  for (const AppPolicy& other : p->app_policies) {
    if (other.id == a.id && other.version == a.version) {
      return r.Error(root["id"], absl::StrCat("app policy ", a.id, " ", a.version,
                                              " is already loaded from ", other.file));
    }
  }
  auto known_type = [&](const std::string& id) { return o.FindDataType(id) != nullptr; };
  auto known_consent = [&](const std::string& id) { return o.HasConsent(id); };
  IdSet feature_ids("feature"), purpose_ids("consent purpose");
  auto read_feature = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(r.CheckMap(n, "feature",
                               {"id", "title", "section", "optional", "collected", "data_types",
                                "purpose", "requires_consent"}));
    AppFeature ft;
    ft.line = n.Mark().line + 1;
    RETURN_IF_ERROR(r.Id(n, &ft.id));
    RETURN_IF_ERROR(feature_ids.Add(r, n, ft.id));
    RETURN_IF_ERROR(r.String(n, "title", false, &ft.title));
    RETURN_IF_ERROR(r.String(n, "section", true, &ft.section));
    RETURN_IF_ERROR(r.Bool(n, "optional", &ft.optional));
    RETURN_IF_ERROR(r.List(n, "collected", false, &ft.collected));
    RETURN_IF_ERROR(r.String(n, "purpose", false, &ft.purpose));
    std::vector<YAML::Node> dt_nodes, c_nodes;
    RETURN_IF_ERROR(r.List(n, "data_types", true, &ft.data_types, &dt_nodes));
    RETURN_IF_ERROR(r.List(n, "requires_consent", false, &ft.requires_consent, &c_nodes));
    RETURN_IF_ERROR(Resolve(r, ft.data_types, dt_nodes, "data type", known_type));
    RETURN_IF_ERROR(Resolve(r, ft.requires_consent, c_nodes, "consent", known_consent));
    a.features.push_back(std::move(ft));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "features", read_feature));
  auto read_purpose = [&](const YAML::Node& n) -> absl::Status {
    RETURN_IF_ERROR(r.CheckMap(n, "consent purpose",
                               {"id", "consent", "title", "section", "purpose", "data_types"}));
    ConsentPurpose cp;
    cp.line = n.Mark().line + 1;
    RETURN_IF_ERROR(r.Id(n, &cp.id));
    RETURN_IF_ERROR(purpose_ids.Add(r, n, cp.id));
    RETURN_IF_ERROR(r.String(n, "consent", true, &cp.consent));
    if (!o.HasConsent(cp.consent)) {
      return r.Error(n["consent"], absl::StrCat("unknown consent '", cp.consent, "'"));
    }
    RETURN_IF_ERROR(r.String(n, "title", false, &cp.title));
    RETURN_IF_ERROR(r.String(n, "section", true, &cp.section));
    RETURN_IF_ERROR(r.String(n, "purpose", false, &cp.purpose));
    std::vector<YAML::Node> dt_nodes;
    RETURN_IF_ERROR(r.List(n, "data_types", false, &cp.data_types, &dt_nodes));
    RETURN_IF_ERROR(Resolve(r, cp.data_types, dt_nodes, "data type", known_type));
    a.consent_purposes.push_back(std::move(cp));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(r.Each(root, "consent_purposes", read_purpose));
  p->app_policies.push_back(std::move(a));
  return absl::OkStatus();
}

// YAML files directly in `dir`, sorted by name; none when `dir` is absent.
absl::StatusOr<std::vector<PolicyFile>> ReadYamlFiles(const std::filesystem::path& dir) {
  std::vector<PolicyFile> files;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return files;
  std::vector<std::filesystem::path> paths;
  for (const auto& de : std::filesystem::directory_iterator(dir, ec)) {
    const auto ext = de.path().extension();
    if (de.is_regular_file() && (ext == ".yaml" || ext == ".yml")) paths.push_back(de.path());
  }
  if (ec) return absl::InvalidArgumentError(absl::StrCat(dir.string(), ": ", ec.message()));
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(path.string()));
    files.push_back({path.string(), std::move(text)});
  }
  return files;
}

}  // namespace

absl::StatusOr<Policy> LoadPolicyFromStrings(const PolicyFile& ontology,
                                             const std::vector<PolicyFile>& statements,
                                             const std::vector<PolicyFile>& bindings) {
  return LoadPolicyFromStrings(PolicyFiles{ontology, statements, bindings, {}, {}});
}

absl::StatusOr<CookiePolicy> ParseCookiePolicyYaml(const std::string& text,
                                                   const std::string& name) {
  try {
    return ReadCookies({name, text});
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(name, ":1:1: ", e.what()));
  }
}

absl::StatusOr<Policy> LoadPolicyFromStrings(const PolicyFiles& files) {
  Policy p;
  try {
    RETURN_IF_ERROR(LoadOntology(files.ontology, &p.ontology));
    for (const PolicyFile& f : files.statements) RETURN_IF_ERROR(LoadStatement(f, &p));
    // Apps before bindings: a binding may name an SDK only an app policy declares.
    for (const PolicyFile& f : files.apps) RETURN_IF_ERROR(LoadApp(f, &p));
    for (const PolicyFile& f : files.bindings) RETURN_IF_ERROR(LoadBindings(f, &p));
    for (const PolicyFile& f : files.cookies) RETURN_IF_ERROR(LoadCookies(f, &p));
    IndexModules(&p);
  } catch (const std::exception& e) {
    // yaml-cpp throws from accessors too (e.g. bad conversions); never let it escape.
    return absl::InvalidArgumentError(absl::StrCat("policy: ", e.what()));
  }
  return p;
}

absl::StatusOr<Policy> LoadPolicyDir(const std::string& dir) {
  const std::filesystem::path root(dir);
  const std::string ontology_path = (root / "ontology.yaml").string();
  auto text = ReadFile(ontology_path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ontology_path, ":1:1: cannot read ontology: ", text.status().message()));
  }
  PolicyFiles files;
  files.ontology = {ontology_path, *std::move(text)};
  ASSIGN_OR_RETURN(files.statements, ReadYamlFiles(root / "statements"));
  ASSIGN_OR_RETURN(files.bindings, ReadYamlFiles(root / "bindings"));
  ASSIGN_OR_RETURN(files.cookies, ReadYamlFiles(root / "cookies"));
  ASSIGN_OR_RETURN(files.apps, ReadYamlFiles(root / "apps"));
  return LoadPolicyFromStrings(files);
}

}  // namespace idflow::policy

// Shared by the statement importer fuzz targets: whatever the importer
// accepts emits YAML that the loader reads back as the same statement (no
// unloadable or altered policy written).
#ifndef IDFLOW_TESTS_FUZZ_STATEMENT_ROUNDTRIP_H_
#define IDFLOW_TESTS_FUZZ_STATEMENT_ROUNDTRIP_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "collector/policy/importer.h"
#include "collector/policy/policy.h"
#include "tests/fuzz/fuzz_util.h"

namespace idflow::fuzz {

inline const idflow::policy::PolicyFile& OntologyFile() {
  static const auto* f = new idflow::policy::PolicyFile{
      "ontology.yaml", idflow::fuzz::Slurp(IDFLOW_SOURCE_DIR "/policies/ontology.yaml")};
  return *f;
}
inline const idflow::policy::Ontology& Onto() {
  static const auto* o = [] {
    auto p = idflow::policy::LoadPolicyFromStrings(OntologyFile(), {}, {});
    if (!p.ok()) idflow::fuzz::Die(std::string(p.status().message()));
    return new idflow::policy::Ontology(p->ontology);
  }();
  return *o;
}

// The schema refusals the importer does not guard against (ids it cannot
// slug, an empty version, two entries slugging alike): `idflowctl policy
// import` re-loads its output and refuses these, so they are not emitter
// bugs. Everything else, YAML syntax errors above all, is one.
inline bool IsGuardedSchemaRefusal(const std::string& msg) {
  for (const char* ok : {"must match [a-z0-9_-]+", "must not be empty", "missing required key",
                         "duplicate entry id"}) {
    if (msg.find(ok) != std::string::npos) return true;
  }
  return false;
}

inline void Same(const std::string& what, const std::string& a, const std::string& b) {
  if (a != b) idflow::fuzz::Die(what + " changed through YAML: '" + a + "' -> '" + b + "'");
}
inline void Same(const std::string& what, const std::vector<std::string>& a,
                 const std::vector<std::string>& b) {
  if (a.size() != b.size()) idflow::fuzz::Die(what + ": item count changed through YAML");
  for (size_t i = 0; i < a.size(); ++i) Same(what, a[i], b[i]);
}

// Imports `data` with `options` and checks the round trip.
inline int ImportAndRoundTrip(const uint8_t* data, size_t size,
                              const idflow::policy::ImportOptions& options) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> warnings;
  auto st = idflow::policy::ImportStatementText(text, "fuzz.txt", Onto(), options, &warnings);
  if (!st.ok()) return 0;
  const std::string yaml = idflow::policy::StatementToYaml(*st);
  auto back = idflow::policy::LoadPolicyFromStrings(OntologyFile(), {{"fuzz.yaml", yaml}}, {});
  if (!back.ok()) {
    const std::string msg(back.status().message());
    if (!IsGuardedSchemaRefusal(msg)) idflow::fuzz::Die(msg + "\n--- emitted YAML:\n" + yaml);
    return 0;
  }
  if (back->statements.size() != 1) idflow::fuzz::Die("statement lost through YAML");
  const idflow::policy::Statement& got = back->statements[0];
  Same("id", st->id, got.id);
  Same("version", st->version, got.version);
  Same("title", st->title, got.title);
  if (st->entries.size() != got.entries.size()) idflow::fuzz::Die("entry count changed");
  for (size_t i = 0; i < got.entries.size(); ++i) {
    const auto& a = st->entries[i];
    const auto& b = got.entries[i];
    Same("entry id", a.id, b.id);
    Same("sdk", a.sdk, b.sdk);
    Same("third_party", a.third_party, b.third_party);
    Same("purpose", a.purpose, b.purpose);
    Same("shared_data", a.shared_data, b.shared_data);
    Same("data_types", a.data_types, b.data_types);
    Same("unmapped", a.unmapped, b.unmapped);
  }
  // Nothing published is lost: every shared-data clause maps or is kept.
  for (const auto& e : st->entries) {
    for (const std::string& item : e.shared_data) {
      for (const std::string& clause : idflow::policy::MapSharedData(item, Onto()).unmapped) {
        bool kept = false;
        for (const std::string& u : e.unmapped) kept = kept || u == clause;
        if (!kept) idflow::fuzz::Die("clause lost: '" + clause + "' of item '" + item + "'");
      }
    }
  }
  return 0;
}

}  // namespace idflow::fuzz

#endif  // IDFLOW_TESTS_FUZZ_STATEMENT_ROUNDTRIP_H_

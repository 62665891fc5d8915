// Statement importer on arbitrary text: never crashes, and whatever it
// accepts emits YAML that the loader reads back as the same statement (no
// unloadable or altered policy written).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "collector/policy/importer.h"
#include "collector/policy/policy.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
const idflow::policy::PolicyFile& OntologyFile() {
  static const auto* f = new idflow::policy::PolicyFile{
      "ontology.yaml", idflow::fuzz::Slurp(IDFLOW_SOURCE_DIR "/policies/ontology.yaml")};
  return *f;
}
const idflow::policy::Ontology& Onto() {
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
bool IsGuardedSchemaRefusal(const std::string& msg) {
  for (const char* ok : {"must match [a-z0-9_-]+", "must not be empty", "missing required key",
                         "duplicate entry id"}) {
    if (msg.find(ok) != std::string::npos) return true;
  }
  return false;
}

void Same(const std::string& what, const std::string& a, const std::string& b) {
  if (a != b) idflow::fuzz::Die(what + " changed through YAML: '" + a + "' -> '" + b + "'");
}
void Same(const std::string& what, const std::vector<std::string>& a,
          const std::vector<std::string>& b) {
  if (a.size() != b.size()) idflow::fuzz::Die(what + ": item count changed through YAML");
  for (size_t i = 0; i < a.size(); ++i) Same(what, a[i], b[i]);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> warnings;
  auto st = idflow::policy::ImportStatementText(text, "fuzz.txt", Onto(), &warnings);
  if (!st.ok()) return 0;
  const std::string yaml = idflow::policy::StatementToYaml(*st);
  if (!idflow::fuzz::IsValidUtf8(text)) return 0;
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
  }
  return 0;
}

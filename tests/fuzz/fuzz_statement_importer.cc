// Statement importer on arbitrary text: never crashes, and whatever it
// accepts emits YAML that the loader accepts (no unloadable policy written).
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
    // Schema-level refusals (e.g. an id the loader forbids) are fine for the
    // CLI, which checks before writing; a YAML syntax error is an emitter bug.
    const std::string msg(back.status().message());
    if (msg.find("fuzz.yaml") == std::string::npos) idflow::fuzz::Die(msg);
  }
  return 0;
}

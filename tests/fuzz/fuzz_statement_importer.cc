// Statement importer on arbitrary text, layout detected from the text (or
// fixed by IDFLOW_FUZZ_LAYOUT for the per-layout targets): never crashes,
// and whatever it accepts round-trips through YAML with no clause lost.
#include <cstddef>
#include <cstdint>

#include "collector/policy/importer.h"
#include "tests/fuzz/statement_roundtrip.h"

#ifndef IDFLOW_FUZZ_LAYOUT
#define IDFLOW_FUZZ_LAYOUT kAuto
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  idflow::policy::ImportOptions options;
  options.layout = idflow::policy::Layout::IDFLOW_FUZZ_LAYOUT;
  return idflow::fuzz::ImportAndRoundTrip(data, size, options);
}

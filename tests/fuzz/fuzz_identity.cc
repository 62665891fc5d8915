// Agent identity file parser (agent/inventory.h): any YAML, never a crash,
// and every refusal says why.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/inventory.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto id = idflow::agent::ParseIdentity(
      std::string_view(reinterpret_cast<const char*>(data), size), "identity.yaml");
  if (!id.ok() && id.status().message().empty()) idflow::fuzz::Die("error without a message");
  return 0;
}

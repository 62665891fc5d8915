// Handed-over calls (agent/tap_matcher.h): a Payload record and a module
// table, both written by the app in shared memory. Any bytes, never a
// crash; every event the matcher builds is one the tap protocol decoder
// accepts. Input: one byte N (module entries, N % 5), N entries of the
// table, then the record.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/tap_matcher.h"
#include "agent/tap_protocol.h"
#include "tests/fuzz/fuzz_pattern_db.h"

namespace {

using idflow::agent::TapRingModule;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t modules = data[0] % 5;
  ++data;
  --size;
  if (size < modules * sizeof(TapRingModule)) modules = size / sizeof(TapRingModule);
  std::vector<TapRingModule> table(modules);
  if (modules > 0) memcpy(table.data(), data, modules * sizeof(TapRingModule));
  data += modules * sizeof(TapRingModule);
  size -= modules * sizeof(TapRingModule);
  idflow::agent::TapPayloadMatcher matcher;
  std::vector<std::string> events;
  auto st = matcher.Match(std::string_view(reinterpret_cast<const char*>(data), size),
                          idflow::fuzz::MacPatternDb(), table.data(),
                          static_cast<uint32_t>(table.size()), &events);
  if (!st.ok() && st.message().empty()) idflow::fuzz::Die("refusal without a message");
  for (const std::string& e : events) {
    auto decoded = idflow::agent::DecodeTapMessage(e);
    if (!decoded.ok()) {
      idflow::fuzz::Die("built an undecodable event: " + std::string(decoded.status().message()));
    }
  }
  return 0;
}

// The TLS uprobe source's parsers (agent/uprobe/tls_write.h): ring buffer
// records from the BPF programs and /proc/PID/maps text, then the payload
// record built from a parsed write through the agent's matcher and decoder.
// Every event that comes out must decode.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/tap_matcher.h"
#include "agent/tap_protocol.h"
#include "agent/uprobe/tls_write.h"
#include "tests/fuzz/fuzz_pattern_db.h"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte: where the maps text ends (in 1/256ths of the input).
  const size_t split = (static_cast<size_t>(data[0]) * (size - 1)) / 256 + 1;
  std::string_view maps(reinterpret_cast<const char*>(data) + 1, split - 1);
  std::string_view record(reinterpret_cast<const char*>(data) + split, size - split);
  std::vector<idflow::agent::TapRingModule> modules = idflow::agent::ModulesFromMaps(maps);
  if (modules.size() > idflow::agent::kTapRingModules) __builtin_trap();
  for (const auto& m : modules) {
    if (m.path_len == 0 || m.path_len > idflow::agent::kTapModuleMax || m.hi <= m.lo) {
      __builtin_trap();
    }
  }
  auto w = idflow::agent::ParseTlsRecord(record);
  if (!w.ok()) return 0;
  const std::string payload = idflow::agent::TlsPayloadRecord(*w, 1);
  idflow::agent::TapPayloadMatcher matcher;
  std::vector<std::string> events;
  if (!matcher
           .Match(payload, idflow::fuzz::MacPatternDb(), modules.data(),
                  static_cast<uint32_t>(modules.size()), &events)
           .ok()) {
    __builtin_trap();  // we built it: the matcher must take it
  }
  for (const std::string& e : events) {
    if (!idflow::agent::DecodeTapMessage(e).ok()) __builtin_trap();
  }
  return 0;
}

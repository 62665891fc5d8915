// Tap wire decoder (agent/tap_protocol.h): any datagram, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/tap_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)idflow::agent::DecodeTapMessage(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

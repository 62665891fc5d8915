// Tap wire decoder (agent/tap_protocol.h): any datagram, never a crash; what
// it accepts re-encodes to a message that decodes to the same call chain (the
// decoder accepts nothing the format cannot carry).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "agent/tap_protocol.h"

namespace {

using idflow::agent::DecodeTapMessage;

template <typename T, typename Encode>
void CheckRoundTrip(const T& in, Encode encode) {
  auto again = DecodeTapMessage(encode(in));
  if (!again.ok()) __builtin_trap();
  const T* out = std::get_if<T>(&again->body);
  if (out == nullptr || out->call_chain != in.call_chain) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto msg = DecodeTapMessage(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!msg.ok()) return 0;
  if (const auto* e = std::get_if<idflow::agent::TapEvent>(&msg->body)) {
    CheckRoundTrip(*e, [](const auto& x) { return idflow::agent::EncodeEvent(x); });
  } else if (const auto* c = std::get_if<idflow::agent::TapCookie>(&msg->body)) {
    CheckRoundTrip(*c, [](const auto& x) { return idflow::agent::EncodeCookie(x); });
  }
  return 0;
}

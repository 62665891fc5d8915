// The agent socket's decoders, dispatched as the ingress does: control
// requests (agent/control_protocol.h) and tap messages (agent/tap_protocol.h).
// Any datagram, never a crash; what they accept re-encodes to a message that
// decodes to the same content (they accept nothing the format cannot carry).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "agent/control_protocol.h"
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

static void CheckControl(std::string_view bytes) {
  using namespace idflow::agent;
  auto req = DecodeControlRequest(bytes);
  if (!req.ok()) return;
  if (const auto* set = std::get_if<ContextSetRequest>(&*req)) {
    auto frame = EncodeContextSet(*set);
    if (!frame.ok()) __builtin_trap();
    auto again = DecodeControlRequest(*frame);
    if (!again.ok()) __builtin_trap();
    const auto* back = std::get_if<ContextSetRequest>(&*again);
    if (back == nullptr || back->pid != set->pid || !(back->patch == set->patch)) __builtin_trap();
  } else {
    const auto& flush = std::get<FlushRunRequest>(*req);
    auto again = DecodeControlRequest(*EncodeFlushRun(flush));
    if (!again.ok() || std::get<FlushRunRequest>(*again).run_id != flush.run_id) __builtin_trap();
  }
  (void)DecodeControlReply(bytes);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (idflow::agent::IsControlRequest(bytes)) {
    CheckControl(bytes);
    return 0;
  }
  auto msg = DecodeTapMessage(bytes);
  if (!msg.ok()) return 0;
  if (const auto* e = std::get_if<idflow::agent::TapEvent>(&msg->body)) {
    CheckRoundTrip(*e, [](const auto& x) { return idflow::agent::EncodeEvent(x); });
  } else if (const auto* c = std::get_if<idflow::agent::TapCookie>(&msg->body)) {
    CheckRoundTrip(*c, [](const auto& x) { return idflow::agent::EncodeCookie(x); });
  }
  return 0;
}

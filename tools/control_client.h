// A client of the agent's control requests (agent/control_protocol.h) on its
// tap socket: `idflowctl context set` and `idflowctl qa --socket`.
#ifndef IDFLOW_TOOLS_CONTROL_CLIENT_H_
#define IDFLOW_TOOLS_CONTROL_CLIENT_H_

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/control_protocol.h"

namespace idflow::tools {

// Sends one request frame to the agent at `socket` and waits at most
// `timeout` for its reply. Errors say what failed (no agent, no answer, a
// malformed reply); a reply is returned whatever its code.
absl::StatusOr<agent::ControlReply> SendControl(const std::string& socket, const std::string& frame,
                                                std::chrono::milliseconds timeout);

// The reply's code and text as a status.
absl::Status ReplyStatus(const agent::ControlReply& reply);

}  // namespace idflow::tools

#endif  // IDFLOW_TOOLS_CONTROL_CLIENT_H_

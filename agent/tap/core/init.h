// Start-up and exit of the tap, run by the constructor and destructor of
// libidflow-tap.so (agent/tap/hooks/lifecycle.cc): settings from the
// environment, the real functions, the module cache, the event ring, the
// agent connection and the pattern database. Any failure leaves the tap
// disabled (pure pass-through) and says so once on stderr.
#ifndef IDFLOW_AGENT_TAP_CORE_INIT_H_
#define IDFLOW_AGENT_TAP_CORE_INIT_H_

namespace idflow::tap {

void Init();
// Sends the exit Stats (best effort).
void Fini();

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_CORE_INIT_H_

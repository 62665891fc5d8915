#ifndef IDFLOW_COMMON_SIGNALS_H_
#define IDFLOW_COMMON_SIGNALS_H_

namespace idflow {

// Blocks SIGINT/SIGTERM/SIGHUP in the calling thread (call before starting
// threads so they inherit the mask); WaitForTerminationSignal() then returns
// the signal number once one arrives.
void BlockTerminationSignals();
int WaitForTerminationSignal();

}  // namespace idflow

#endif  // IDFLOW_COMMON_SIGNALS_H_

// The tap's constructor and destructor (agent/tap/core/init.h).
#include "agent/tap/core/init.h"

namespace {

__attribute__((constructor)) void TapInit() { idflow::tap::Init(); }

__attribute__((destructor)) void TapFini() { idflow::tap::Fini(); }

}  // namespace

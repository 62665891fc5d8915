// Resolver hook: the name each address was asked for, to name destinations.
#include "agent/tap/hooks/hook.h"

#include <arpa/inet.h>

#include "agent/tap/resolver/names.h"

using namespace idflow::tap;  // NOLINT: hooks are C symbols
namespace agent = idflow::agent;

IDFLOW_EXPORT int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                              addrinfo** res) {
  GetaddrinfoFn f = IDFLOW_REAL(getaddrinfo);
  if (f == nullptr) return EAI_SYSTEM;
  int r = f(node, service, hints, res);
  if (r == 0 && node != nullptr && res != nullptr && Ready()) {
    Observe([&] {
      unsigned char probe[16];
      if (inet_pton(AF_INET, node, probe) == 1 || inet_pton(AF_INET6, node, probe) == 1) return;
      for (const addrinfo* ai = *res; ai != nullptr; ai = ai->ai_next) {
        RememberName(node, ai->ai_addr);
      }
    });
  }
  return r;
}

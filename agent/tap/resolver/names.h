// Resolver map: addresses getaddrinfo() returned -> the name asked for, so
// that an event to an address can be named. A ring of fixed entries, newest
// wins; each entry is a seqlock so readers (event emission) never block
// writers (getaddrinfo callers).
#ifndef IDFLOW_AGENT_TAP_RESOLVER_NAMES_H_
#define IDFLOW_AGENT_TAP_RESOLVER_NAMES_H_

#include <stdint.h>
#include <sys/socket.h>

namespace idflow::tap {

inline constexpr int kNameRing = 256;

// Remembers that `node` resolved to `sa` (AF_INET/AF_INET6 only).
void RememberName(const char* node, const sockaddr* sa);
// The newest name remembered for the address (kTapHostMax bytes at most
// written to `out`); 0 if none.
uint16_t LookupName(uint8_t family, const uint8_t* addr, char* out);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_RESOLVER_NAMES_H_

// TLS ClientHello sniffing: the server name (SNI) a client announces in the
// first record it writes, whatever TLS library wrote it. Pure: no
// allocation, no libstdc++ runtime (compiled into libidflow-tap.so).
#ifndef IDFLOW_AGENT_TAP_SNIFF_TLS_CLIENT_HELLO_H_
#define IDFLOW_AGENT_TAP_SNIFF_TLS_CLIENT_HELLO_H_

#include <stddef.h>

namespace idflow::tap {

// server_name (host_name) of a TLS ClientHello at the start of `buf` (a
// record cut short by the write is parsed as far as it goes), truncated to
// `cap` bytes copied to `out`; 0 if there is none.
size_t ParseSni(const char* buf, size_t n, char* out, size_t cap);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_SNIFF_TLS_CLIENT_HELLO_H_

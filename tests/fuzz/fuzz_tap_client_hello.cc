// The tap's TLS ClientHello sniffer (agent/tap/sniff/tls_client_hello.h):
// any bytes, never a read outside them or a write past `cap`; a name found
// is bytes of the input; a ClientHello naming the input gives it back.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "agent/tap/sniff/tls_client_hello.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/tap/client_hello.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> buf(data, data + size);  // exact-size copy for ASan
  const size_t cap = size > 0 ? 1 + data[0] % 128 : 16;
  std::vector<char> out(cap);
  const size_t n = idflow::tap::ParseSni(buf.data(), size, out.data(), cap);
  if (n > cap) idflow::fuzz::Die("SNI longer than cap");
  if (n > 0 && memmem(buf.data(), size, out.data(), n) == nullptr) {
    idflow::fuzz::Die("SNI is not from the input");
  }
  // Round trip: a ClientHello naming (part of) the input.
  std::string host(reinterpret_cast<const char*>(data), size < 200 ? size : 200);
  if (!host.empty()) {
    std::string hello = idflow::testing::ClientHello(host);
    char name[256];
    size_t got = idflow::tap::ParseSni(hello.data(), hello.size(), name, sizeof(name));
    if (std::string(name, got) != host) idflow::fuzz::Die("SNI round trip");
  }
  return 0;
}

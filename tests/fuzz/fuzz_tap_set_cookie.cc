// The tap's Set-Cookie sniffer (agent/tap/sniff/set_cookie.h): any header
// value, never a read outside it; a cookie always has a name from the value
// and a Domain that is a lower-case host name within bounds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/tap/sniff/set_cookie.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> buf(data, data + size);  // exact-size copy for ASan
  const char* d = buf.data();
  idflow::tap::SetCookie sc;
  if (!idflow::tap::ParseSetCookie(d, size, /*now_unix_seconds=*/1700000000, &sc)) return 0;
  if (sc.name < d || sc.name_len == 0 || sc.name + sc.name_len > d + size) {
    idflow::fuzz::Die("cookie name outside the value");
  }
  for (size_t i = 0; i < sc.name_len; ++i) {
    if (sc.name[i] == ';' || sc.name[i] == '=') idflow::fuzz::Die("name holds ';' or '='");
  }
  if (sc.domain_len > idflow::tap::kCookieDomainMax) idflow::fuzz::Die("domain too long");
  for (size_t i = 0; i < sc.domain_len; ++i) {
    char c = sc.domain[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) idflow::fuzz::Die("domain holds a character no host name has");
  }
  if (!sc.has_max_age && sc.max_age != 0) idflow::fuzz::Die("max_age without has_max_age");
  return 0;
}

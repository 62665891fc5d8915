// The tap's HTTP date sniffer (agent/tap/sniff/http_date.h): any bytes,
// never a read outside them; and every IMF-fixdate (from the input's first
// bytes as a time) parses back to the time it was written from.
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "agent/tap/sniff/http_date.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> buf(data, data + size);  // exact-size copy for ASan
  int64_t t = 0;
  idflow::tap::ParseHttpDate(buf.data(), size, &t);
  if (size >= 5) {
    uint64_t x = 0;
    memcpy(&x, data, size < sizeof(x) ? size : sizeof(x));
    const time_t when = static_cast<time_t>(x % 253402300800ull);  // years 1970..9999
    tm parts;
    char text[64];
    size_t n = 0;
    if (gmtime_r(&when, &parts) != nullptr) {
      n = strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &parts);
    }
    int64_t back = 0;
    if (n == 0 || !idflow::tap::ParseHttpDate(text, n, &back) || back != when) {
      idflow::fuzz::Die("an HTTP date does not parse back to its time");
    }
  }
  return 0;
}

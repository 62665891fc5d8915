#include "agent/tap/sniff/tls_client_hello.h"

#include <stdint.h>
#include <string.h>

namespace idflow::tap {
namespace {

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

}  // namespace

size_t ParseSni(const char* buf, size_t n, char* out, size_t cap) {
  const auto* d = reinterpret_cast<const uint8_t*>(buf);
  if (n < 5 + 4 + 2 + 32 + 1 || d[0] != 0x16 || d[1] != 0x03 || d[5] != 0x01) return 0;
  size_t end = 5 + static_cast<size_t>(Be16(d + 3));
  if (end > n) end = n;  // a ClientHello cut by the write: parse what is there
  size_t p = 5 + 4 + 2 + 32;
  if (p + 1 > end) return 0;
  p += 1 + d[p];  // session id
  if (p + 2 > end) return 0;
  p += 2 + Be16(d + p);  // cipher suites
  if (p + 1 > end) return 0;
  p += 1 + d[p];  // compression methods
  if (p + 2 > end) return 0;
  size_t ext_end = p + 2 + Be16(d + p);
  if (ext_end > end) ext_end = end;
  p += 2;
  while (p + 4 <= ext_end) {
    uint16_t type = Be16(d + p), len = Be16(d + p + 2);
    p += 4;
    if (type == 0 && p + 5 <= ext_end && d[p + 2] == 0) {  // server_name, host_name
      size_t name_len = Be16(d + p + 3);
      if (p + 5 + name_len > ext_end || name_len == 0) return 0;
      if (name_len > cap) name_len = cap;
      memcpy(out, d + p + 5, name_len);
      return name_len;
    }
    p += len;
  }
  return 0;
}

}  // namespace idflow::tap

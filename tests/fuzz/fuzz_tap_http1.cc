// The tap's HTTP/1 sniffer (agent/tap/sniff/http1.h): any bytes, never a
// read outside the input; every header value lies inside the header block;
// and a response fed in chunks hands out the same header lines as fed whole.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "agent/tap/sniff/http1.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace idflow::tap;  // NOLINT

void Collect(void* ctx, const char* line, size_t len) {
  static_cast<std::vector<std::string>*>(ctx)->emplace_back(line, len);
}

// Header lines of `d` fed in chunks whose sizes come from `seed` (0: whole).
std::vector<std::string> Lines(const char* d, size_t n, uint32_t seed) {
  std::vector<std::string> lines;
  ResponseLines state;
  char carry[kResponseLineMax];
  size_t at = 0;
  while (at < n) {
    size_t chunk = n - at;
    if (seed != 0) {
      seed = seed * 1103515245u + 12345u;
      chunk = 1 + (seed >> 16) % 97;
      // A first read shorter than a status line does not start a response.
      if (at == 0 && chunk < 12) chunk = 12;
      if (chunk > n - at) chunk = n - at;
    }
    // Each chunk is its own allocation, so ASan sees a read past it.
    std::vector<char> read(d + at, d + at + chunk);
    FeedResponseLines(&state, carry, read.data(), read.size(), Collect, &lines);
    at += chunk;
  }
  return lines;
}

bool LongestLineFitsTheCarry(const char* d, size_t n) {
  size_t run = 0;
  for (size_t i = 0; i < n; ++i) {
    run = d[i] == '\n' ? 0 : run + 1;
    if (run >= kResponseLineMax) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> buf(data, data + size);  // exact-size copy for ASan
  const char* d = buf.data();
  IsHttpRequest(d, size);
  IsHttpResponse(d, size);
  const HttpHeaders h = ParseHeaderBlock(d, size);
  if (h.end > size || h.end > kHeaderScanMax) idflow::fuzz::Die("header block past the input");
  for (const char* name : {"host", "cookie", "set-cookie"}) {
    size_t from = 0, len = 0, next = 0;
    const char* v = nullptr;
    while (FindHeader(h, from, name, &v, &len, &next)) {
      if (v < d || v + len > d + h.end) idflow::fuzz::Die("header value outside the block");
      if (next <= from || next > h.end) idflow::fuzz::Die("FindHeader does not advance");
      from = next;
    }
  }
  char host[64];
  if (HttpHost(d, size, host, sizeof(host)) > sizeof(host)) idflow::fuzz::Die("host past cap");
  size_t pos = 0, name_len = 0;
  const char* name = nullptr;
  while (NextRequestCookie(d, size, &pos, &name, &name_len)) {
    if (name < d || name + name_len > d + size || name_len == 0 || pos > size) {
      idflow::fuzz::Die("cookie name outside the value");
    }
  }
  // Same lines whole or in chunks, when no line outgrows the carry.
  uint32_t seed = size > 0 ? 1u + static_cast<uint8_t>(d[size - 1]) : 1u;
  std::vector<std::string> whole = Lines(d, size, 0);
  std::vector<std::string> chunks = Lines(d, size, seed);
  if (LongestLineFitsTheCarry(d, size) &&
      (chunks.size() < whole.size() || !std::equal(whole.begin(), whole.end(), chunks.begin()))) {
    idflow::fuzz::Die("response lines differ when the response is split");
  }
  for (const std::string& line : chunks) {
    if (line.empty() || line.find('\n') != std::string::npos) idflow::fuzz::Die("bad line");
  }
  return 0;
}

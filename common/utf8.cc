#include "common/utf8.h"

#include <cstdint>

namespace idflow {

size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

char32_t DecodeUtf8(std::string_view s, size_t i, size_t* len) {
  const size_t n = Utf8SequenceLength(s, i);
  if (n == 0) {
    *len = 1;
    return 0xFFFD;
  }
  const auto b0 = static_cast<uint8_t>(s[i]);
  char32_t cp = n == 1 ? b0 : b0 & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  *len = n;
  return cp;
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ToValidUtf8(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      uint8_t c = static_cast<uint8_t>(s[i++]);
      out.append({'\\', 'x', kHex[c >> 4], kHex[c & 0xf]});
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

bool MakeValidUtf8(std::string* s) {
  if (IsValidUtf8(*s)) return false;
  *s = ToValidUtf8(*s);
  return true;
}

}  // namespace idflow

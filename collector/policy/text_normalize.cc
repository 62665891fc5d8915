#include "collector/policy/text_normalize.h"

#include <cstdint>

namespace idflow::policy {

namespace {

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

std::string FoldForMatch(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;  // a whitespace run seen since the last kept character
  auto put = [&](char c) {
    if (pending_space && !out.empty()) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  };
  for (size_t i = 0; i < text.size();) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    // Three-byte sequences EF BC 81..EF BD 9E are U+FF01..U+FF5E and
    // E3 80 80 is U+3000.
    if (i + 2 < text.size()) {
      const auto b1 = static_cast<unsigned char>(text[i + 1]);
      const auto b2 = static_cast<unsigned char>(text[i + 2]);
      if (b0 == 0xE3 && b1 == 0x80 && b2 == 0x80) {
        pending_space = true;
        i += 3;
        continue;
      }
      if (b0 == 0xEF && (b1 == 0xBC || b1 == 0xBD) && b2 >= 0x80 && b2 <= 0xBF) {
        const uint32_t cp = 0xF000u | ((b1 & 0x3Fu) << 6) | (b2 & 0x3Fu);
        if (cp >= 0xFF01 && cp <= 0xFF5E) {
          char c = static_cast<char>(cp - 0xFF01 + 0x21);
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
          put(c);
          i += 3;
          continue;
        }
      }
    }
    char c = text[i];
    if (IsAsciiSpace(c)) {
      pending_space = true;
    } else {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      put(c);
    }
    ++i;
  }
  return out;
}

bool SameFolded(std::string_view a, std::string_view b) {
  return FoldForMatch(a) == FoldForMatch(b);
}

}  // namespace idflow::policy

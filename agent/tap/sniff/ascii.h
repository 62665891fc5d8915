// Byte helpers shared by the tap's sniffers (header-only, internal to
// agent/tap/sniff/). ASCII only: the protocols parsed here are byte-oriented.
#ifndef IDFLOW_AGENT_TAP_SNIFF_ASCII_H_
#define IDFLOW_AGENT_TAP_SNIFF_ASCII_H_

#include <stddef.h>

namespace idflow::tap::ascii {

inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool IsSpace(char c) { return c == ' ' || c == '\t'; }

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Case-insensitive equality of s[0, n) with `lower` (lower case, lower_len bytes).
inline bool EqualsNoCase(const char* s, size_t n, const char* lower, size_t lower_len) {
  if (n != lower_len) return false;
  for (size_t i = 0; i < n; ++i) {
    if (Lower(s[i]) != lower[i]) return false;
  }
  return true;
}

// Trims spaces and tabs from both ends of s[*b, *e).
inline void Trim(const char* s, size_t* b, size_t* e) {
  while (*b < *e && IsSpace(s[*b])) ++*b;
  while (*e > *b && IsSpace(s[*e - 1])) --*e;
}

}  // namespace idflow::tap::ascii

#endif  // IDFLOW_AGENT_TAP_SNIFF_ASCII_H_

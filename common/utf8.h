// Text from devices (module paths, HTTP Host headers, cookie names) is bytes;
// protobuf string fields must be valid UTF-8, or serialization and parsing
// fail and the event is lost. These helpers make any bytes valid UTF-8.
#ifndef IDFLOW_COMMON_UTF8_H_
#define IDFLOW_COMMON_UTF8_H_

#include <string>
#include <string_view>

namespace idflow {

bool IsValidUtf8(std::string_view s);

// Length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no overlongs,
// no surrogates, nothing past U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i);

// The code point at s[i] and its length in `*len`; an invalid sequence
// decodes as U+FFFD of length 1.
char32_t DecodeUtf8(std::string_view s, size_t i, size_t* len);

// Valid sequences are kept; every byte of an invalid one becomes "\xNN"
// (and a literal backslash stays as is). Idempotent on valid input.
std::string ToValidUtf8(std::string_view s);

// In place; returns true when something changed.
bool MakeValidUtf8(std::string* s);

}  // namespace idflow

#endif  // IDFLOW_COMMON_UTF8_H_

// Text from devices (module paths, HTTP Host headers, cookie names) is bytes;
// protobuf string fields must be valid UTF-8, or serialization and parsing
// fail and the event is lost. These helpers make any bytes valid UTF-8.
#ifndef IDFLOW_COMMON_UTF8_H_
#define IDFLOW_COMMON_UTF8_H_

#include <string>
#include <string_view>

namespace idflow {

bool IsValidUtf8(std::string_view s);

// Valid sequences are kept; every byte of an invalid one becomes "\xNN"
// (and a literal backslash stays as is). Idempotent on valid input.
std::string ToValidUtf8(std::string_view s);

// In place; returns true when something changed.
bool MakeValidUtf8(std::string* s);

}  // namespace idflow

#endif  // IDFLOW_COMMON_UTF8_H_

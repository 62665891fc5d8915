#ifndef IDFLOW_COMMON_JSON_H_
#define IDFLOW_COMMON_JSON_H_

#include <string>

namespace idflow {

// Escapes a string for the inside of a JSON string literal.
std::string JsonEscape(const std::string& s);

}  // namespace idflow

#endif  // IDFLOW_COMMON_JSON_H_

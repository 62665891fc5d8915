// RETURN_IF_ERROR / ASSIGN_OR_RETURN: abseil 20220623 ships neither.
#ifndef IDFLOW_COMMON_STATUS_MACROS_H_
#define IDFLOW_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define IDFLOW_STATUS_CONCAT_INNER_(a, b) a##b
#define IDFLOW_STATUS_CONCAT_(a, b) IDFLOW_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status _idflow_status = (expr);          \
    if (!_idflow_status.ok()) return _idflow_status; \
  } while (0)

#define IDFLOW_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(*tmp)

#define ASSIGN_OR_RETURN(lhs, expr) \
  IDFLOW_ASSIGN_OR_RETURN_IMPL_(IDFLOW_STATUS_CONCAT_(_idflow_statusor_, __LINE__), lhs, expr)

#endif  // IDFLOW_COMMON_STATUS_MACROS_H_

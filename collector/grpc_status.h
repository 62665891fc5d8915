// The one place where a library status becomes a gRPC status. absl and gRPC
// share the canonical code numbers, so the code carries over unchanged: a
// store that is busy stays UNAVAILABLE (the agent retries), a malformed batch
// stays INVALID_ARGUMENT (the agent sets it aside), an out-of-order sequence
// stays FAILED_PRECONDITION. Nothing in the collector builds a grpc::Status
// from a code of its own choosing.
#ifndef IDFLOW_COLLECTOR_GRPC_STATUS_H_
#define IDFLOW_COLLECTOR_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace idflow::collector {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
                static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
  static_assert(static_cast<int>(absl::StatusCode::kFailedPrecondition) ==
                static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace idflow::collector

#endif  // IDFLOW_COLLECTOR_GRPC_STATUS_H_

// absl::Status and grpc::Status share their canonical codes; these convert between
// them so that an error keeps its code and message across the wire.
#ifndef SPARSEPOOL_COMMON_GRPC_STATUS_H_
#define SPARSEPOOL_COMMON_GRPC_STATUS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace sparsepool {

grpc::Status ToGrpcStatus(const absl::Status& status);
// `what` names the call and the daemon for errors of the transport itself (daemon gone,
// deadline exceeded), whose gRPC messages do not.
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view what);

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_GRPC_STATUS_H_

// absl::Status and grpc::Status share their canonical codes; these convert between
// them so that an error keeps its code and message across the wire.
#ifndef SPARSEPOOL_COMMON_GRPC_STATUS_H_
#define SPARSEPOOL_COMMON_GRPC_STATUS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace sparsepool {

grpc::Status ToGrpcStatus(const absl::Status& status);
// `what` names the call and the daemon for errors of the transport itself (daemon gone,
// deadline exceeded), whose gRPC messages do not.
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view what);

// Adds `token` to a call as "authorization: Bearer TOKEN" (how a daemon that serves
// tenants knows the caller); nothing when it is empty.
inline void AddToken(grpc::ClientContext& context, absl::string_view token) {
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

// One unary call on a generated stub with a deadline, carrying `token` (when not empty:
// "authorization: Bearer TOKEN", for a daemon that serves tenants), its failure an
// absl::Status that names the call (`name`) and the daemon (`address`). The call waits for the channel
// to be ready within its deadline rather than failing at once while gRPC backs off
// between reconnections: a daemon restarting (seconds) is ridden out.
template <typename Stub, typename Request, typename Response>
absl::Status CallWithDeadline(Stub& stub,
                              grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                              const char* name, absl::string_view address, absl::Duration timeout,
                              absl::string_view token, const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context.set_wait_for_ready(true);
  AddToken(context, token);
  return FromGrpcStatus((stub.*method)(&context, request, response), absl::StrCat(name, " to ", address));
}

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_GRPC_STATUS_H_

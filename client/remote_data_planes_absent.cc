// The client built with --define=sparsepool_rdma=off: without UCX and libibverbs, for
// hosts that reach the pool only by load and store (CXL or host memory). Asking it for
// an RDMA transport says that this build left it out and how to get it.
#include "absl/strings/str_cat.h"
#include "client/remote_data_planes.h"

namespace sparsepool::client_detail {

absl::StatusOr<std::unique_ptr<DataPlane>> MakeRemoteDataPlane(const ClientOptions& options,
                                                               const std::string& /*client_id*/,
                                                               std::shared_ptr<grpc::Channel> /*channel*/) {
  if (options.transport == "ucx" || options.transport == "verbs") {
    return absl::FailedPreconditionError(absl::StrCat(
        "transport \"", options.transport, "\" was left out of this build: the client was built with ",
        "--define=sparsepool_rdma=off, without UCX and libibverbs (available: cxl); build without that define for ",
        options.transport));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown transport \"", options.transport,
                                                 "\" (available: cxl; this build has no UCX and no libibverbs)"));
}

}  // namespace sparsepool::client_detail

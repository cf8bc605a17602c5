// The RDMA data planes a client may be built with. Two implementations of one
// declaration, so that a client without UCX and libibverbs links and runs:
// remote_data_planes.cc (UCX and libibverbs, the plain build) and
// remote_data_planes_absent.cc (neither: --define=sparsepool_rdma=off, client/BUILD),
// which says which transports were left out when one is asked for.
#ifndef SPARSEPOOL_CLIENT_REMOTE_DATA_PLANES_H_
#define SPARSEPOOL_CLIENT_REMOTE_DATA_PLANES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/sparsepool_client.h"
#include "grpcpp/channel.h"
#include "transport/data_plane.h"

namespace sparsepool::client_detail {

// The data plane for options.transport, "ucx" or "verbs"; InvalidArgument
// naming the transports there are for a name that is none, FailedPrecondition for one
// this build left out. The verbs plane connects its queue pair over `channel`.
absl::StatusOr<std::unique_ptr<DataPlane>> MakeRemoteDataPlane(const ClientOptions& options,
                                                               const std::string& client_id,
                                                               std::shared_ptr<grpc::Channel> channel);

}  // namespace sparsepool::client_detail

#endif  // SPARSEPOOL_CLIENT_REMOTE_DATA_PLANES_H_

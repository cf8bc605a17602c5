// UCX and libibverbs: the data planes of //client:client.
#include "client/remote_data_planes.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "proto/sparsepool.grpc.pb.h"
#include "transport/rdma/ucx_data_plane.h"
#include "transport/rdma/verbs_data_plane.h"
#include "transport/rdma/verbs_endpoint_proto.h"

namespace sparsepool::client_detail {
namespace {

// The verbs plane connects its queue pair through ConnectVerbs on its own stub.
VerbsConnector MakeVerbsConnector(const ClientOptions& options, const std::string& client_id,
                                  std::shared_ptr<grpc::Channel> channel) {
  std::shared_ptr<v1::PoolService::Stub> stub = v1::PoolService::NewStub(channel);
  return [stub, client_id, address = options.address, token = options.token,
          timeout = options.rpc_timeout](const VerbsPeerInfo& local) -> absl::StatusOr<VerbsPeerInfo> {
    v1::ConnectVerbsRequest request;
    request.set_client_id(client_id);
    EndpointToProto(local, request.mutable_endpoint());
    v1::ConnectVerbsResponse response;
    if (absl::Status s = CallWithDeadline(*stub, &v1::PoolService::Stub::ConnectVerbs, "ConnectVerbs", address,
                                          timeout, token, request, &response);
        !s.ok()) {
      return s;
    }
    return EndpointFromProto(response.endpoint());
  };
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataPlane>> MakeRemoteDataPlane(const ClientOptions& options,
                                                               const std::string& client_id,
                                                               std::shared_ptr<grpc::Channel> channel) {
  if (options.transport == "ucx") {
    auto ucx = UcxDataPlane::Create(options.rpc_timeout);
    if (!ucx.ok()) return ucx.status();
    return std::unique_ptr<DataPlane>(*std::move(ucx));
  }
  if (options.transport == "verbs") {
    VerbsOptions verbs;
    verbs.device = options.verbs.device;
    verbs.port = options.verbs.port;
    verbs.gid_index = options.verbs.gid_index;
    verbs.queue_depth = options.verbs.queue_depth;
    verbs.timeout = options.rpc_timeout;
    auto plane = VerbsDataPlane::Create(verbs, MakeVerbsConnector(options, client_id, std::move(channel)));
    if (!plane.ok()) return plane.status();
    return std::unique_ptr<DataPlane>(*std::move(plane));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown transport \"", options.transport, "\" (available: cxl, ucx, verbs)"));
}

}  // namespace sparsepool::client_detail

// The RC queue-pair endpoint as exchanged by ConnectVerbs, checked on the way in: a
// malformed one from the wire is refused naming the field, never handed to the device.
#ifndef SPARSEPOOL_TRANSPORT_RDMA_VERBS_ENDPOINT_PROTO_H_
#define SPARSEPOOL_TRANSPORT_RDMA_VERBS_ENDPOINT_PROTO_H_

#include "absl/status/statusor.h"
#include "proto/sparsepool.pb.h"
#include "transport/rdma/verbs_plan.h"

namespace sparsepool {

void EndpointToProto(const VerbsPeerInfo& peer, v1::VerbsEndpoint* proto);
absl::StatusOr<VerbsPeerInfo> EndpointFromProto(const v1::VerbsEndpoint& proto);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_VERBS_ENDPOINT_PROTO_H_

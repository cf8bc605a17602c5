// sparsepoolctl cluster: the nodes registered in etcd, each asked for its health and
// figures over its control plane.
#ifndef SPARSEPOOL_TOOLS_CLUSTER_VIEW_H_
#define SPARSEPOOL_TOOLS_CLUSTER_VIEW_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"

namespace sparsepool {

// One line per node: name, id, address, health, transports, regions, capacity, free,
// live sequences; then the totals. Unavailable when etcd cannot be read.
absl::StatusOr<std::string> ClusterView(const std::string& etcd, const std::string& prefix, absl::Duration timeout,
                                        const std::string& token,
                                        const std::shared_ptr<grpc::ChannelCredentials>& credentials);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TOOLS_CLUSTER_VIEW_H_

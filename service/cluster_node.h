// The daemon's side of a pool cluster: what it registers in etcd about itself (from the
// pool's figures) and how it asks whether an earlier registration of its name still has
// a live daemon behind it (cluster/node_registration.h).
#ifndef SPARSEPOOL_SERVICE_CLUSTER_NODE_H_
#define SPARSEPOOL_SERVICE_CLUSTER_NODE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cluster/node_registration.h"
#include "service/daemon_config.h"
#include "service/pool.h"

namespace sparsepool {

// Registers the daemon (serving on `port`) as node `config.node_name`. `pool` must
// outlive the registration. The address clients reach is --advertise, or the listen
// address with the port it got (InvalidArgument when that is a wildcard address).
absl::StatusOr<std::unique_ptr<cluster::NodeRegistration>> JoinCluster(
    const DaemonConfig& config, Pool& pool, int port, std::function<void(const std::string&)> log,
    std::function<void(const absl::Status&)> on_lost);

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_CLUSTER_NODE_H_

// The client of a pool cluster (ClientOptions::etcd; docs/cluster.md): a Client over
// the nodes registered in etcd, one connection per node, made by Client::Connect.
//
// Placement of a new sequence (read fresh from etcd, so that a new request fails with a
// clear error while etcd is unreachable): the nodes with a region that serves the
// sequence's tenant and has room for it; among them those whose regions this host maps
// (CXL, or host memory on the same machine) first, then the most free bytes, then the
// name. A node that refuses (full, gone) hands the sequence to the next.
//
// Every other call goes to the sequence's node, named by its id (common/node_ids.h):
// sequences keep working while etcd is unreachable, and a decode worker on any host
// adopts a sequence by its id. A node that does not answer fails only its own
// sequences, with Unavailable naming it; when it comes back (at any address) the next
// call finds it again.
#ifndef SPARSEPOOL_CLIENT_CLUSTER_CLIENT_H_
#define SPARSEPOOL_CLIENT_CLUSTER_CLIENT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "client/sparsepool_client.h"

namespace sparsepool::internal {

// `options.client_id` is set; each node's client uses it (one lease per node).
absl::StatusOr<std::unique_ptr<Client>> ConnectCluster(const ClientOptions& options);

}  // namespace sparsepool::internal

#endif  // SPARSEPOOL_CLIENT_CLUSTER_CLIENT_H_

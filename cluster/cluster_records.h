// Where a pool cluster keeps what in etcd, and the records' JSON form (proto/cluster.proto).
#ifndef SPARSEPOOL_CLUSTER_CLUSTER_RECORDS_H_
#define SPARSEPOOL_CLUSTER_CLUSTER_RECORDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cluster/etcd_client.h"
#include "proto/cluster.pb.h"

namespace sparsepool::cluster {

std::string NodeKey(absl::string_view prefix, absl::string_view name);
std::string NodesPrefix(absl::string_view prefix);
std::string NodeIdKey(absl::string_view prefix, uint32_t node_id);
std::string RegionKey(absl::string_view prefix, absl::string_view uuid_hex);

std::string NodeToJson(const NodeRecord& node);
// InvalidArgument naming `key` when the value is not a node record.
absl::StatusOr<NodeRecord> NodeFromJson(absl::string_view json, absl::string_view key);

// Every registered node (their leases alive), by name; records that do not parse are
// left out.
absl::StatusOr<std::vector<NodeRecord>> ReadNodes(EtcdClient& etcd, absl::string_view prefix);

}  // namespace sparsepool::cluster

#endif  // SPARSEPOOL_CLUSTER_CLUSTER_RECORDS_H_

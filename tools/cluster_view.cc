#include "tools/cluster_view.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cluster/cluster_records.h"
#include "cluster/etcd_client.h"
#include "common/grpc_status.h"
#include "common/units.h"
#include "grpcpp/create_channel.h"
#include "proto/sparsepool.grpc.pb.h"

namespace sparsepool {

absl::StatusOr<std::string> ClusterView(const std::string& etcd, const std::string& prefix, absl::Duration timeout,
                                        const std::string& token,
                                        const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  auto client = cluster::EtcdClient::Connect(etcd, timeout);
  if (!client.ok()) return client.status();
  auto nodes = cluster::ReadNodes(**client, prefix);
  if (!nodes.ok()) return nodes.status();
  std::sort(nodes->begin(), nodes->end(), [](const auto& a, const auto& b) { return a.node_id() < b.node_id(); });
  std::string out = absl::StrFormat("%-16s %5s  %-22s %-34s %-10s %7s %12s %12s %9s\n", "node", "id", "address",
                                    "health", "transport", "regions", "capacity", "free", "sequences");
  uint64_t capacity = 0, free = 0, sequences = 0;
  int serving = 0;
  for (const cluster::NodeRecord& node : *nodes) {
    uint64_t node_capacity = 0, node_free = 0;
    for (const auto& region : node.regions()) {
      node_capacity += region.capacity_bytes();
      node_free += region.free_bytes();
    }
    // The node's own answer, not just its registration: a daemon can hang with its
    // lease still alive for up to a TTL.
    auto stub = v1::PoolService::NewStub(grpc::CreateChannel(node.address(), credentials));
    v1::HealthResponse health;
    absl::Status answered = CallWithDeadline(*stub, &v1::PoolService::Stub::Health, "Health", node.address(),
                                             timeout, token, v1::HealthRequest(), &health);
    std::string state;
    if (!answered.ok()) {
      state = absl::StrCat("UNREACHABLE (", absl::StatusCodeToString(answered.code()), ")");
    } else if (health.incarnation() != node.incarnation()) {
      state = "another daemon answers";
    } else {
      state = absl::StrCat("serving, up ", absl::FormatDuration(absl::Milliseconds(health.uptime_ms())));
      ++serving;
    }
    // A serving node's figures from itself, now; the registered ones (up to a third of
    // the lease old) for the others.
    uint64_t node_sequences = node.live_sequences();
    v1::StatsResponse stats;
    if (answered.ok() && health.incarnation() == node.incarnation() && CallWithDeadline(*stub, &v1::PoolService::Stub::Stats, "Stats", node.address(), timeout,
                                          token, v1::StatsRequest(), &stats)
                             .ok()) {
      node_capacity = stats.capacity_bytes();
      node_free = stats.free_bytes() + stats.reclaimable_bytes();
      node_sequences = stats.live_sequences();
    }
    absl::StrAppendFormat(&out, "%-16s %5d  %-22s %-34s %-10s %7d %12s %12s %9d\n", node.name(), node.node_id(),
                          node.address(), state, absl::StrJoin(node.transports(), ","), node.regions_size(),
                          FormatBytes(node_capacity), FormatBytes(node_free), node_sequences);
    capacity += node_capacity;
    free += node_free;
    sequences += node_sequences;
  }
  absl::StrAppendFormat(&out, "%d node(s) registered at etcd %s under %s, %d serving; capacity %s, free %s, %d live sequences\n",
                        nodes->size(), etcd, prefix, serving, FormatBytes(capacity), FormatBytes(free), sequences);
  return out;
}

}  // namespace sparsepool

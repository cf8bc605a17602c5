// A pool daemon as a node of a cluster (issue 13): it claims, under one etcd lease, its
// node id, each of its regions and its name (the node record: address, regions with
// kind, capacity and free bytes, transports), and renews the lease on a thread of its
// own, refreshing the record each time. When the daemon dies the lease expires and
// every claim goes with it; a clean stop revokes it at once.
//
// Refused (FailedPrecondition, naming the holder): a node id or region claimed by
// another node, or the name registered by a daemon that still answers at its address
// with the incarnation it registered. A registration of this node's name whose daemon
// no longer answers, or answers as another incarnation (a crash, a restart within the
// lease), is stale: its lease is revoked and the node registers afresh.
//
// While etcd is unreachable the node keeps serving and keeps trying. If its lease
// expired meanwhile it claims everything again; should another node have claimed one of
// its regions or its node id in between, `on_lost` is called once: the daemon must stop
// serving, since another daemon now manages that memory.
#ifndef SPARSEPOOL_CLUSTER_NODE_REGISTRATION_H_
#define SPARSEPOOL_CLUSTER_NODE_REGISTRATION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/etcd_client.h"
#include "common/periodic_thread.h"
#include "proto/cluster.pb.h"

namespace sparsepool::cluster {

struct NodeRegistrationOptions {
  std::string etcd;  // "HOST:PORT[,HOST:PORT...]"
  std::string prefix = "/sparsepool";
  absl::Duration ttl = absl::Seconds(10);
  absl::Duration etcd_timeout = absl::Seconds(2);
};

struct NodeHooks {
  // What the node is now (name, node id, address, incarnation, regions, ...): at
  // registration and every renewal.
  std::function<NodeRecord()> snapshot;
  // The incarnation of the daemon answering at `address` (HOST:PORT), or nothing when
  // none answers within a short deadline.
  std::function<std::optional<uint64_t>(const std::string& address)> incarnation_at;
  // Called once, from the renewal thread, when the registration is lost for good.
  std::function<void(const absl::Status&)> on_lost;
  std::function<void(const std::string&)> log;
};

class NodeRegistration {
 public:
  static absl::StatusOr<std::unique_ptr<NodeRegistration>> Register(const NodeRegistrationOptions& options,
                                                                    NodeHooks hooks);
  // Stops renewing and revokes the lease: the node leaves the cluster at once.
  ~NodeRegistration();
  NodeRegistration(const NodeRegistration&) = delete;
  NodeRegistration& operator=(const NodeRegistration&) = delete;

  int64_t lease() const;

 private:
  NodeRegistration(const NodeRegistrationOptions& options, NodeHooks hooks, std::unique_ptr<EtcdClient> etcd);
  // Takes over a stale registration of this name, then claims everything under a new
  // lease; on failure nothing stays claimed.
  absl::Status Claim();
  void Renew();

  const NodeRegistrationOptions options_;
  const NodeHooks hooks_;
  const std::unique_ptr<EtcdClient> etcd_;
  mutable absl::Mutex mu_;
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  bool etcd_down_ ABSL_GUARDED_BY(mu_) = false;  // logged once per outage
  std::unique_ptr<PeriodicThread> renewer_;  // last: it runs Renew
};

}  // namespace sparsepool::cluster

#endif  // SPARSEPOOL_CLUSTER_NODE_REGISTRATION_H_

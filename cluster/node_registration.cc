#include "cluster/node_registration.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cluster/cluster_records.h"

namespace sparsepool::cluster {

NodeRegistration::NodeRegistration(const NodeRegistrationOptions& options, NodeHooks hooks,
                                   std::unique_ptr<EtcdClient> etcd)
    : options_(options), hooks_(std::move(hooks)), etcd_(std::move(etcd)) {}

absl::StatusOr<std::unique_ptr<NodeRegistration>> NodeRegistration::Register(const NodeRegistrationOptions& options,
                                                                            NodeHooks hooks) {
  auto etcd = EtcdClient::Connect(options.etcd, options.etcd_timeout);
  if (!etcd.ok()) return etcd.status();
  std::unique_ptr<NodeRegistration> registration(new NodeRegistration(options, std::move(hooks), *std::move(etcd)));
  if (absl::Status s = registration->Claim(); !s.ok()) return s;
  // Renew well within the lease: three tries before it would expire.
  registration->renewer_ =
      std::make_unique<PeriodicThread>(options.ttl / 3, [r = registration.get()] { r->Renew(); });
  return registration;
}

NodeRegistration::~NodeRegistration() {
  renewer_.reset();
  absl::MutexLock lock(&mu_);
  if (lease_ != 0 && !lost_) (void)etcd_->RevokeLease(lease_);
}

int64_t NodeRegistration::lease() const {
  absl::MutexLock lock(&mu_);
  return lease_;
}

absl::Status NodeRegistration::Claim() {
  const NodeRecord node = hooks_.snapshot();
  const std::string& prefix = options_.prefix;
  const std::string node_key = NodeKey(prefix, node.name());

  // A registration of this name already there: a live duplicate, or this node's own
  // from before a crash or restart.
  auto existing = etcd_->Get(node_key);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    auto old = NodeFromJson((*existing)->value, node_key);
    if (old.ok() && old->incarnation() != node.incarnation()) {
      const std::optional<uint64_t> answering = hooks_.incarnation_at(old->address());
      if (answering.has_value() && *answering == old->incarnation()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "node \"", node.name(), "\" is registered in etcd by a live daemon at ", old->address(),
            " (incarnation ", old->incarnation(), "): give this daemon another --node_name"));
      }
    }
    // Stale: revoking its lease drops every claim it made.
    hooks_.log(absl::StrCat("taking over the stale registration of node \"", node.name(), "\" (lease ",
                            (*existing)->lease, ", ", old.ok() ? old->address() : "unreadable", ")"));
    if (absl::Status s = etcd_->RevokeLease((*existing)->lease); !s.ok() && !absl::IsNotFound(s)) return s;
  }

  auto lease = etcd_->GrantLease(options_.ttl);
  if (!lease.ok()) return lease.status();
  std::vector<std::pair<std::string, std::string>> claims;  // key, what names the holder
  claims.emplace_back(NodeIdKey(prefix, node.node_id()), absl::StrCat("node id ", node.node_id()));
  for (const RegionRecord& region : node.regions()) {
    claims.emplace_back(RegionKey(prefix, region.uuid()),
                        absl::StrCat("region ", region.uuid(), " (", region.kind(), " ", region.path(), ")"));
  }
  for (const auto& [key, what] : claims) {
    auto held = etcd_->PutIfAbsent(key, node.name(), *lease);
    if (held.ok() && held->has_value() && (*held)->value == node.name() && (*held)->lease != *lease) {
      // Left by an earlier claim of this very node (an attempt whose lease could not be
      // revoked, or an incarnation before): the name is this daemon's now (checked above).
      (void)etcd_->RevokeLease((*held)->lease);
      held = etcd_->PutIfAbsent(key, node.name(), *lease);
    }
    absl::Status refused;
    if (!held.ok()) {
      refused = held.status();
    } else if (held->has_value()) {
      refused = absl::FailedPreconditionError(absl::StrCat(what, " is claimed in etcd by node \"", (*held)->value,
                                                           "\": two nodes cannot manage it"));
    }
    if (!refused.ok()) {
      (void)etcd_->RevokeLease(*lease);
      return refused;
    }
  }
  auto raced = etcd_->PutIfAbsent(node_key, NodeToJson(node), *lease);
  if (!raced.ok() || raced->has_value()) {
    (void)etcd_->RevokeLease(*lease);
    return raced.ok() ? absl::FailedPreconditionError(absl::StrCat("node \"", node.name(),
                                                                   "\" was registered by another daemon meanwhile"))
                      : raced.status();
  }
  absl::MutexLock lock(&mu_);
  lease_ = *lease;
  return absl::OkStatus();
}

void NodeRegistration::Renew() {
  int64_t lease = 0;
  {
    absl::MutexLock lock(&mu_);
    if (lost_) return;
    lease = lease_;
  }
  const NodeRecord node = hooks_.snapshot();
  absl::Status renewed = etcd_->KeepAlive(lease);
  if (renewed.ok()) renewed = etcd_->Put(NodeKey(options_.prefix, node.name()), NodeToJson(node), lease);
  if (absl::IsNotFound(renewed)) {
    // The lease expired while etcd was away (or someone revoked it): claim again.
    hooks_.log(absl::StrCat("etcd lease ", lease, " expired; registering again"));
    renewed = Claim();
    if (renewed.ok()) hooks_.log(absl::StrCat("registered again under lease ", this->lease()));
  }
  std::string line;
  bool lost_now = false;
  {
    absl::MutexLock lock(&mu_);
    if (absl::IsFailedPrecondition(renewed)) {
      lost_ = lost_now = true;
    } else if (!renewed.ok() && !etcd_down_) {
      etcd_down_ = true;
      line = absl::StrCat("cannot renew the cluster registration (serving on): ", renewed.ToString());
    } else if (renewed.ok() && etcd_down_) {
      etcd_down_ = false;
      line = "cluster registration renewed again";
    }
  }
  if (!line.empty()) hooks_.log(line);
  if (lost_now) hooks_.on_lost(renewed);
}

}  // namespace sparsepool::cluster

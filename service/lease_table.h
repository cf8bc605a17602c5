// Client leases. A client that names itself in requests (client_id) holds a lease
// that each of its requests, KeepAlive among them, renews; the sequences it created
// belong to the lease. When a lease is not renewed within the timeout, the pool
// reclaims its sequences: a decode worker that crashed does not leak pool memory.
//
// A lease is fenced once its client takes part in release fencing
// (common/release_fence.h): from then on the pool reuses released memory only after
// the client has acknowledged the release's epoch, or lost its lease.
//
// Not thread-safe: the pool serialises access.
#ifndef SPARSEPOOL_SERVICE_LEASE_TABLE_H_
#define SPARSEPOOL_SERVICE_LEASE_TABLE_H_

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/layout.h"

namespace sparsepool {

class LeaseTable {
 public:
  explicit LeaseTable(absl::Duration timeout) : timeout_(timeout) {}

  absl::Duration timeout() const { return timeout_; }

  // Starts or renews `client`'s lease. A lease started here belongs to `tenant` (empty:
  // a daemon without tenants) for as long as it lives: another tenant's calls cannot
  // use its client id (Pool checks TenantOf).
  void Renew(absl::string_view client, absl::Time now, absl::string_view tenant);
  bool Contains(absl::string_view client) const { return leases_.contains(client); }
  // The tenant of `client`'s lease; null when it holds none.
  const std::string* TenantOf(absl::string_view client) const;
  // Leases `tenant` holds.
  size_t CountOf(absl::string_view tenant) const;
  void AddSequence(absl::string_view client, SequenceId id, absl::Time now, absl::string_view tenant);
  void RemoveSequence(absl::string_view client, SequenceId id);
  size_t SequenceCount(absl::string_view client) const;

  // Makes `client`'s lease fenced (starting it if needed) and raises its acknowledged
  // epoch to `acknowledged`. Returns whether the lowest acknowledgement over all fenced
  // leases rose (memory waiting for it may have become reusable).
  bool Acknowledge(absl::string_view client, uint64_t acknowledged, absl::Time now, absl::string_view tenant);
  // The client is fenced no longer (it closed); returns whether that raised the lowest
  // acknowledged epoch.
  bool Unfence(absl::string_view client);
  // The epoch every fenced lease has acknowledged; UINT64_MAX when none is fenced.
  uint64_t LowestAcknowledged() const;
  // A fenced lease whose acknowledgement is the lowest, for messages; empty when none.
  std::string SlowestFenced() const;
  size_t fenced() const { return acknowledged_.size(); }
  // The epoch `client` acknowledged, if its lease is fenced.
  std::optional<uint64_t> AcknowledgedBy(absl::string_view client) const;

  struct Expired {
    std::string client;
    std::vector<SequenceId> sequences;
  };
  // Removes and returns every lease not renewed since now - timeout.
  std::vector<Expired> TakeExpired(absl::Time now);

  size_t size() const { return leases_.size(); }

 private:
  struct Lease {
    std::string tenant;
    absl::Time renewed;
    absl::flat_hash_set<SequenceId> sequences;
    bool fenced = false;
    uint64_t acknowledged = 0;
  };
  absl::Duration timeout_;
  // The lease of `client`, started for `tenant` when it holds none.
  Lease& Touch(absl::string_view client, absl::string_view tenant);

  absl::flat_hash_map<std::string, Lease> leases_;
  absl::flat_hash_map<std::string, size_t> per_tenant_;  // leases by tenant
  // The acknowledged epoch of every fenced lease, with the lease's client.
  std::set<std::pair<uint64_t, std::string>> acknowledged_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_LEASE_TABLE_H_

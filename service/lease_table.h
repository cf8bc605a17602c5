// Client leases. A client that names itself in requests (client_id) holds a lease
// that each of its requests, KeepAlive among them, renews; the sequences it created
// belong to the lease. When a lease is not renewed within the timeout, the pool
// reclaims its sequences: a decode worker that crashed does not leak pool memory.
//
// A lease is fenced once its client takes part in release fencing
// (common/release_fence.h): from then on the pool reuses released memory only after
// the client has acknowledged the release's epoch, or lost its lease. Fencing is per
// connection (a fence session: one client's lease loop), because one client id may
// write through two connections at once; a session that stops renewing stops holding
// memory after the lease timeout, like a lease.
//
// Not thread-safe: the pool serialises access.
#ifndef SPARSEPOOL_SERVICE_LEASE_TABLE_H_
#define SPARSEPOOL_SERVICE_LEASE_TABLE_H_

#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
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

  // Most fence sessions one lease may hold: a client's connections, not a number it
  // can grow by naming new ones.
  static constexpr size_t kMaxFenceSessions = 16;
  // Makes `session` of `client`'s lease fenced (starting the lease if needed) and raises
  // its acknowledged epoch to `acknowledged`. Returns whether the lowest acknowledgement
  // over all fence sessions rose (memory waiting for it may have become reusable), or
  // ResourceExhausted when the lease holds kMaxFenceSessions others.
  absl::StatusOr<bool> Acknowledge(absl::string_view client, uint64_t session, uint64_t acknowledged,
                                   absl::Time now, absl::string_view tenant);
  // The session is fenced no longer (its connection closed); returns whether that raised
  // the lowest acknowledged epoch. The client's other sessions stay fenced.
  bool Unfence(absl::string_view client, uint64_t session);
  // Drops the fence sessions not renewed since now - timeout (of leases still renewed
  // by another session); returns whether that raised the lowest acknowledged epoch.
  bool DropStaleFences(absl::Time now);
  // The epoch every fence session has acknowledged; UINT64_MAX when none is fenced.
  uint64_t LowestAcknowledged() const;
  // The client of a fence session whose acknowledgement is the lowest, for messages;
  // empty when none.
  std::string SlowestFenced() const;
  size_t fenced() const { return acknowledged_.size(); }
  // The epoch `session` of `client` acknowledged, if it is fenced.
  std::optional<uint64_t> AcknowledgedBy(absl::string_view client, uint64_t session) const;

  struct Expired {
    std::string client;
    std::vector<SequenceId> sequences;
  };
  // Removes and returns every lease not renewed since now - timeout.
  std::vector<Expired> TakeExpired(absl::Time now);

  size_t size() const { return leases_.size(); }

 private:
  struct Fence {
    uint64_t acknowledged = 0;
    absl::Time renewed;
  };
  struct Lease {
    std::string tenant;
    absl::Time renewed;
    absl::flat_hash_set<SequenceId> sequences;
    absl::flat_hash_map<uint64_t, Fence> fences;  // by fence session
  };
  absl::Duration timeout_;
  // The lease of `client`, started for `tenant` when it holds none.
  Lease& Touch(absl::string_view client, absl::string_view tenant);

  absl::flat_hash_map<std::string, Lease> leases_;
  absl::flat_hash_map<std::string, size_t> per_tenant_;  // leases by tenant
  // Forgets every fence session of `lease` for which `stale` holds.
  template <typename Predicate>
  void DropFences(const std::string& client, Lease& lease, Predicate stale);

  // The acknowledged epoch of every fence session, with its client and session.
  std::set<std::tuple<uint64_t, std::string, uint64_t>> acknowledged_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_LEASE_TABLE_H_

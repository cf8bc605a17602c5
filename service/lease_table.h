// Client leases. A client that names itself in requests (client_id) holds a lease
// that each of its requests, KeepAlive among them, renews; the sequences it created
// belong to the lease. When a lease is not renewed within the timeout, the pool
// reclaims its sequences: a decode worker that crashed does not leak pool memory.
//
// Not thread-safe: the pool serialises access.
#ifndef SPARSEPOOL_SERVICE_LEASE_TABLE_H_
#define SPARSEPOOL_SERVICE_LEASE_TABLE_H_

#include <string>
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

  // Starts or renews `client`'s lease.
  void Renew(absl::string_view client, absl::Time now);
  void AddSequence(absl::string_view client, SequenceId id, absl::Time now);
  void RemoveSequence(absl::string_view client, SequenceId id);
  size_t SequenceCount(absl::string_view client) const;

  struct Expired {
    std::string client;
    std::vector<SequenceId> sequences;
  };
  // Removes and returns every lease not renewed since now - timeout.
  std::vector<Expired> TakeExpired(absl::Time now);

  size_t size() const { return leases_.size(); }

 private:
  struct Lease {
    absl::Time renewed;
    absl::flat_hash_set<SequenceId> sequences;
  };
  absl::Duration timeout_;
  absl::flat_hash_map<std::string, Lease> leases_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_LEASE_TABLE_H_

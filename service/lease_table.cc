#include "service/lease_table.h"

#include <algorithm>

namespace sparsepool {

void LeaseTable::Renew(absl::string_view client, absl::Time now) {
  leases_[client].renewed = now;
}

void LeaseTable::AddSequence(absl::string_view client, SequenceId id, absl::Time now) {
  Lease& lease = leases_[client];
  lease.renewed = std::max(lease.renewed, now);
  lease.sequences.insert(id);
}

void LeaseTable::RemoveSequence(absl::string_view client, SequenceId id) {
  auto it = leases_.find(client);
  if (it != leases_.end()) it->second.sequences.erase(id);
}

size_t LeaseTable::SequenceCount(absl::string_view client) const {
  auto it = leases_.find(client);
  return it == leases_.end() ? 0 : it->second.sequences.size();
}

std::vector<LeaseTable::Expired> LeaseTable::TakeExpired(absl::Time now) {
  std::vector<Expired> expired;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (now - it->second.renewed > timeout_) {
      Expired e{it->first, {it->second.sequences.begin(), it->second.sequences.end()}};
      std::sort(e.sequences.begin(), e.sequences.end());
      expired.push_back(std::move(e));
      leases_.erase(it++);
    } else {
      ++it;
    }
  }
  return expired;
}

}  // namespace sparsepool

#include "service/lease_table.h"

#include <algorithm>
#include <limits>

namespace sparsepool {

LeaseTable::Lease& LeaseTable::Touch(absl::string_view client, absl::string_view tenant) {
  auto [it, started] = leases_.try_emplace(client);
  if (started) {
    it->second.tenant = std::string(tenant);
    ++per_tenant_[tenant];
  }
  return it->second;
}

void LeaseTable::Renew(absl::string_view client, absl::Time now, absl::string_view tenant) {
  Touch(client, tenant).renewed = now;
}

size_t LeaseTable::CountOf(absl::string_view tenant) const {
  auto it = per_tenant_.find(tenant);
  return it == per_tenant_.end() ? 0 : it->second;
}

const std::string* LeaseTable::TenantOf(absl::string_view client) const {
  auto it = leases_.find(client);
  return it == leases_.end() ? nullptr : &it->second.tenant;
}

void LeaseTable::AddSequence(absl::string_view client, SequenceId id, absl::Time now, absl::string_view tenant) {
  Lease& lease = Touch(client, tenant);
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

bool LeaseTable::Acknowledge(absl::string_view client, uint64_t acknowledged, absl::Time now,
                             absl::string_view tenant) {
  const uint64_t lowest_before = LowestAcknowledged();
  Lease& lease = Touch(client, tenant);
  lease.renewed = std::max(lease.renewed, now);
  if (lease.fenced) {
    if (acknowledged <= lease.acknowledged) return false;
    acknowledged_.erase({lease.acknowledged, std::string(client)});
  }
  lease.fenced = true;
  lease.acknowledged = std::max(lease.acknowledged, acknowledged);
  acknowledged_.emplace(lease.acknowledged, std::string(client));
  return LowestAcknowledged() > lowest_before;
}

bool LeaseTable::Unfence(absl::string_view client) {
  auto it = leases_.find(client);
  if (it == leases_.end() || !it->second.fenced) return false;
  const uint64_t lowest_before = LowestAcknowledged();
  acknowledged_.erase({it->second.acknowledged, it->first});
  it->second.fenced = false;
  return LowestAcknowledged() > lowest_before;
}

uint64_t LeaseTable::LowestAcknowledged() const {
  return acknowledged_.empty() ? std::numeric_limits<uint64_t>::max() : acknowledged_.begin()->first;
}

std::string LeaseTable::SlowestFenced() const {
  return acknowledged_.empty() ? std::string() : acknowledged_.begin()->second;
}

std::optional<uint64_t> LeaseTable::AcknowledgedBy(absl::string_view client) const {
  auto it = leases_.find(client);
  if (it == leases_.end() || !it->second.fenced) return std::nullopt;
  return it->second.acknowledged;
}

std::vector<LeaseTable::Expired> LeaseTable::TakeExpired(absl::Time now) {
  std::vector<Expired> expired;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (now - it->second.renewed > timeout_) {
      if (it->second.fenced) acknowledged_.erase({it->second.acknowledged, it->first});
      Expired e{it->first, {it->second.sequences.begin(), it->second.sequences.end()}};
      std::sort(e.sequences.begin(), e.sequences.end());
      expired.push_back(std::move(e));
      if (auto count = per_tenant_.find(it->second.tenant); count != per_tenant_.end() && --count->second == 0) {
        per_tenant_.erase(count);
      }
      leases_.erase(it++);
    } else {
      ++it;
    }
  }
  return expired;
}

}  // namespace sparsepool

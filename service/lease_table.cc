#include "service/lease_table.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/log.h"

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

absl::StatusOr<bool> LeaseTable::Acknowledge(absl::string_view client, uint64_t session, uint64_t acknowledged,
                                              absl::Time now, absl::string_view tenant) {
  const uint64_t lowest_before = LowestAcknowledged();
  Lease& lease = Touch(client, tenant);
  lease.renewed = std::max(lease.renewed, now);
  auto it = lease.fences.find(session);
  if (it == lease.fences.end()) {
    if (lease.fences.size() >= kMaxFenceSessions) {
      return absl::ResourceExhaustedError(absl::StrCat("client \"", Quoted(client), "\" already has ",
                                                       kMaxFenceSessions,
                                                       " fenced connections; close one before opening another"));
    }
    it = lease.fences.emplace(session, Fence{acknowledged, now}).first;
    acknowledged_.emplace(acknowledged, std::string(client), session);
    return LowestAcknowledged() > lowest_before;
  }
  Fence& fence = it->second;
  fence.renewed = std::max(fence.renewed, now);
  if (acknowledged <= fence.acknowledged) return false;
  acknowledged_.erase({fence.acknowledged, std::string(client), session});
  fence.acknowledged = acknowledged;
  acknowledged_.emplace(fence.acknowledged, std::string(client), session);
  return LowestAcknowledged() > lowest_before;
}

template <typename Predicate>
void LeaseTable::DropFences(const std::string& client, Lease& lease, Predicate stale) {
  for (auto it = lease.fences.begin(); it != lease.fences.end();) {
    if (stale(it->second)) {
      acknowledged_.erase({it->second.acknowledged, client, it->first});
      lease.fences.erase(it++);
    } else {
      ++it;
    }
  }
}

bool LeaseTable::Unfence(absl::string_view client, uint64_t session) {
  auto lease = leases_.find(client);
  if (lease == leases_.end()) return false;
  auto fence = lease->second.fences.find(session);
  if (fence == lease->second.fences.end()) return false;
  const uint64_t lowest_before = LowestAcknowledged();
  acknowledged_.erase({fence->second.acknowledged, lease->first, session});
  lease->second.fences.erase(fence);
  return LowestAcknowledged() > lowest_before;
}

bool LeaseTable::DropStaleFences(absl::Time now) {
  const uint64_t lowest_before = LowestAcknowledged();
  for (auto& [client, lease] : leases_) {
    DropFences(client, lease, [&](const Fence& fence) { return now - fence.renewed > timeout_; });
  }
  return LowestAcknowledged() > lowest_before;
}

uint64_t LeaseTable::LowestAcknowledged() const {
  return acknowledged_.empty() ? std::numeric_limits<uint64_t>::max() : std::get<0>(*acknowledged_.begin());
}

std::string LeaseTable::SlowestFenced() const {
  return acknowledged_.empty() ? std::string() : std::get<1>(*acknowledged_.begin());
}

std::optional<uint64_t> LeaseTable::AcknowledgedBy(absl::string_view client, uint64_t session) const {
  auto lease = leases_.find(client);
  if (lease == leases_.end()) return std::nullopt;
  auto fence = lease->second.fences.find(session);
  if (fence == lease->second.fences.end()) return std::nullopt;
  return fence->second.acknowledged;
}

std::vector<LeaseTable::Expired> LeaseTable::TakeExpired(absl::Time now) {
  std::vector<Expired> expired;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (now - it->second.renewed > timeout_) {
      DropFences(it->first, it->second, [](const Fence&) { return true; });
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

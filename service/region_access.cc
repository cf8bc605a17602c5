#include "service/region_access.h"

#include <algorithm>

namespace sparsepool {

RegionAccess::RegionAccess(std::vector<std::vector<std::string>> region_tenants)
    : region_tenants_(std::move(region_tenants)) {
  for (uint32_t r = 0; r < region_tenants_.size(); ++r) {
    if (region_tenants_[r].empty()) shared_.push_back(r);
    for (const std::string& tenant : region_tenants_[r]) {
      std::vector<uint32_t>& regions = dedicated_[tenant];
      if (regions.empty() || regions.back() != r) regions.push_back(r);
    }
  }
  if (!shared_.empty()) domains_.push_back(shared_);
  // One domain per distinct set of dedicated regions, in a stable order.
  std::vector<std::vector<uint32_t>> sets;
  for (const auto& [tenant, regions] : dedicated_) sets.push_back(regions);
  std::sort(sets.begin(), sets.end());
  sets.erase(std::unique(sets.begin(), sets.end()), sets.end());
  for (auto& set : sets) domains_.push_back(std::move(set));
}

const std::vector<uint32_t>& RegionAccess::RegionsOf(absl::string_view tenant) const {
  auto it = dedicated_.find(tenant);
  return it != dedicated_.end() ? it->second : shared_;
}

bool RegionAccess::Serves(uint32_t region, absl::string_view tenant) const {
  const std::vector<uint32_t>& regions = RegionsOf(tenant);
  return std::binary_search(regions.begin(), regions.end(), region);
}

std::optional<size_t> RegionAccess::DomainOf(absl::string_view tenant) const {
  const std::vector<uint32_t>& own = RegionsOf(tenant);
  for (size_t d = 0; d < domains_.size(); ++d) {
    if (domains_[d] == own) return d;
  }
  return std::nullopt;
}

std::optional<size_t> RegionAccess::DomainFor(absl::string_view tenant, uint32_t region) const {
  if (Serves(region, tenant)) return DomainOf(tenant);
  for (size_t d = 0; d < domains_.size(); ++d) {
    if (std::binary_search(domains_[d].begin(), domains_[d].end(), region)) return d;
  }
  return std::nullopt;
}

}  // namespace sparsepool

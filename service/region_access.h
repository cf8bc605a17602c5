// Which tenants' sequences each region may hold, and the groups of regions the RDMA
// data plane registers together (its domains). A region given `tenant=` options
// (transport/cxl/region_spec.h) is dedicated to those tenants; one without is shared.
// A tenant with dedicated regions lives only in them; every other tenant, and every
// caller of a daemon without tenants, in the shared ones. The daemon sets the file
// owner and mode of a dedicated region so that only its tenants' workers can map it,
// and each domain gets its own RDMA registrations (a verbs protection domain, a UCX
// worker in a process of its own), so a tenant's keys reach only its regions.
#ifndef SPARSEPOOL_SERVICE_REGION_ACCESS_H_
#define SPARSEPOOL_SERVICE_REGION_ACCESS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace sparsepool {

class RegionAccess {
 public:
  // Every region shared: a daemon without dedicated regions.
  explicit RegionAccess(size_t regions) : RegionAccess(std::vector<std::vector<std::string>>(regions)) {}
  // region_tenants[r]: the tenants region r is dedicated to; empty: shared.
  explicit RegionAccess(std::vector<std::vector<std::string>> region_tenants);

  size_t region_count() const { return region_tenants_.size(); }
  // Whether a sequence of `tenant` may live in region `region`.
  bool Serves(uint32_t region, absl::string_view tenant) const;
  // The regions `tenant`'s sequences live in, in index order (empty: none serves it).
  const std::vector<uint32_t>& RegionsOf(absl::string_view tenant) const;
  // Whether `tenant` has regions of its own (else it shares the shared ones).
  bool HasOwnRegions(absl::string_view tenant) const { return dedicated_.contains(tenant); }
  // Whether any region is dedicated.
  bool HasDedicated() const { return !dedicated_.empty(); }
  const std::vector<std::string>& TenantsOf(uint32_t region) const { return region_tenants_[region]; }

  // The data plane's domains: each a distinct set of regions (region indices, ascending)
  // that some caller may reach. The shared regions, when there are any, are domain 0.
  const std::vector<std::vector<uint32_t>>& domains() const { return domains_; }
  // The domain of `tenant`'s own regions (the one its RDMA connections belong to);
  // nullopt when no region serves it.
  std::optional<size_t> DomainOf(absl::string_view tenant) const;
  // The domain whose registrations `tenant` gets for region `region`: its own when it
  // reaches the region; otherwise (an operator looking at a tenant's sequence) the
  // first domain holding the region. nullopt when no domain holds it.
  std::optional<size_t> DomainFor(absl::string_view tenant, uint32_t region) const;

 private:
  std::vector<std::vector<std::string>> region_tenants_;
  std::vector<uint32_t> shared_;
  absl::flat_hash_map<std::string, std::vector<uint32_t>> dedicated_;  // by tenant
  std::vector<std::vector<uint32_t>> domains_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_REGION_ACCESS_H_

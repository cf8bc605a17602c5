// What memory a region is made of, as an operator writes it in a flag or config file:
//   shm:NAME:SIZE              a file NAME under /dev/shm (or an absolute path)
//   hugetlbfs:PATH:SIZE        a file on a hugetlbfs mount
//   devdax:/dev/daxX.Y[:SIZE]  CXL memory in device-DAX mode (size read from sysfs)
//   numa:N:NAME:SIZE           a shm file whose pages are bound to NUMA node N (a CXL
//                              expander onlined as a CPU-less node), through libnuma
// followed by options, each ",KEY=VALUE":
//   tenant=NAME     dedicates the region to tenant NAME (repeatable: a tenant group);
//                   service/region_access.h says what that means
//   owner=USER|UID  group=GROUP|GID  the file's owner and group, set by the daemon
//   mode=OCTAL      the file's permission bits, set by the daemon (a dedicated region
//                   defaults to 0600 with only owner=, 0660 with group=)
// e.g. shm:acme-kv:64GiB,tenant=acme,owner=acme-workers,mode=0600
// (so a region's path cannot contain a comma).
#ifndef SPARSEPOOL_TRANSPORT_CXL_REGION_SPEC_H_
#define SPARSEPOOL_TRANSPORT_CXL_REGION_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparsepool {

enum class RegionKind { kShm, kHugetlbfs, kDevdax, kNuma };

struct RegionSpec {
  RegionKind kind = RegionKind::kShm;
  std::string path;         // the file or device that is mapped
  uint64_t size_bytes = 0;  // 0 for devdax: the device's size
  int numa_node = -1;       // kNuma only
  // Who may map it. Unset: the file is left as it is (a new one gets 0660 less the umask).
  std::vector<std::string> tenants;  // the tenants it is dedicated to; empty: shared
  std::optional<uint32_t> owner_uid;
  std::optional<uint32_t> group_gid;
  std::optional<uint32_t> mode;  // permission bits, at most 0777
};

absl::StatusOr<RegionSpec> ParseRegionSpec(absl::string_view text);
absl::StatusOr<RegionKind> ParseRegionKind(absl::string_view name);
const char* RegionKindName(RegionKind kind);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_CXL_REGION_SPEC_H_

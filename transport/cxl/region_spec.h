// What memory a region is made of, as an operator writes it in a flag or config file:
//   shm:NAME:SIZE              a file NAME under /dev/shm (or an absolute path)
//   hugetlbfs:PATH:SIZE        a file on a hugetlbfs mount
//   devdax:/dev/daxX.Y[:SIZE]  CXL memory in device-DAX mode (size read from sysfs)
//   numa:N:NAME:SIZE           a shm file whose pages are bound to NUMA node N (a CXL
//                              expander onlined as a CPU-less node), through libnuma
#ifndef SPARSEPOOL_TRANSPORT_CXL_REGION_SPEC_H_
#define SPARSEPOOL_TRANSPORT_CXL_REGION_SPEC_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparsepool {

enum class RegionKind { kShm, kHugetlbfs, kDevdax, kNuma };

struct RegionSpec {
  RegionKind kind = RegionKind::kShm;
  std::string path;         // the file or device that is mapped
  uint64_t size_bytes = 0;  // 0 for devdax: the device's size
  int numa_node = -1;       // kNuma only
};

absl::StatusOr<RegionSpec> ParseRegionSpec(absl::string_view text);
absl::StatusOr<RegionKind> ParseRegionKind(absl::string_view name);
const char* RegionKindName(RegionKind kind);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_CXL_REGION_SPEC_H_

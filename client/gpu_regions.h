// Pool regions mapped into this process and registered with CUDA (cudaHostRegister,
// mapped for the GPU), once per process: every GpuFetcher and DecodeSession of a decode
// worker shares one registry. Registering pins every page of a region, which takes
// time (seconds for tens of GiB): call Register for the pool's regions before the first
// decode step (a warm-up), not on its path.
//
// Thread-safe. Destroy it only after every kernel that reads its regions has finished.
#ifndef SPARSEPOOL_CLIENT_GPU_REGIONS_H_
#define SPARSEPOOL_CLIENT_GPU_REGIONS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/layout.h"
#include "transport/cxl/cxl_data_plane.h"

namespace sparsepool {

class GpuRegionRegistry {
 public:
  struct Region {
    std::byte* host = nullptr;          // the mapping in this process
    std::byte* device = nullptr;        // the same bytes as the GPU addresses them
    uint64_t bytes = 0;
  };

  // FailedPrecondition when this process sees no CUDA device.
  static absl::StatusOr<std::unique_ptr<GpuRegionRegistry>> Create();
  ~GpuRegionRegistry();
  GpuRegionRegistry(const GpuRegionRegistry&) = delete;
  GpuRegionRegistry& operator=(const GpuRegionRegistry&) = delete;

  // The region of a layout, mapped (its header checked against the layout's uuid) and
  // registered the first time it is named.
  absl::StatusOr<Region> Register(const RegionRef& ref);
  // Bytes pinned for the GPU so far, over every region.
  uint64_t pinned_bytes() const;
  size_t regions() const;

 private:
  GpuRegionRegistry() = default;

  mutable absl::Mutex mu_;
  CxlDataPlane mappings_;  // maps regions and checks their headers
  absl::flat_hash_map<std::string, Region> registered_ ABSL_GUARDED_BY(mu_);  // by uuid
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_GPU_REGIONS_H_

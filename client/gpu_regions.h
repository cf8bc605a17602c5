// Pool regions mapped into this process and registered with CUDA (cudaHostRegister,
// mapped for the GPU), once per process: every DecodeSession of a decode worker (and
// the benchmarks' GpuFetcher) shares one registry. Registering pins every page of a
// region, which takes time (seconds for tens of GiB): call RegisterRegionOf for the
// pool's regions before the first decode step (a warm-up), not on its path.
//
// Thread-safe. Destroy it only after every kernel that reads its regions has finished.
#ifndef SPARSEPOOL_CLIENT_GPU_REGIONS_H_
#define SPARSEPOOL_CLIENT_GPU_REGIONS_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/sparsepool_client.h"

namespace sparsepool {

struct RegionRef;  // common/layout.h: a region as a sequence's layout names it

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

  // Maps and registers the region that holds sequence `id` (asked of `client`), if it
  // is not yet: the warm-up before a worker's first decode step.
  absl::Status RegisterRegionOf(Client& client, SequenceId id);
  // The region of a layout, mapped (its header checked against the layout's uuid) and
  // registered the first time it is named. For the client's own GPU path, which has
  // layouts (client_internal.h); engines call RegisterRegionOf.
  absl::StatusOr<Region> Register(const RegionRef& ref);
  // Bytes pinned for the GPU so far, over every region.
  uint64_t pinned_bytes() const;
  size_t regions() const;

 private:
  struct State;  // the mappings and what is registered, in gpu_regions.cc
  explicit GpuRegionRegistry(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_GPU_REGIONS_H_

// GpuRegionRegistry in a build without the CUDA toolkit: Create says why there is none,
// so no registry exists and nothing else here is reached.
#include "client/gpu_regions.h"

#include "common/built_without_cuda.h"

namespace sparsepool {

struct GpuRegionRegistry::State {};

GpuRegionRegistry::GpuRegionRegistry(std::unique_ptr<State> state) : state_(std::move(state)) {}
GpuRegionRegistry::~GpuRegionRegistry() = default;

absl::StatusOr<std::unique_ptr<GpuRegionRegistry>> GpuRegionRegistry::Create() {
  return BuiltWithoutCuda("registering pool regions for the GPU");
}

absl::Status GpuRegionRegistry::RegisterRegionOf(Client&, SequenceId) {
  return BuiltWithoutCuda("registering pool regions for the GPU");
}
absl::StatusOr<GpuRegionRegistry::Region> GpuRegionRegistry::Register(const RegionRef&) {
  return BuiltWithoutCuda("registering pool regions for the GPU");
}
uint64_t GpuRegionRegistry::pinned_bytes() const { return 0; }
size_t GpuRegionRegistry::regions() const { return 0; }

}  // namespace sparsepool

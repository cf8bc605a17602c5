#include "client/gpu_regions.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"

namespace sparsepool {

absl::StatusOr<std::unique_ptr<GpuRegionRegistry>> GpuRegionRegistry::Create() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    return absl::FailedPreconditionError("no CUDA device: the GPU path needs one");
  }
  return std::unique_ptr<GpuRegionRegistry>(new GpuRegionRegistry());
}

GpuRegionRegistry::~GpuRegionRegistry() {
  absl::MutexLock lock(&mu_);
  for (auto& [uuid, region] : registered_) cudaHostUnregister(region.host);
}

absl::StatusOr<GpuRegionRegistry::Region> GpuRegionRegistry::Register(const RegionRef& ref) {
  const std::string key(reinterpret_cast<const char*>(ref.uuid.data()), ref.uuid.size());
  absl::MutexLock lock(&mu_);
  if (auto it = registered_.find(key); it != registered_.end()) return it->second;
  auto base = mappings_.RegionBase(ref);
  if (!base.ok()) return base.status();
  if (cudaError_t e = cudaHostRegister(*base, ref.size_bytes, cudaHostRegisterMapped); e != cudaSuccess) {
    cudaGetLastError();
    return absl::InternalError(absl::StrCat("registering region ", ref.path, " (", ref.size_bytes,
                                            " bytes) with CUDA: ", cudaGetErrorString(e)));
  }
  void* device = nullptr;
  if (cudaError_t e = cudaHostGetDevicePointer(&device, *base, 0); e != cudaSuccess) {
    cudaGetLastError();
    cudaHostUnregister(*base);
    return absl::InternalError(absl::StrCat("mapping region ", ref.path, " for the GPU: ", cudaGetErrorString(e)));
  }
  Region region{*base, static_cast<std::byte*>(device), ref.size_bytes};
  registered_.emplace(key, region);
  return region;
}

uint64_t GpuRegionRegistry::pinned_bytes() const {
  absl::MutexLock lock(&mu_);
  uint64_t bytes = 0;
  for (const auto& [uuid, region] : registered_) bytes += region.bytes;
  return bytes;
}

size_t GpuRegionRegistry::regions() const {
  absl::MutexLock lock(&mu_);
  return registered_.size();
}

}  // namespace sparsepool

#include "client/gpu_regions.h"

#include <cuda_runtime_api.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/client_internal.h"
#include "common/layout.h"
#include "kernels/cuda_pointer.h"
#include "transport/cxl/cxl_data_plane.h"

namespace sparsepool {

struct GpuRegionRegistry::State {
  mutable absl::Mutex mu;
  CxlDataPlane mappings;  // maps regions and checks their headers
  absl::flat_hash_map<std::string, Region> registered ABSL_GUARDED_BY(mu);  // by uuid
};

GpuRegionRegistry::GpuRegionRegistry(std::unique_ptr<State> state) : state_(std::move(state)) {}

absl::StatusOr<std::unique_ptr<GpuRegionRegistry>> GpuRegionRegistry::Create() {
  if (absl::Status s = kernels::RequireCudaDevice("the GPU path"); !s.ok()) return s;
  return std::unique_ptr<GpuRegionRegistry>(new GpuRegionRegistry(std::make_unique<State>()));
}

GpuRegionRegistry::~GpuRegionRegistry() {
  absl::MutexLock lock(&state_->mu);
  for (auto& [uuid, region] : state_->registered) cudaHostUnregister(region.host);
}

absl::Status GpuRegionRegistry::RegisterRegionOf(Client& client, SequenceId id) {
  auto layout = internal::CachedLayout(client, id);
  if (!layout.ok()) return layout.status();
  for (uint32_t stripe = 0; stripe < (*layout)->stripes(); ++stripe) {
    if (auto registered = Register((*layout)->StripeRegion(stripe)); !registered.ok()) return registered.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<GpuRegionRegistry::Region> GpuRegionRegistry::Register(const RegionRef& ref) {
  const std::string key(reinterpret_cast<const char*>(ref.uuid.data()), ref.uuid.size());
  absl::MutexLock lock(&state_->mu);
  if (auto it = state_->registered.find(key); it != state_->registered.end()) return it->second;
  auto base = state_->mappings.RegionBase(ref);
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
  state_->registered.emplace(key, region);
  return region;
}

uint64_t GpuRegionRegistry::pinned_bytes() const {
  absl::MutexLock lock(&state_->mu);
  uint64_t bytes = 0;
  for (const auto& [uuid, region] : state_->registered) bytes += region.bytes;
  return bytes;
}

size_t GpuRegionRegistry::regions() const {
  absl::MutexLock lock(&state_->mu);
  return state_->registered.size();
}

}  // namespace sparsepool

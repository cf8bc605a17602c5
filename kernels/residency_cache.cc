#include "kernels/residency_cache.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "kernels/cuda_pointer.h"
#include "kernels/residency_kernels.h"

namespace sparsepool::kernels {
namespace {

absl::Status CudaError(const char* what, cudaError_t error) {
  cudaGetLastError();
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(error)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ResidencyCache>> ResidencyCache::Create(const ResidencyOptions& o) {
  if (o.instances == 0 || o.max_tokens == 0 || o.entry_bytes == 0) {
    return absl::InvalidArgumentError("instances, max_tokens and entry_bytes must be positive");
  }
  if (o.lookup_threads != 256 && o.lookup_threads != 512 && o.lookup_threads != 1024) {
    return absl::InvalidArgumentError(absl::StrCat("lookup_threads ", o.lookup_threads, " is not 256, 512 or 1024"));
  }
  if (o.capacity == 0 || o.capacity > kMaxResidencyCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("capacity ", o.capacity, " is out of range [1, ",
                                                   kMaxResidencyCapacity, "]"));
  }
  std::unique_ptr<ResidencyCache> cache(new ResidencyCache(o));
  ResidencyState& s = cache->state_;
  s.instances = o.instances;
  s.capacity = o.capacity;
  s.max_tokens = o.max_tokens;
  s.entry_bytes = o.entry_bytes;
  s.policy = o.policy;
  s.lookup_threads = o.lookup_threads;
  s.fill_warps = o.fill_warps;
  const uint64_t slots = uint64_t{o.instances} * o.capacity;
  struct Allocation {
    void** pointer;
    uint64_t bytes;
  };
  for (Allocation a : {Allocation{reinterpret_cast<void**>(&s.token_slot), uint64_t{o.instances} * o.max_tokens * 4},
                       Allocation{reinterpret_cast<void**>(&s.slot_token), slots * 4},
                       Allocation{reinterpret_cast<void**>(&s.slot_score), slots * 4},
                       Allocation{reinterpret_cast<void**>(&s.slot_last), slots * 4},
                       Allocation{reinterpret_cast<void**>(&s.slot_data), slots * o.entry_bytes},
                       Allocation{reinterpret_cast<void**>(&s.miss_positions), slots * sizeof(uint16_t)},
                       Allocation{reinterpret_cast<void**>(&s.miss_counts), uint64_t{o.instances} * 4},
                       Allocation{reinterpret_cast<void**>(&cache->counters_), sizeof(ResidencyCounters)}}) {
    if (cudaError_t e = cudaMalloc(a.pointer, a.bytes); e != cudaSuccess) {
      cudaGetLastError();
      return absl::ResourceExhaustedError(absl::StrCat("residency cache: cannot allocate ", a.bytes,
                                                       " bytes of GPU memory: ", cudaGetErrorString(e)));
    }
  }
  for (uint32_t i = 0; i < o.instances; ++i) {
    if (absl::Status reset = cache->Reset(i, nullptr); !reset.ok()) return reset;
  }
  if (cudaError_t e = cudaMemset(cache->counters_, 0, sizeof(ResidencyCounters)); e != cudaSuccess) {
    return CudaError("zeroing counters", e);
  }
  if (cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess) return CudaError("creating the cache", e);
  return cache;
}

ResidencyCache::~ResidencyCache() {
  for (void* p : {static_cast<void*>(state_.token_slot), static_cast<void*>(state_.slot_token),
                  static_cast<void*>(state_.slot_score), static_cast<void*>(state_.slot_last),
                  static_cast<void*>(state_.slot_data), static_cast<void*>(state_.miss_positions),
                  static_cast<void*>(state_.miss_counts), static_cast<void*>(counters_)}) {
    if (p != nullptr) cudaFree(p);
  }
}

absl::Status ResidencyCache::Reset(uint32_t instance, cudaStream_t stream) {
  if (instance >= options_.instances) {
    return absl::InvalidArgumentError(absl::StrCat("instance ", instance, " is out of range (",
                                                   options_.instances, " instances)"));
  }
  const uint64_t c = state_.capacity;
  cudaError_t e = cudaMemsetAsync(state_.token_slot + uint64_t{instance} * state_.max_tokens, 0xFF,
                                  uint64_t{state_.max_tokens} * 4, stream);  // -1
  if (e == cudaSuccess) e = cudaMemsetAsync(state_.slot_token + instance * c, 0xFF, c * 4, stream);
  if (e == cudaSuccess) e = cudaMemsetAsync(state_.slot_score + instance * c, 0, c * 4, stream);
  if (e == cudaSuccess) e = cudaMemsetAsync(state_.slot_last + instance * c, 0, c * 4, stream);
  if (e != cudaSuccess) return CudaError("resetting a residency-cache instance", e);
  return absl::OkStatus();
}

absl::StatusOr<ResidencyLaunch> ResidencyCache::Prepare(const ResidencyStepArgs& a) const {
  if (a.k > kMaxResidencyK) {
    return absl::InvalidArgumentError(absl::StrCat("k ", a.k, " is above ", kMaxResidencyK));
  }
  if (a.k > state_.capacity) {
    return absl::InvalidArgumentError(absl::StrCat("k ", a.k, " is above the cache capacity of ",
                                                   state_.capacity, " slots: every selected entry needs a slot"));
  }
  for (auto [pointer, name] : {std::pair<const void*, const char*>{a.rows, "rows"},
                               {a.instances, "instances"},
                               {a.indices, "indices"},
                               {a.out_slots, "out_slots"},
                               {a.fault, "fault"}}) {
    if (absl::Status s = CheckGpuPointer(pointer, name); !s.ok()) return s;
  }
  for (auto [pointer, name] : {std::pair<const void*, const char*>{a.region, "region"},
                               {a.step_counter, "step_counter"}}) {
    if (pointer == nullptr) continue;  // optional
    if (absl::Status s = CheckGpuPointer(pointer, name); !s.ok()) return s;
  }
  ResidencyLaunch launch;
  launch.state = state_;
  launch.region = a.region;
  launch.rows = a.rows;
  launch.instances = a.instances;
  launch.indices = a.indices;
  launch.out_slots = a.out_slots;
  launch.batch = a.batch;
  launch.k = a.k;
  launch.step = a.step;
  launch.step_counter = a.step_counter;
  launch.flat_slots = a.flat_slots;
  launch.fault = a.fault;
  launch.counters = counters_;
  return launch;
}

absl::Status ResidencyCache::Step(const ResidencyStepArgs& a, cudaStream_t stream) {
  if (absl::Status s = Lookup(a, stream); !s.ok()) return s;
  return Fill(a, stream);
}

absl::Status ResidencyCache::Launch(const ResidencyStepArgs& a, cudaStream_t stream,
                                    cudaError_t (*kernel)(const ResidencyLaunch&, cudaStream_t), const char* what) {
  if (a.batch == 0 || a.k == 0) return absl::OkStatus();
  auto launch = Prepare(a);
  if (!launch.ok()) return launch.status();
  if (cudaError_t e = kernel(*launch, stream); e != cudaSuccess) return CudaError(what, e);
  return absl::OkStatus();
}

absl::Status ResidencyCache::Lookup(const ResidencyStepArgs& a, cudaStream_t stream) {
  return Launch(a, stream, &LaunchResidencyLookup, "residency lookup launch");
}

absl::Status ResidencyCache::Fill(const ResidencyStepArgs& a, cudaStream_t stream) {
  return Launch(a, stream, &LaunchResidencyFill, "residency fill launch");
}

absl::Status ResidencyCache::ResetRange(uint32_t first, uint32_t count, cudaStream_t stream) {
  if (first > options_.instances || count > options_.instances - first) {
    return absl::InvalidArgumentError(absl::StrCat("instances [", first, ", ", uint64_t{first} + count,
                                                   ") are out of range (", options_.instances, " instances)"));
  }
  if (count == 0) return absl::OkStatus();
  if (cudaError_t e = LaunchResidencyReset(state_, first, count, stream); e != cudaSuccess) {
    return CudaError("resetting residency-cache instances", e);
  }
  return absl::OkStatus();
}

absl::StatusOr<ResidencyCounters> ResidencyCache::Counters() const {
  ResidencyCounters counters{};
  if (cudaError_t e = cudaMemcpy(&counters, counters_, sizeof(counters), cudaMemcpyDeviceToHost);
      e != cudaSuccess) {
    return CudaError("reading residency counters", e);
  }
  return counters;
}

}  // namespace sparsepool::kernels

// Launch helpers for the kernels in topk_gather_kernels.cu; no checks here (the
// launcher in topk_gather.cc does them). Kept free of Abseil so nvcc never compiles it.
#ifndef SPARSEPOOL_KERNELS_TOPK_GATHER_KERNELS_H_
#define SPARSEPOOL_KERNELS_TOPK_GATHER_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/gather_types.h"

namespace sparsepool::kernels {

// Largest k the sorted kernel takes: its keys live in shared memory and carry the
// position in 12 bits.
inline constexpr uint32_t kMaxSortedK = 4096;

cudaError_t LaunchWarpPerEntry(const GatherLaunch& launch, int blocks, cudaStream_t stream);
// The batch sort's limits: keys hold the region offset above 20 bits of entry number.
inline constexpr uint64_t kMaxBatchSortedEntries = uint64_t{1} << 20;
inline constexpr uint64_t kMaxBatchSortedRegion = uint64_t{1} << 44;

// Scratch bytes the batch sort of `entries` entries needs.
uint64_t BatchSortScratchBytes(uint64_t entries);
cudaError_t LaunchBatchSorted(const GatherLaunch& launch, int blocks, cudaStream_t stream);
cudaError_t LaunchWriteBackKernel(const WriteBackLaunch& launch, cudaStream_t stream);
cudaError_t LaunchSorted(const GatherLaunch& launch, uint32_t slices, cudaStream_t stream);

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_TOPK_GATHER_KERNELS_H_

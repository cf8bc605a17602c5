// GPU top-k gather, and its reverse, write-back. The gather copies the entries a decode batch selected for one layer from a
// region mapped into the worker and registered for the GPU (cudaHostRegister, the
// stand-in for CXL memory the GPU loads from) into a buffer in HBM, in one kernel, on
// the caller's stream.
//
// Index checks happen on the GPU, where the indices are: an index past a row's tokens
// (or below -1) is never dereferenced; the kernel records the first one in a fault
// record that the caller turns into InvalidArgument once the stream has reached it.
#ifndef SPARSEPOOL_KERNELS_TOPK_GATHER_H_
#define SPARSEPOOL_KERNELS_TOPK_GATHER_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "kernels/gather_types.h"

namespace sparsepool::kernels {

// Checks every pointer (GPU-accessible, not null), the shape, the output size and the
// stream, naming the bad argument, then launches asynchronously on `stream`.
absl::Status LaunchTopKGather(const GatherLaunch& launch, cudaStream_t stream);

// Device scratch bytes kBatchSortedByAddress needs for a batch of batch x k entries.
uint64_t GatherScratchBytes(uint64_t batch_times_k);

// Write-back of newly decoded tokens (one entry per row) from HBM into the pool, with
// the same checks; a bad token is reported through launch.fault like a bad index.
absl::Status LaunchWriteBack(const WriteBackLaunch& launch, cudaStream_t stream);

// After the stream has passed the gather: OK, or InvalidArgument naming the sequence,
// layer, batch row, position and index of the first bad index.
absl::Status FaultToStatus(const GatherFault& fault, absl::Span<const uint64_t> sequence_ids,
                           absl::Span<const uint64_t> tokens, uint32_t layer);

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_TOPK_GATHER_H_

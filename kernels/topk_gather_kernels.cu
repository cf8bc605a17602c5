// The gather kernels behind kernels/topk_gather.h.
#include <cub/block/block_radix_sort.cuh>
#include <cub/device/device_radix_sort.cuh>

#include "kernels/device_entry.cuh"
#include "kernels/topk_gather_kernels.h"

namespace sparsepool::kernels {
namespace {

constexpr uint64_t kNoEntry = ~uint64_t{0};

// Region offset of a checked index, or kNoEntry for padding and bad indices (the
// latter recorded).
__device__ uint64_t EntryOffset(const GatherLaunch& p, const RowPages& rp, uint32_t row,
                                uint32_t position, int32_t index) {
  if (index == -1 || rp.page_offsets == nullptr) return kNoEntry;
  if (index < -1 || static_cast<uint64_t>(index) >= rp.tokens) {
    RecordFault(p.fault, kFaultBadIndex, row, position, index);
    return kNoEntry;
  }
  return RowEntryOffset(rp, static_cast<uint32_t>(index));
}

}  // namespace

__global__ void GatherWarpPerEntryKernel(GatherLaunch p) {
  const uint32_t lane = threadIdx.x & 31;
  const uint64_t warps = (uint64_t(gridDim.x) * blockDim.x) >> 5;
  const uint64_t total = uint64_t(p.batch) * p.k;
  for (uint64_t e = (uint64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; e < total; e += warps) {
    const uint32_t row = static_cast<uint32_t>(e / p.k);
    const uint32_t position = static_cast<uint32_t>(e % p.k);
    const RowPages rp = p.rows[row];
    const uint64_t offset = EntryOffset(p, rp, row, position, p.indices[e]);
    if (p.out_flat != nullptr && lane == 0) p.out_flat[e] = offset == kNoEntry ? -1 : static_cast<int32_t>(e);
    if (offset == kNoEntry) continue;
    CopyEntry(RowRegion(rp, p.region) + offset, p.out + e * p.entry_bytes, p.entry_bytes, lane);
  }
}

// Block (row, slice): sorts the row's entries by their address in the region, then its
// warps copy the slice-th part of the sorted list, consecutive warps on neighbouring
// addresses. Address order, not token order: pages of a row need not be in order.
// Key: region offset above 12 bits of position (k <= 4096), offsets below 2^52.
template <int kThreads, int kItems>
__global__ void __launch_bounds__(kThreads) GatherSortedKernel(GatherLaunch p, uint32_t slices) {
  using Sort = cub::BlockRadixSort<uint64_t, kThreads, kItems>;
  __shared__ union {
    typename Sort::TempStorage sort;
    uint64_t sorted[kThreads * kItems];
  } shared;
  const uint32_t row = blockIdx.x / slices;
  const uint32_t slice = blockIdx.x % slices;
  const RowPages rp = p.rows[row];
  const int32_t* indices = p.indices + uint64_t(row) * p.k;

  uint64_t keys[kItems];
  for (int i = 0; i < kItems; ++i) {
    const uint32_t position = threadIdx.x * kItems + i;
    keys[i] = kNoEntry;
    if (position < p.k) {
      const int32_t index = indices[position];
      int32_t* flat = p.out_flat != nullptr && slice == 0 ? p.out_flat + uint64_t(row) * p.k + position : nullptr;
      // Only slice 0 records faults, so each bad index is recorded once.
      if (rp.page_offsets == nullptr || index == -1 || index < -1 || static_cast<uint64_t>(index) >= rp.tokens) {
        if (rp.page_offsets != nullptr && index != -1 && slice == 0) {
          RecordFault(p.fault, kFaultBadIndex, row, position, index);
        }
        if (flat != nullptr) *flat = -1;
        continue;
      }
      if (flat != nullptr) *flat = static_cast<int32_t>(uint64_t(row) * p.k + position);
      keys[i] = (RowEntryOffset(rp, static_cast<uint32_t>(index)) << 12) | position;
    }
  }
  Sort(shared.sort).SortBlockedToStriped(keys);
  __syncthreads();
  for (int i = 0; i < kItems; ++i) shared.sorted[i * kThreads + threadIdx.x] = keys[i];
  __syncthreads();

  const uint32_t begin = uint64_t(p.k) * slice / slices;
  const uint32_t end = uint64_t(p.k) * (slice + 1) / slices;
  const uint32_t lane = threadIdx.x & 31;
  const std::byte* region = RowRegion(rp, p.region);
  for (uint32_t j = begin + threadIdx.x / 32; j < end; j += kThreads / 32) {
    const uint64_t key = shared.sorted[j];
    if (key == kNoEntry) break;  // invalid and padding keys sort last
    const uint32_t position = static_cast<uint32_t>(key & 0xFFF);
    CopyEntry(region + (key >> 12), p.out + (uint64_t(row) * p.k + position) * p.entry_bytes,
              p.entry_bytes, lane);
  }
}

// One warp per row stores that row's new entry into the pool (zero-copy writes over
// the link); a token past the row's tokens is recorded, never written.
__global__ void WriteBackKernel(WriteBackLaunch p) {
  const uint32_t row = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  const uint32_t lane = threadIdx.x & 31;
  if (row >= p.batch) return;
  const RowPages rp = p.rows[row];
  if (rp.page_offsets == nullptr) return;  // an inactive row
  const int32_t token = p.tokens != nullptr ? p.tokens[row] : static_cast<int32_t>(rp.tokens) - 1;
  if (token == -1) return;
  if (token < -1 || static_cast<uint64_t>(token) >= rp.tokens) {
    if (lane == 0) RecordFault(p.fault, kFaultBadIndex, row, 0, token);
    return;
  }
  // Lane 0 reads the record; the warp writes only if it still shows the sequence live.
  const std::byte* region = RowRegion(rp, p.region);
  const bool live = !p.check_record ||
                    __shfl_sync(0xFFFFFFFF,
                                lane == 0 ? RecordShowsLive(RowRecordRegion(rp, p.region), rp.record_offset, rp.sequence_id)
                                          : false,
                                0);
  if (!live) {
    if (lane == 0) RecordFault(p.fault, kFaultReleased, row, 0, token);
    return;
  }
  const uint64_t offset = RowEntryOffset(rp, static_cast<uint32_t>(token));
  CopyEntry(p.entries + uint64_t(row) * p.entry_bytes, const_cast<std::byte*>(region) + offset, p.entry_bytes, lane);
}

// Batch sort, step 1: one key per entry, region offset above 20 bits of entry number;
// padding and bad indices (recorded) get the largest key and sort last.
__global__ void BatchSortKeysKernel(GatherLaunch p, uint64_t* keys) {
  const uint64_t e = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x;
  if (e >= uint64_t(p.batch) * p.k) return;
  const uint32_t row = static_cast<uint32_t>(e / p.k);
  const uint32_t position = static_cast<uint32_t>(e % p.k);
  const uint64_t offset = EntryOffset(p, p.rows[row], row, position, p.indices[e]);
  if (p.out_flat != nullptr) p.out_flat[e] = offset == kNoEntry ? -1 : static_cast<int32_t>(e);
  keys[e] = offset == kNoEntry ? kNoEntry : (offset << 20) | e;
}

// Step 3: warps copy the entries in sorted order.
__global__ void BatchSortedCopyKernel(GatherLaunch p, const uint64_t* sorted) {
  const uint64_t warps = (uint64_t(gridDim.x) * blockDim.x) >> 5;
  const uint32_t lane = threadIdx.x & 31;
  const uint64_t total = uint64_t(p.batch) * p.k;
  for (uint64_t j = (uint64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; j < total; j += warps) {
    const uint64_t key = sorted[j];
    if (key == kNoEntry) return;  // the rest are padding or bad
    const uint64_t e = key & 0xFFFFF;
    CopyEntry(RowRegion(p.rows[e / p.k], p.region) + (key >> 20), p.out + e * p.entry_bytes, p.entry_bytes, lane);
  }
}

// Scratch layout: keys, sorted keys, then cub's temporary storage.
uint64_t BatchSortScratchBytes(uint64_t entries) {
  size_t temp = 0;
  cub::DeviceRadixSort::SortKeys(nullptr, temp, static_cast<const uint64_t*>(nullptr),
                                 static_cast<uint64_t*>(nullptr), static_cast<int>(entries), 20, 64);
  return 2 * entries * sizeof(uint64_t) + temp;
}

cudaError_t LaunchBatchSorted(const GatherLaunch& p, int blocks, cudaStream_t stream) {
  const uint64_t n = uint64_t(p.batch) * p.k;
  uint64_t* keys = static_cast<uint64_t*>(p.scratch);
  uint64_t* sorted = keys + n;
  void* temp = sorted + n;
  size_t temp_bytes = p.scratch_bytes - 2 * n * sizeof(uint64_t);
  BatchSortKeysKernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(p, keys);
  cudaError_t e = cub::DeviceRadixSort::SortKeys(temp, temp_bytes, keys, sorted, static_cast<int>(n), 20, 64, stream);
  if (e != cudaSuccess) return e;
  BatchSortedCopyKernel<<<blocks, 256, 0, stream>>>(p, sorted);
  return cudaGetLastError();
}

cudaError_t LaunchWriteBackKernel(const WriteBackLaunch& p, cudaStream_t stream) {
  WriteBackKernel<<<(p.batch * 32 + 255) / 256, 256, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchWarpPerEntry(const GatherLaunch& p, int blocks, cudaStream_t stream) {
  GatherWarpPerEntryKernel<<<blocks, 256, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchSorted(const GatherLaunch& p, uint32_t slices, cudaStream_t stream) {
  const unsigned blocks = p.batch * slices;
  if (p.k <= 256 * 8) {
    GatherSortedKernel<256, 8><<<blocks, 256, 0, stream>>>(p, slices);
  } else {
    GatherSortedKernel<256, 16><<<blocks, 256, 0, stream>>>(p, slices);
  }
  return cudaGetLastError();
}

}  // namespace sparsepool::kernels

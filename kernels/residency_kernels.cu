// The residency-cache step: a lookup kernel with one block per batch row (one cache
// instance) assigns slots and lists the misses; a fill kernel with many blocks per row
// copies the misses' entries from the pool into their slots. (One block per row copying
// its own misses left a batch of one on one SM, latency-bound over PCIe: 2x slower than
// the plain gather.) See residency_types.h for the algorithm and the policy;
// residency_model.cc is the same algorithm on the CPU, and the two agree slot for slot.
#include <algorithm>

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>

#include "kernels/device_entry.cuh"
#include "kernels/residency_kernels.h"

namespace sparsepool::kernels {
namespace {

// The lookup kernel runs kThreads x kItems = 4096 positions or slots per block; how the
// 4096 are split between threads is a tuning choice (ResidencyOptions::lookup_threads):
// more threads make the block's radix sort of slot keys faster.
constexpr int kFillThreads = 256;
constexpr uint32_t kMaxFillBlocksPerRow = 32;

template <int kThreads, int kItems>
__global__ void __launch_bounds__(kThreads) ResidencyStepKernel(ResidencyLaunch p) {
  using Scan = cub::BlockScan<int, kThreads>;
  using Sort = cub::BlockRadixSort<uint64_t, kThreads, kItems>;
  // Shared memory must stay under 48 KB: the victims reuse the sort's storage, and
  // positions and the used-this-step set are packed.
  __shared__ union {
    typename Scan::TempStorage scan;
    typename Sort::TempStorage sort;
    uint64_t victims[kThreads * kItems];
  } temp;
  __shared__ uint16_t miss_position[kThreads * kItems];
  __shared__ uint32_t used[kThreads * kItems / 32];
  __shared__ int miss_count;
  __shared__ unsigned long long hits;

  const uint32_t row = blockIdx.x;
  const ResidencyState& s = p.state;
  const uint32_t instance = p.instances[row];
  if (instance >= s.instances) {  // the whole block agrees: no barrier is skipped by some
    if (threadIdx.x == 0) RecordFault(p.fault, kFaultInstance, row, 0, static_cast<int32_t>(instance));
    return;
  }
  const RowPages rp = p.rows[row];
  if (rp.page_offsets == nullptr) {  // an inactive row: nothing selected, nothing missed
    for (uint32_t position = threadIdx.x; position < p.k; position += kThreads) {
      p.out_slots[uint64_t(row) * p.k + position] = -1;
    }
    if (threadIdx.x == 0) s.miss_counts[instance] = 0;
    return;
  }
  const uint32_t step = p.step_counter != nullptr ? *p.step_counter : p.step;
  // Slot numbers as written to out_slots: per instance, or flat over all instances.
  const int32_t slot_base = p.flat_slots ? static_cast<int32_t>(instance * s.capacity) : 0;
  int32_t* token_slot = s.token_slot + uint64_t(instance) * s.max_tokens;
  int32_t* slot_token = s.slot_token + uint64_t(instance) * s.capacity;
  uint32_t* slot_score = s.slot_score + uint64_t(instance) * s.capacity;
  uint32_t* slot_last = s.slot_last + uint64_t(instance) * s.capacity;
  const int32_t* indices = p.indices + uint64_t(row) * p.k;
  int32_t* out = p.out_slots + uint64_t(row) * p.k;
  const uint64_t limit = rp.tokens < s.max_tokens ? rp.tokens : s.max_tokens;

  for (uint32_t w = threadIdx.x; w < kThreads * kItems / 32; w += kThreads) used[w] = 0;
  if (threadIdx.x == 0) hits = 0;
  __syncthreads();

  // Every load that does not depend on another is issued before any is used, so their
  // latencies overlap (a chain of dependent loads per item cost most of this kernel's
  // time): the slots' state, which step 1 does not change, then the positions' indices,
  // then the slots those indices map to.
  uint32_t old_score[kItems], old_last[kItems];
  int32_t old_token[kItems];
  for (int i = 0; i < kItems; ++i) {
    const uint32_t c = threadIdx.x * kItems + i;
    if (c < s.capacity) {
      old_score[i] = slot_score[c];
      old_token[i] = slot_token[c];
      old_last[i] = slot_last[c];
    }
  }
  int32_t index_of[kItems];
  for (int i = 0; i < kItems; ++i) {
    const uint32_t position = threadIdx.x * kItems + i;
    index_of[i] = position < p.k ? indices[position] : -1;
  }
  int32_t slot_of[kItems];
  for (int i = 0; i < kItems; ++i) {
    const int32_t index = index_of[i];
    slot_of[i] = index >= 0 && static_cast<uint64_t>(index) < limit ? token_slot[index] : -1;
  }

  // 1. Look up every position; a miss is claimed by the first position that sees it.
  int owns_miss[kItems];
  bool duplicate[kItems];
  unsigned long long my_hits = 0;
  for (int i = 0; i < kItems; ++i) {
    const uint32_t position = threadIdx.x * kItems + i;
    owns_miss[i] = 0;
    duplicate[i] = false;
    if (position >= p.k) continue;
    const int32_t index = index_of[i];
    if (index == -1) {
      out[position] = -1;
      continue;
    }
    if (index < -1 || static_cast<uint64_t>(index) >= limit) {
      RecordFault(p.fault, kFaultBadIndex, row, position, index);
      out[position] = -1;
      continue;
    }
    const int32_t slot = slot_of[i];  // token_slot changes only in step 4, after a barrier
    if (slot >= 0) {
      atomicOr(&used[slot / 32], 1u << (slot % 32));
      out[position] = slot_base + slot;
      ++my_hits;
      continue;
    }
    const int32_t previous = atomicCAS(&token_slot[index], -1, kPendingSlot);
    if (previous == -1) {
      owns_miss[i] = 1;
    } else {
      duplicate[i] = true;
      RecordFault(p.fault, kFaultDuplicateToken, row, position, index);
    }
  }
  atomicAdd(&hits, my_hits);

  // 2. Misses ranked in position order.
  int rank[kItems];
  int total = 0;
  Scan(temp.scan).ExclusiveSum(owns_miss, rank, total);
  for (int i = 0; i < kItems; ++i) {
    if (owns_miss[i]) miss_position[rank[i]] = threadIdx.x * kItems + i;
  }
  if (threadIdx.x == 0) miss_count = total;
  __syncthreads();

  // 3. Age every slot and order the ones not used this step for eviction.
  uint64_t keys[kItems];
  for (int i = 0; i < kItems; ++i) {
    const uint32_t c = threadIdx.x * kItems + i;
    keys[i] = kUsedThisStep;
    if (c >= s.capacity) continue;
    const bool is_used = (used[c / 32] >> (c % 32)) & 1;
    const uint32_t score = AgedScore(old_score[i], is_used);
    slot_score[c] = score;
    if (is_used) {
      slot_last[c] = step;
    } else {
      keys[i] = EvictionKey(s.policy, old_token[i] < 0, score, old_last[i], c);
    }
  }
  __syncthreads();  // the scan's storage is reused by the sort
  Sort(temp.sort).SortBlockedToStriped(keys);
  __syncthreads();
  for (int i = 0; i < kItems; ++i) temp.victims[i * kThreads + threadIdx.x] = keys[i];
  __syncthreads();

  // 4. Miss j takes victim j.
  const int misses = miss_count;
  for (int j = threadIdx.x; j < misses; j += kThreads) {
    const uint32_t position = miss_position[j];
    const int32_t token = indices[position];
    const uint64_t key = temp.victims[j];
    if (key == kUsedThisStep) {  // more misses than free or evictable slots
      RecordFault(p.fault, kFaultCapacity, row, position, token);
      token_slot[token] = -1;
      out[position] = -1;
      continue;
    }
    const uint32_t victim = static_cast<uint32_t>(key & 0xFFFF);
    const int32_t evicted = slot_token[victim];
    if (evicted >= 0) token_slot[evicted] = -1;
    slot_token[victim] = token;
    slot_score[victim] = kScoreOnUse;
    slot_last[victim] = step;
    token_slot[token] = static_cast<int32_t>(victim);
    out[position] = slot_base + static_cast<int32_t>(victim);
  }
  __syncthreads();

  // 5. Duplicates read the slot their first position got.
  for (int i = 0; i < kItems; ++i) {
    if (duplicate[i]) {
      const uint32_t position = threadIdx.x * kItems + i;
      const int32_t slot = token_slot[indices[position]];
      out[position] = slot < 0 ? slot : slot_base + slot;
    }
  }

  // 6. Hand the misses to the fill kernel.
  uint16_t* positions = s.miss_positions + uint64_t(instance) * s.capacity;
  for (int j = threadIdx.x; j < misses; j += kThreads) positions[j] = static_cast<uint16_t>(miss_position[j]);
  if (threadIdx.x == 0) {
    s.miss_counts[instance] = static_cast<uint32_t>(misses);
    atomicAdd(&p.counters->hits, hits);
    atomicAdd(&p.counters->misses, static_cast<unsigned long long>(misses));
  }
}

// Copies each listed miss's entry from the pool into its slot, a warp per entry, the
// warps of gridDim.x blocks sharing one row (blockIdx.y).
__global__ void __launch_bounds__(kFillThreads) ResidencyFillKernel(ResidencyLaunch p) {
  const uint32_t row = blockIdx.y;
  const ResidencyState& s = p.state;
  const uint32_t instance = p.instances[row];
  if (instance >= s.instances) return;  // the lookup kernel recorded the fault
  const uint32_t misses = s.miss_counts[instance];
  const uint16_t* positions = s.miss_positions + uint64_t(instance) * s.capacity;
  const int32_t* indices = p.indices + uint64_t(row) * p.k;
  const int32_t* out = p.out_slots + uint64_t(row) * p.k;
  std::byte* slot_data = s.slot_data + uint64_t(instance) * s.capacity * s.entry_bytes;
  const RowPages rp = p.rows[row];
  const std::byte* region = RowRegion(rp, p.region);
  const int32_t slot_base = p.flat_slots ? static_cast<int32_t>(instance * s.capacity) : 0;
  const uint32_t lane = threadIdx.x & 31;
  const uint32_t warps = gridDim.x * (kFillThreads / 32);
  for (uint32_t j = blockIdx.x * (kFillThreads / 32) + threadIdx.x / 32; j < misses; j += warps) {
    const uint32_t position = positions[j];
    const int32_t slot = out[position] - slot_base;
    if (out[position] < 0) continue;  // over capacity: recorded as a fault
    const uint32_t token = static_cast<uint32_t>(indices[position]);
    CopyEntry(region + RowEntryOffset(rp, token), slot_data + uint64_t(slot) * s.entry_bytes, s.entry_bytes, lane);
  }
}

// The same copies with the batch's misses taken in row order by every warp of the grid:
// miss g of the whole batch goes to warp g (grid-stride), so the entries in flight at
// once come from few rows. GPU loads from host memory slow down when the addresses in
// flight span many gigabytes (translations, docs/gpu.md); one kernel row per block
// spread every row's misses over the link at once.
__global__ void __launch_bounds__(kFillThreads) ResidencyFillRowMajorKernel(ResidencyLaunch p) {
  constexpr int kRowsPerThread = 4;  // kFillThreads x 4 = 1024 rows at most (a session's batch)
  using Scan = cub::BlockScan<uint32_t, kFillThreads>;
  __shared__ typename Scan::TempStorage scan;
  __shared__ uint32_t first_miss[kFillThreads * kRowsPerThread + 1];  // of each row, in the batch's order
  const ResidencyState& s = p.state;
  uint32_t counts[kRowsPerThread];
  for (int i = 0; i < kRowsPerThread; ++i) {
    const uint32_t row = threadIdx.x * kRowsPerThread + i;
    counts[i] = 0;
    if (row < p.batch) {
      const uint32_t instance = p.instances[row];
      if (instance < s.instances) counts[i] = s.miss_counts[instance];
    }
  }
  uint32_t starts[kRowsPerThread];
  uint32_t total = 0;
  Scan(scan).ExclusiveSum(counts, starts, total);
  for (int i = 0; i < kRowsPerThread; ++i) first_miss[threadIdx.x * kRowsPerThread + i] = starts[i];
  if (threadIdx.x == 0) first_miss[kFillThreads * kRowsPerThread] = total;
  __syncthreads();
  const uint32_t lane = threadIdx.x & 31;
  const uint32_t warps = gridDim.x * (kFillThreads / 32);
  for (uint32_t g = blockIdx.x * (kFillThreads / 32) + threadIdx.x / 32; g < total; g += warps) {
    // The row whose misses hold g: the last row that starts at or before it.
    uint32_t low = 0, high = p.batch;  // first_miss[low] <= g < first_miss[high]
    while (high - low > 1) {
      const uint32_t mid = (low + high) / 2;
      if (first_miss[mid] <= g) {
        low = mid;
      } else {
        high = mid;
      }
    }
    const uint32_t row = low;
    const uint32_t j = g - first_miss[row];
    const uint32_t instance = p.instances[row];
    const uint32_t position = s.miss_positions[uint64_t(instance) * s.capacity + j];
    const int32_t flat = p.out_slots[uint64_t(row) * p.k + position];
    if (flat < 0) continue;  // over capacity: recorded as a fault
    const int32_t slot = flat - (p.flat_slots ? static_cast<int32_t>(instance * s.capacity) : 0);
    const uint32_t token = static_cast<uint32_t>(p.indices[uint64_t(row) * p.k + position]);
    const RowPages rp = p.rows[row];
    CopyEntry(RowRegion(rp, p.region) + RowEntryOffset(rp, token),
              s.slot_data + (uint64_t(instance) * s.capacity + slot) * s.entry_bytes, s.entry_bytes, lane);
  }
}

// Empties `count` instances from `first`: every token unmapped, every slot free.
__global__ void ResidencyResetKernel(ResidencyState s, uint32_t first, uint32_t count) {
  const uint64_t tokens = uint64_t(count) * s.max_tokens;
  const uint64_t slots = uint64_t(count) * s.capacity;
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < tokens; i += stride) {
    s.token_slot[uint64_t(first) * s.max_tokens + i] = -1;
  }
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < slots; i += stride) {
    const uint64_t c = uint64_t(first) * s.capacity + i;
    s.slot_token[c] = -1;
    s.slot_score[c] = 0;
    s.slot_last[c] = 0;
  }
}

}  // namespace

cudaError_t LaunchResidencyLookup(const ResidencyLaunch& launch, cudaStream_t stream) {
  switch (launch.state.lookup_threads) {
    case 1024:
      ResidencyStepKernel<1024, 4><<<launch.batch, 1024, 0, stream>>>(launch);
      break;
    case 256:
      ResidencyStepKernel<256, 16><<<launch.batch, 256, 0, stream>>>(launch);
      break;
    default:
      ResidencyStepKernel<512, 8><<<launch.batch, 512, 0, stream>>>(launch);
      break;
  }
  return cudaGetLastError();
}

cudaError_t LaunchResidencyFill(const ResidencyLaunch& launch, cudaStream_t stream) {
  if (launch.state.fill_warps != 0 && launch.batch <= kFillThreads * 4) {
    const uint32_t blocks = std::max(1u, launch.state.fill_warps / (kFillThreads / 32));
    ResidencyFillRowMajorKernel<<<blocks, kFillThreads, 0, stream>>>(launch);
    return cudaGetLastError();
  }
  // Enough warps per row for the misses of a typical step (a fifth of k or fewer)
  // to be copied about one per warp.
  const uint32_t blocks_per_row =
      std::max(1u, std::min(kMaxFillBlocksPerRow, launch.k / (5 * (kFillThreads / 32))));
  ResidencyFillKernel<<<dim3(blocks_per_row, launch.batch), kFillThreads, 0, stream>>>(launch);
  return cudaGetLastError();
}

cudaError_t LaunchResidencyStep(const ResidencyLaunch& launch, cudaStream_t stream) {
  if (cudaError_t e = LaunchResidencyLookup(launch, stream); e != cudaSuccess) return e;
  return LaunchResidencyFill(launch, stream);
}

cudaError_t LaunchResidencyReset(const ResidencyState& state, uint32_t first, uint32_t count, cudaStream_t stream) {
  const uint64_t items = uint64_t(count) * std::max(state.max_tokens, state.capacity);
  const unsigned blocks = static_cast<unsigned>(std::max<uint64_t>(1, std::min<uint64_t>(1024, (items + 255) / 256)));
  ResidencyResetKernel<<<blocks, 256, 0, stream>>>(state, first, count);
  return cudaGetLastError();
}

}  // namespace sparsepool::kernels

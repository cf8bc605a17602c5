#include "bench/stand_in_attention.h"

namespace sparsepool::bench {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxK = 4096;
// Blocks per batch row: enough warps that the kernel is bound by its arithmetic and by
// HBM, as attention is, not by the latency of one block's loads.
constexpr uint32_t kBlocksPerRow = 16;

__global__ void StandInAttentionKernel(StandInAttention a, AttentionPhase phase) {
  __shared__ uint32_t missed[kMaxK / 32];
  const uint32_t row = blockIdx.x / kBlocksPerRow;
  const uint32_t part = blockIdx.x % kBlocksPerRow;
  if (phase != AttentionPhase::kAll) {
    for (uint32_t w = threadIdx.x; w < kMaxK / 32; w += kThreads) missed[w] = 0;
    __syncthreads();
    const uint64_t instance = uint64_t(row) * a.layers + a.layer;
    const uint32_t count = a.miss_counts[instance];
    for (uint32_t j = threadIdx.x; j < count; j += kThreads) {
      const uint32_t position = a.miss_positions[instance * a.capacity + j];
      atomicOr(&missed[position / 32], 1u << (position % 32));
    }
    __syncthreads();
  }
  float acc = 0;
  const uint32_t vectors = a.entry_bytes / 16;
  // A warp per selected entry, its lanes over the entry's 16-byte vectors.
  constexpr uint32_t kWarps = kThreads / 32;
  for (uint32_t position = part * kWarps + threadIdx.x / 32; position < a.k; position += kBlocksPerRow * kWarps) {
    if (phase != AttentionPhase::kAll) {
      const bool is_miss = (missed[position / 32] >> (position % 32)) & 1;
      if (is_miss != (phase == AttentionPhase::kMissesOnly)) continue;
    }
    const int32_t index = a.flat[uint64_t(row) * a.k + position];
    if (index < 0) continue;
    const uint4* entry = reinterpret_cast<const uint4*>(a.entries + uint64_t(index) * a.entry_bytes);
    for (uint32_t v = threadIdx.x % 32; v < vectors; v += 32) {
      const uint4 x = entry[v];
      float f = __uint_as_float((x.x & 0x3FFFFFFF) | 0x3F000000);
      for (int r = 0; r < a.rounds; ++r) f = f * 0.999f + 0.5f;
      acc += f;
    }
  }
  if (acc == 1234.5f) *a.sink = acc;
}

}  // namespace

cudaError_t LaunchStandInAttention(const StandInAttention& a, AttentionPhase phase, cudaStream_t stream) {
  if (a.k > kMaxK) return cudaErrorInvalidValue;
  StandInAttentionKernel<<<a.batch * kBlocksPerRow, kThreads, 0, stream>>>(a, phase);
  return cudaGetLastError();
}

}  // namespace sparsepool::bench

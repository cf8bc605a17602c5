// The GPU residency cache's plain structs and its eviction policy, shared by the CUDA
// kernel, the host launcher and the CPU model (which must agree bit for bit).
//
// One cache instance serves one (sequence, layer): `capacity` slots of entries in HBM,
// and a direct map token -> slot (int32 per token of the sequence: 4 bytes per token
// and layer, 3% of the 132-byte indexer key the GPU already keeps per token and layer).
//
// Each decode step, for each row of a batch (one instance), the kernel:
//   1. looks up the indexer's top-k: a resident token is a hit;
//   2. ages every slot: score = score - score/128, plus 256 for a slot used this step;
//   3. picks victims among the slots not used this step, lowest key first:
//        empty slots, then by the policy's key, ties by slot index;
//   4. gives the misses, in position order, the victims in key order, copies their
//      entries from the pool into the slots, and writes each position's slot index
//      (-1 for padding) for the attention kernel to read.
//
// Policies:
//   kLru                  key = step of last use
//   kDecayedFrequency     key = (aged score, step of last use): a token selected in
//                         many recent steps outlives one selected once, later. On
//                         indexer traces, where most of a step's top-k was selected in
//                         the previous steps and the rest is partly drawn from tokens
//                         that recur, this keeps the recurring ones that LRU evicts.
#ifndef SPARSEPOOL_KERNELS_RESIDENCY_TYPES_H_
#define SPARSEPOOL_KERNELS_RESIDENCY_TYPES_H_

#include <cstddef>
#include <cstdint>

#include "kernels/gather_types.h"

#if defined(__CUDACC__)
#define SPARSEPOOL_HOST_DEVICE __host__ __device__
#else
#define SPARSEPOOL_HOST_DEVICE
#endif

namespace sparsepool::kernels {

enum class ResidencyPolicy : uint32_t { kLru = 0, kDecayedFrequency = 1 };

inline constexpr uint32_t kMaxResidencyCapacity = 4096;  // slots per instance
inline constexpr uint32_t kMaxResidencyK = 4096;
inline constexpr uint32_t kScoreOnUse = 256;
inline constexpr int32_t kPendingSlot = -2;  // a miss being filled this step

// Device arrays of all instances, instance-major.
struct ResidencyState {
  int32_t* token_slot = nullptr;  // [instances][max_tokens]: slot, or -1
  int32_t* slot_token = nullptr;  // [instances][capacity]: token, or -1
  uint32_t* slot_score = nullptr;  // [instances][capacity]
  uint32_t* slot_last = nullptr;   // [instances][capacity]: step of last use
  std::byte* slot_data = nullptr;  // [instances][capacity][entry_bytes]
  // A step's misses, handed from the lookup kernel (one block per row) to the fill
  // kernel (many blocks per row): positions [instances][capacity] and counts [instances].
  uint16_t* miss_positions = nullptr;
  uint32_t* miss_counts = nullptr;
  uint32_t instances = 0;
  uint32_t capacity = 0;
  uint32_t max_tokens = 0;
  uint32_t entry_bytes = 0;
  ResidencyPolicy policy = ResidencyPolicy::kDecayedFrequency;
  uint32_t lookup_threads = 512;  // threads of the lookup kernel's block: 256, 512 or 1024
  // Warps of the fill kernel when it takes the batch's misses in row order; 0: blocks
  // per row, every row at once.
  uint32_t fill_warps = 1024;
};

struct ResidencyCounters {
  unsigned long long hits;
  unsigned long long misses;
};


struct ResidencyLaunch {
  ResidencyState state;
  const std::byte* region = nullptr;   // device pointer of the registered pool region
  const RowPages* rows = nullptr;      // [batch] where each row's layer lives in the pool
  const uint32_t* instances = nullptr;  // [batch] cache instance of each row
  const int32_t* indices = nullptr;     // [batch][k]
  int32_t* out_slots = nullptr;         // [batch][k]
  uint32_t batch = 0;
  uint32_t k = 0;
  uint32_t step = 0;  // decode step, increasing
  // When set, the step is read here instead (device memory a step's first kernel
  // advances): a captured CUDA graph replays with a new step each time.
  const uint32_t* step_counter = nullptr;
  // Write flat slot indices, instance * capacity + slot, into out_slots: indices into
  // slot_data viewed as one array of entries (FlashMLA's form) rather than per instance.
  bool flat_slots = false;
  GatherFault* fault = nullptr;
  ResidencyCounters* counters = nullptr;
};

// Eviction order key of an occupied slot not used this step (smaller goes first).
// Empty slots sort before every occupied one; slots used this step after all.
inline constexpr uint64_t kUsedThisStep = ~uint64_t{0};
SPARSEPOOL_HOST_DEVICE inline uint64_t EvictionKey(ResidencyPolicy policy, bool empty,
                                                uint32_t score, uint32_t last, uint32_t slot) {
  if (empty) return slot;
  const uint64_t occupied = uint64_t{1} << 62;
  if (policy == ResidencyPolicy::kLru) return occupied | (uint64_t(last) << 16) | slot;
  // Scores stay below 128 * kScoreOnUse = 32768 (16 bits); steps take 30 bits.
  return occupied | (uint64_t(score & 0xFFFF) << 46) | (uint64_t(last & 0x3FFFFFFF) << 16) | slot;
}

SPARSEPOOL_HOST_DEVICE inline uint32_t AgedScore(uint32_t score, bool used) {
  // A slow decay (half-life about 90 steps) lets frequency count, not only recency:
  // measured on the overlap traces, decay 1/8 was LRU's equal, 1/32 and 1/128 beat
  // it by up to 5% and 14% fewer misses (docs/gpu.md).
  return score - (score >> 7) + (used ? kScoreOnUse : 0);
}

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_RESIDENCY_TYPES_H_

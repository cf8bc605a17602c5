// A stand-in for a sparse-attention kernel over a decode session's delivery (bench and
// example only): per batch row, it reads the entries its flat indices name and does a
// fixed amount of arithmetic per 16 bytes. With the residency cache it can run in two
// phases, the hits first (while the misses are still crossing the link) and then the
// misses, using the misses the cache's lookup listed.
#ifndef SPARSEPOOL_BENCH_STAND_IN_ATTENTION_H_
#define SPARSEPOOL_BENCH_STAND_IN_ATTENTION_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace sparsepool::bench {

struct StandInAttention {
  const std::byte* entries = nullptr;  // the delivery's entries
  const int32_t* flat = nullptr;       // [batch][k] flat indices, -1 = none
  uint32_t batch = 0;
  uint32_t k = 0;
  uint32_t entry_bytes = 0;
  int rounds = 32;  // multiply-adds per 16 bytes read
  // Residency cache only: the misses of row r's instance (r * layers + layer) are
  // miss_positions[instance * capacity + j] for j < miss_counts[instance].
  const uint16_t* miss_positions = nullptr;
  const uint32_t* miss_counts = nullptr;
  uint32_t layers = 0;
  uint32_t layer = 0;
  uint32_t capacity = 0;
  float* sink = nullptr;  // device; keeps the arithmetic from being optimised away
};

enum class AttentionPhase { kAll, kHitsOnly, kMissesOnly };

cudaError_t LaunchStandInAttention(const StandInAttention& a, AttentionPhase phase, cudaStream_t stream);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_STAND_IN_ATTENTION_H_

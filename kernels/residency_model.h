// The residency cache's algorithm on the CPU, one instance (one sequence-layer), step
// by step exactly as residency_kernels.cu does it (residency_types.h describes it).
// Tests check the GPU against it slot for slot; the policy is studied on it in CI.
#ifndef SPARSEPOOL_KERNELS_RESIDENCY_MODEL_H_
#define SPARSEPOOL_KERNELS_RESIDENCY_MODEL_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "kernels/residency_types.h"

namespace sparsepool::kernels {

class ResidencyModel {
 public:
  ResidencyModel(uint32_t capacity, uint32_t max_tokens, ResidencyPolicy policy);

  struct StepResult {
    std::vector<int32_t> slots;  // per position: slot, or -1 (padding, bad index)
    std::vector<int32_t> misses;  // positions whose entry must be fetched, in order
    uint32_t hits = 0;
    bool bad_index = false;
    bool capacity_exceeded = false;
  };
  // `tokens`: the sequence's valid token count.
  StepResult Step(absl::Span<const int32_t> indices, uint64_t tokens, uint32_t step);

  int32_t slot_of(uint32_t token) const { return token_slot_[token]; }
  int32_t token_in(uint32_t slot) const { return slot_token_[slot]; }
  uint32_t score(uint32_t slot) const { return slot_score_[slot]; }
  uint32_t last_use(uint32_t slot) const { return slot_last_[slot]; }

 private:
  uint32_t capacity_;
  ResidencyPolicy policy_;
  std::vector<int32_t> token_slot_;
  std::vector<int32_t> slot_token_;
  std::vector<uint32_t> slot_score_;
  std::vector<uint32_t> slot_last_;
};

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_RESIDENCY_MODEL_H_

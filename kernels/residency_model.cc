#include "kernels/residency_model.h"

#include <algorithm>

namespace sparsepool::kernels {

ResidencyModel::ResidencyModel(uint32_t capacity, uint32_t max_tokens, ResidencyPolicy policy)
    : capacity_(capacity), policy_(policy), token_slot_(max_tokens, -1), slot_token_(capacity, -1),
      slot_score_(capacity, 0), slot_last_(capacity, 0) {}

ResidencyModel::StepResult ResidencyModel::Step(absl::Span<const int32_t> indices, uint64_t tokens,
                                                uint32_t step) {
  StepResult result;
  result.slots.assign(indices.size(), -1);
  const uint64_t limit = std::min<uint64_t>(tokens, token_slot_.size());
  std::vector<bool> used(capacity_, false);
  std::vector<int32_t> duplicates;
  // 1. Look up; the first position of a missing token owns its miss.
  for (size_t position = 0; position < indices.size(); ++position) {
    const int32_t index = indices[position];
    if (index == -1) continue;
    if (index < -1 || static_cast<uint64_t>(index) >= limit) {
      result.bad_index = true;
      continue;
    }
    const int32_t slot = token_slot_[index];
    if (slot >= 0) {
      used[slot] = true;
      result.slots[position] = slot;
      ++result.hits;
    } else if (slot == -1) {
      token_slot_[index] = kPendingSlot;
      result.misses.push_back(static_cast<int32_t>(position));
    } else {
      duplicates.push_back(static_cast<int32_t>(position));
    }
  }
  // 2-3. Age every slot; order the unused ones for eviction.
  std::vector<uint64_t> keys;
  for (uint32_t c = 0; c < capacity_; ++c) {
    slot_score_[c] = AgedScore(slot_score_[c], used[c]);
    if (used[c]) {
      slot_last_[c] = step;
    } else {
      keys.push_back(EvictionKey(policy_, slot_token_[c] < 0, slot_score_[c], slot_last_[c], c));
    }
  }
  std::sort(keys.begin(), keys.end());
  // 4. Miss j takes victim j.
  for (size_t j = 0; j < result.misses.size(); ++j) {
    const int32_t position = result.misses[j];
    const int32_t token = indices[position];
    if (j >= keys.size()) {
      result.capacity_exceeded = true;
      token_slot_[token] = -1;
      continue;
    }
    const uint32_t victim = static_cast<uint32_t>(keys[j] & 0xFFFF);
    if (slot_token_[victim] >= 0) token_slot_[slot_token_[victim]] = -1;
    slot_token_[victim] = token;
    slot_score_[victim] = kScoreOnUse;
    slot_last_[victim] = step;
    token_slot_[token] = static_cast<int32_t>(victim);
    result.slots[position] = static_cast<int32_t>(victim);
  }
  for (int32_t position : duplicates) result.slots[position] = token_slot_[indices[position]];
  return result;
}

}  // namespace sparsepool::kernels

#include "service/granule_allocator.h"

namespace sparsepool {

GranuleAllocator::GranuleAllocator(uint64_t granules)
    : total_(granules), free_(granules), bits_((granules + 63) / 64, 0) {}

void GranuleAllocator::Mark(uint64_t first, uint64_t count, bool used) {
  for (uint64_t g = first; g < first + count; ++g) {
    const uint64_t mask = uint64_t{1} << (g % 64);
    if (used) {
      bits_[g / 64] |= mask;
    } else {
      bits_[g / 64] &= ~mask;
    }
  }
}

std::optional<uint64_t> GranuleAllocator::FindRun(uint64_t from, uint64_t to,
                                                  uint64_t count) const {
  uint64_t g = from;
  while (g < to && g + count <= total_) {
    // Skip whole words that are full.
    if (g % 64 == 0 && bits_[g / 64] == ~uint64_t{0}) {
      g += 64;
      continue;
    }
    if (IsUsed(g)) {
      ++g;
      continue;
    }
    uint64_t run = 1;
    while (run < count && !IsUsed(g + run)) ++run;
    if (run == count) return g;
    g += run + 1;  // g + run is used
  }
  return std::nullopt;
}

std::optional<uint64_t> GranuleAllocator::Allocate(uint64_t count) {
  if (count == 0 || count > free_) return std::nullopt;
  std::optional<uint64_t> first = FindRun(hint_, total_, count);
  if (!first) first = FindRun(0, hint_, count);
  if (!first) return std::nullopt;
  Mark(*first, count, true);
  free_ -= count;
  hint_ = *first + count;
  if (hint_ >= total_) hint_ = 0;
  return first;
}

void GranuleAllocator::Free(uint64_t first, uint64_t count) {
  Mark(first, count, false);
  free_ += count;
}

bool GranuleAllocator::Reserve(uint64_t first, uint64_t count) {
  if (first > total_ || count > total_ - first) return false;
  for (uint64_t g = first; g < first + count; ++g) {
    if (IsUsed(g)) return false;
  }
  Mark(first, count, true);
  free_ -= count;
  return true;
}

}  // namespace sparsepool

// Deterministic entry contents for tests and the demo: every byte of (sequence, layer,
// token) is a function of those three and a seed, so a fetched entry is checked
// without keeping a copy of what was written.
#ifndef SPARSEPOOL_BENCH_ENTRY_PATTERN_H_
#define SPARSEPOOL_BENCH_ENTRY_PATTERN_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/types/span.h"

namespace sparsepool::bench {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline void FillEntry(uint64_t seed, uint64_t sequence, uint32_t layer, uint64_t token,
                      absl::Span<std::byte> out) {
  const uint64_t base = SplitMix64(seed ^ SplitMix64(sequence ^ SplitMix64((uint64_t{layer} << 40) ^ token)));
  for (size_t i = 0; i < out.size(); i += 8) {
    const uint64_t word = SplitMix64(base + i);
    std::memcpy(out.data() + i, &word, std::min<size_t>(8, out.size() - i));
  }
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_ENTRY_PATTERN_H_

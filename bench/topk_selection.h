// Top-k selections shaped like a sparse-attention indexer's: the attention-sink tokens
// at the start, a window of recent tokens, and the rest drawn from the whole prefix.
// Used by the demo and the benchmarks (issue 5 adds the full trace generator).
#ifndef SPARSEPOOL_BENCH_TOPK_SELECTION_H_
#define SPARSEPOOL_BENCH_TOPK_SELECTION_H_

#include <cstdint>
#include <random>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/types/span.h"

namespace sparsepool::bench {

// Fills `out` (k slots) with distinct token indices in [0, tokens): up to `sinks`
// first tokens, up to `window` last tokens, the rest uniform. When tokens < k, the
// slots past the prefix are -1 (padding).
inline void SelectTopK(uint64_t tokens, uint32_t sinks, uint32_t window, std::mt19937_64& rng,
                       absl::Span<int32_t> out) {
  const size_t k = out.size();
  if (tokens <= k) {
    for (size_t i = 0; i < k; ++i) out[i] = i < tokens ? static_cast<int32_t>(i) : -1;
    return;
  }
  absl::flat_hash_set<int32_t> chosen;
  chosen.reserve(k);
  size_t n = 0;
  auto take = [&](int32_t token) {
    if (n < k && chosen.insert(token).second) out[n++] = token;
  };
  for (uint32_t s = 0; s < sinks; ++s) take(static_cast<int32_t>(s));
  for (uint32_t w = 0; w < window && w < tokens; ++w) take(static_cast<int32_t>(tokens - 1 - w));
  while (n < k) take(static_cast<int32_t>(rng() % tokens));
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_TOPK_SELECTION_H_

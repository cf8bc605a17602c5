// The geometry of the model whose decode sparsepool-bench replays: what one token of one
// layer costs in the pool and on the GPU, and what the indexer selects. Read from a
// "KEY = VALUE" file (bench/models/*.conf); DeepSeek-V3.2 by default.
#ifndef SPARSEPOOL_BENCH_MODEL_GEOMETRY_H_
#define SPARSEPOOL_BENCH_MODEL_GEOMETRY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparsepool::bench {

struct ModelGeometry {
  std::string name = "DeepSeek-V3.2";
  uint32_t layers = 61;
  // The latent entry the attention reads, per token and layer (FP8 latent, scales and
  // the RoPE part): what the pool holds and a fetch moves.
  uint32_t entry_bytes = 656;
  // The indexer's key per token and layer: stays on the GPU (the indexer scores every
  // token), so it is counted against GPU memory, never fetched.
  uint32_t index_key_bytes = 132;
  uint32_t top_k = 2048;
  uint32_t page_tokens = 64;
};

// Keys: name, layers, entry_bytes, index_key_bytes, top_k, page_tokens. Unset keys keep
// the DeepSeek-V3.2 values; an unknown key or a value out of range is an error naming
// file, line and value.
absl::StatusOr<ModelGeometry> ParseModelGeometry(absl::string_view text, absl::string_view source);
absl::StatusOr<ModelGeometry> ReadModelGeometry(const std::string& path);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_MODEL_GEOMETRY_H_

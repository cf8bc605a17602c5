// A way of getting the selected latent entries of one layer of a decode batch to where
// the attention kernel reads them: the strategies sparsepool-bench compares (full
// prefix or top-k, over RDMA or CXL, CPU or GPU, with or without the GPU residency
// cache). Each one crosses its link for real; the bench times Fetch and counts the
// bytes each strategy says crossed its link.
#ifndef SPARSEPOOL_BENCH_FETCH_STRATEGY_H_
#define SPARSEPOOL_BENCH_FETCH_STRATEGY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/sparsepool_client.h"

namespace sparsepool::bench {

// The batch a strategy serves from Begin until the next Begin.
struct BatchShape {
  std::vector<SequenceId> sequences;  // the rows
  uint32_t k = 0;
  uint32_t entry_bytes = 0;
  uint32_t fetched_layers = 0;  // layers fetched per step (instances of a cache per row)
  uint64_t max_tokens = 0;      // the longest context the batch reaches
  uint64_t prefix_tokens = 0;   // every row's context when the batch is admitted (Begin)
  uint32_t stored_layers = 0;   // layers each sequence holds in the pool
};

// One layer of one decode step.
struct LayerFetch {
  uint32_t layer_slot = 0;    // which of the shape's fetched layers, [0, fetched_layers)
  uint32_t pool_layer = 0;    // the sequence layer in the pool holding its entries
  uint32_t step = 0;          // decode step, increasing by one per step
  uint64_t tokens = 0;        // every row's context at this step
  absl::Span<const int32_t> indices;  // host [rows][k]; -1 = padding
};

// Selected entries among `indices` (-1 is padding): what a top-k fetch moves.
inline uint64_t CountSelected(absl::Span<const int32_t> indices) {
  uint64_t selected = 0;
  for (int32_t index : indices) selected += index >= 0;
  return selected;
}

class FetchStrategy {
 public:
  virtual ~FetchStrategy() = default;

  virtual std::string name() const = 0;
  // The client whose transport this strategy uses; decode steps append through it.
  virtual Client& client() = 0;
  // What prefill leaves where this strategy keeps the batch's cache, before admission
  // and untimed (hbm-only: the whole cache in HBM); the pool strategies need nothing.
  virtual absl::Status Prefill(const BatchShape& shape) { return absl::OkStatus(); }
  // Admits the batch: whatever must happen before its first step (the bench times it).
  virtual absl::Status Begin(const BatchShape& shape) = 0;
  // Every row now has `tokens` tokens: the step's appended entries are in the pool
  // (timed with the append). A strategy keeping a local copy takes them in here.
  virtual absl::Status Appended(uint64_t tokens) { return absl::OkStatus(); }
  // Returns once the entries are where the attention reads them.
  virtual absl::Status Fetch(const LayerFetch& fetch) = 0;
  // Bytes that crossed the strategy's link since Begin returned.
  virtual uint64_t LinkBytes() = 0;
  // Bytes that crossed it in Begin: what admission moved before the first step.
  virtual uint64_t AdmissionBytes() { return 0; }
  // Bytes of the batch's caches the strategy copied into the decode worker's memory
  // (a pulled prefix), besides where a step's entries land.
  virtual uint64_t LocalBytes() { return 0; }
  // The entry the attention would read for (row, position) of the last Fetch: the
  // bench checks these against what was written.
  virtual absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) = 0;
};

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_FETCH_STRATEGY_H_

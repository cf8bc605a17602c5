// One cell of the sparsepool-bench sweep: a batch of requests at one context length,
// decoded for a number of steps with one fetch strategy. Each step appends a token to
// every request (ExtendSequence, then its entry in every stored layer) and fetches the
// top-k of every layer; the selections come from the seeded trace generator
// (bench/trace_file.h) or a trace file. Every step's fetched entries are checked
// against what was written.
#ifndef SPARSEPOOL_BENCH_BENCH_RUNNER_H_
#define SPARSEPOOL_BENCH_BENCH_RUNNER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/fetch_strategy.h"
#include "bench/model_geometry.h"
#include "bench/trace_file.h"
#include "client/sparsepool_client.h"

namespace sparsepool::bench {

struct CellPlan {
  ModelGeometry model;
  uint64_t context = 8192;     // tokens at the first step
  uint32_t batch = 1;
  uint32_t warmup_steps = 2;   // run, checked, not timed
  uint32_t steps = 6;          // timed
  // Layers fetched per step: all of the model's (0), or this many spread evenly over
  // them, with the step's time and bytes scaled by layers / sampled_layers.
  uint32_t sampled_layers = 0;
  // Layers held in the pool per request; fetched layer l reads pool layer
  // l % stored_layers, so that a 128K-token batch fits in this machine's memory.
  uint32_t stored_layers = 4;
  double overlap = 0.8;        // trace: share of a layer's top-k kept from the last step
  uint64_t seed = 1;
  uint32_t checked_per_row = 16;  // entries checked per row and step
  // Replayed instead of generated when set (every row replays it).
  const Trace* trace = nullptr;
};

struct CellResult {
  uint64_t context = 0;
  uint32_t batch = 0;
  std::string strategy;
  uint32_t layers_fetched = 0;  // per step, before scaling
  double scale = 1;             // layers / layers_fetched
  double fetch_p50_s = 0;       // one step's fetch of every layer (scaled)
  double fetch_p99_s = 0;
  double append_p50_s = 0;      // one step's append of every request
  double link_bytes_per_step = 0;  // crossing the strategy's link (scaled)
  double entries_per_s = 0;     // selected entries landed per second of fetch
  double steps_per_s = 0;       // 1 / (append + fetch), medians
  uint64_t entries_checked = 0;
  // Admission (the strategy's Begin) and time to first token: admission and the first
  // step's fetch (prefill itself excluded; it is the same for every strategy). Scaled
  // to every layer of the model: an admission that moves bytes by layers / stored
  // layers, the fetch by layers / fetched layers.
  double admission_s = 0;
  double admission_bytes = 0;
  double ttft_s = 0;
  double local_bytes = 0;  // the strategy's copy of the batch's caches (scaled like admission)
};

// Progress: called with a short description at each step.
using Progress = std::function<void(const std::string&)>;

// The seed of the entries the benchmarks write (bench/entry_pattern.h): a fetched entry
// is checked against FillEntry(kPatternSeed, sequence, layer, token).
inline constexpr uint64_t kPatternSeed = 0x5EED;

// Writes tokens [first, first + count) of `layer` of sequence `id` with the pattern,
// through `client`; `buffer` is scratch.
absl::Status WritePatternTokens(Client& client, SequenceId id, uint32_t layer, uint64_t first, uint64_t count,
                                uint32_t entry_bytes, std::vector<std::byte>& buffer);

// Creates the batch's sequences through `prefill` (the prefill worker's client),
// writes their prefix, runs the steps through `strategy`, and releases them.
absl::StatusOr<CellResult> RunCell(const CellPlan& plan, Client& prefill, FetchStrategy& strategy,
                                   const Progress& progress);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_BENCH_RUNNER_H_

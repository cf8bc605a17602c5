// The GPU residency cache: hot entries of each (sequence, layer) kept in HBM so that
// only misses cross the link. Owns the device memory of `instances` cache instances
// (RAII); the caller maps its (sequence, layer) pairs to instances and runs one Step per
// layer and decode step, asynchronously on its stream. Step writes, for every selected
// position, the slot whose entry the attention kernel reads (slot_data(instance)).
// Algorithm and policy: residency_types.h. CPU model: residency_model.h.
#ifndef SPARSEPOOL_KERNELS_RESIDENCY_CACHE_H_
#define SPARSEPOOL_KERNELS_RESIDENCY_CACHE_H_

#include <cuda_runtime_api.h>

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/residency_types.h"

namespace sparsepool::kernels {

struct ResidencyOptions {
  uint32_t instances = 0;   // (sequence, layer) pairs cached at once
  uint32_t capacity = 0;    // slots per instance, at least the k of each step
  uint32_t max_tokens = 0;  // longest sequence served
  uint32_t entry_bytes = 0;
  ResidencyPolicy policy = ResidencyPolicy::kDecayedFrequency;
  // Threads of the lookup kernel's block (256, 512 or 1024): the same result, a tuning
  // choice (more threads sort the slots' keys faster).
  uint32_t lookup_threads = 512;
  // Warps that copy the misses in, taking the batch's misses in row order (0: each row
  // its own blocks, all rows at once). A tuning choice, the same result.
  uint32_t fill_warps = 1024;
};

struct ResidencyStepArgs {
  // Device pointer of the registered pool region; null when every row names its own
  // (RowPages::region).
  const std::byte* region = nullptr;
  const RowPages* rows = nullptr;       // device [batch]
  const uint32_t* instances = nullptr;  // device [batch]
  const int32_t* indices = nullptr;     // device [batch][k]; -1 = padding
  uint32_t batch = 0;
  uint32_t k = 0;
  uint32_t step = 0;                    // the decode step; increases by one per step
  const uint32_t* step_counter = nullptr;  // device: read instead of `step` when set
  int32_t* out_slots = nullptr;         // device [batch][k]
  bool flat_slots = false;  // out_slots as instance * capacity + slot (see ResidencyLaunch)
  GatherFault* fault = nullptr;  // flag 1 bad index, 2 duplicate, 3 over capacity, 4 bad instance
};

class ResidencyCache {
 public:
  static absl::StatusOr<std::unique_ptr<ResidencyCache>> Create(const ResidencyOptions& options);
  ~ResidencyCache();
  ResidencyCache(const ResidencyCache&) = delete;
  ResidencyCache& operator=(const ResidencyCache&) = delete;

  // Checks the arguments, naming the bad one, and launches on `stream`: Lookup then Fill.
  absl::Status Step(const ResidencyStepArgs& args, cudaStream_t stream);
  // The step's halves, for callers that let work on the hits start before the misses
  // land: after Lookup every position has its slot and the hits' entries are in place;
  // after Fill (same arguments, same stream) the misses' are too.
  absl::Status Lookup(const ResidencyStepArgs& args, cudaStream_t stream);
  absl::Status Fill(const ResidencyStepArgs& args, cudaStream_t stream);
  // Empties one instance (a new sequence takes it over), on `stream`.
  absl::Status Reset(uint32_t instance, cudaStream_t stream);
  // Empties instances [first, first + count) with one kernel on `stream`.
  absl::Status ResetRange(uint32_t first, uint32_t count, cudaStream_t stream);
  // Where the misses of an instance's last lookup are listed (device): their positions
  // [capacity] and their count; valid once Lookup has run on the stream.
  const uint16_t* miss_positions(uint32_t instance) const {
    return state_.miss_positions + uint64_t{instance} * state_.capacity;
  }
  const uint32_t* miss_count(uint32_t instance) const { return state_.miss_counts + instance; }
  // Hits and misses so far, summed over instances (synchronous).
  absl::StatusOr<ResidencyCounters> Counters() const;

  const ResidencyState& state() const { return state_; }
  // [capacity][entry_bytes] in HBM.
  const std::byte* slot_data(uint32_t instance) const {
    return state_.slot_data + uint64_t{instance} * state_.capacity * state_.entry_bytes;
  }

 private:
  explicit ResidencyCache(const ResidencyOptions& options) : options_(options) {}
  // The checked launch arguments of a step.
  absl::StatusOr<ResidencyLaunch> Prepare(const ResidencyStepArgs& args) const;
  // Checks the arguments and launches one of the step's kernels.
  absl::Status Launch(const ResidencyStepArgs& args, cudaStream_t stream,
                      cudaError_t (*kernel)(const ResidencyLaunch&, cudaStream_t), const char* what);

  ResidencyOptions options_;
  ResidencyState state_;
  ResidencyCounters* counters_ = nullptr;
};

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_RESIDENCY_CACHE_H_

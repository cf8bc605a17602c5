// The per-call GPU path that came before the decode session (client/decode_session.h),
// kept with the benchmarks as the baseline the session is measured against (the "old
// path" of docs/gpu.md) and for the kernels' end-to-end tests; engines use the session.
// One call per layer, next to Client::FetchTopK: the entries the indexer selected land
// in an HBM buffer straight from the pool's memory (mapped here and registered for the
// GPU), in one kernel on the caller's stream, so that fetching layer l+1 can overlap
// computing layer l (bench/gpu_overlap_example.cu shows how, with events; rotate three
// decode buffers rather than two: measured 1.5-1.6x of one stream against 1.3x, with
// the gather capped by Options::max_blocks, docs/gpu.md).
//
//   auto gpu = sparsepool::bench::GpuFetcher::Create();
//   (*gpu)->FetchTopK(*client, layer, batch_ids, d_topk /* int32 [batch][k] */, k,
//                     d_decode_buffer /* [batch][k][entry_bytes] */, stream);
//   ... attention reads d_decode_buffer on the stream ...
//   (*gpu)->Finish(stream);  // waits; InvalidArgument names any bad index
//
// Indices live on the GPU, so they are checked there: a bad one is never read, and
// Finish reports the first, naming sequence, layer and index. Layouts come from the
// client's cache: grow sequences through the client (ExtendSequence, or
// internal::Layout to refresh) before fetching their new tokens. Thread-compatible: use one fetcher per stream.
#ifndef SPARSEPOOL_BENCH_GPU_FETCHER_H_
#define SPARSEPOOL_BENCH_GPU_FETCHER_H_

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/gpu_regions.h"
#include "client/sparsepool_client.h"
#include "common/layout.h"
#include "common/release_fence.h"
#include "kernels/residency_cache.h"
#include "kernels/topk_gather.h"
#include "transport/cxl/cxl_data_plane.h"

namespace sparsepool::bench {

class GpuFetcher {
 public:
  struct Options {
    // Cap on the blocks one gather occupies (0: fill the GPU); cap it when the fetch
    // should leave SMs to kernels running beside it.
    uint32_t max_blocks = 0;
    // The release fence of the client whose sequences this fetcher writes
    // (internal::Fence(client)): a write-back holds it from its liveness check until
    // its kernel has completed, so the daemon never reuses the pages under it. Null:
    // write-backs are kept out of reused pages by the daemon's reuse grace only.
    ReleaseFence* fence = nullptr;
    // The process's registry of GPU-registered regions, shared with its other fetchers
    // and decode sessions (it must outlive this fetcher); null: a registry of its own.
    GpuRegionRegistry* regions = nullptr;
  };
  // FailedPrecondition when this process sees no CUDA device.
  static absl::StatusOr<std::unique_ptr<GpuFetcher>> Create(Options options);
  static absl::StatusOr<std::unique_ptr<GpuFetcher>> Create() { return Create(Options()); }
  ~GpuFetcher();
  GpuFetcher(const GpuFetcher&) = delete;
  GpuFetcher& operator=(const GpuFetcher&) = delete;

  // Enqueues the gather of `layer` for a batch whose rows all live in one region.
  // device_indices: int32 [batch][k], -1 = padding (its output is left untouched).
  // device_out: [batch][k][entry_bytes] in GPU memory.
  absl::Status FetchTopK(Client& client, uint32_t layer, absl::Span<const SequenceId> batch,
                         const int32_t* device_indices, uint32_t k, std::byte* device_out,
                         cudaStream_t stream);
  // The same with layouts in hand (validated ones, as the client's are).
  absl::Status FetchTopK(uint32_t layer, absl::Span<const SequenceLayout* const> layouts,
                         const int32_t* device_indices, uint32_t k, std::byte* device_out,
                         cudaStream_t stream);
  // Through the residency cache: looks the batch's top-k up in `cache`, fetches only the
  // misses from the pool into their slots, and writes each position's slot index to
  // device_slots (int32 [batch][k], -1 for padding) for the attention kernel, which
  // reads entries at cache.slot_data(instance). device_instances: uint32 [batch], the
  // cache instance of each row's (sequence, layer); `step` increases per decode step.
  absl::Status FetchTopKCached(kernels::ResidencyCache& cache, uint32_t layer,
                               absl::Span<const SequenceLayout* const> layouts,
                               const uint32_t* device_instances, const int32_t* device_indices,
                               uint32_t k, uint32_t step, int32_t* device_slots, cudaStream_t stream);
  // Enqueues the write-back of one new entry per row: device_tokens int32 [batch]
  // (-1: none for this row), device_entries [batch][entry_bytes]. The kernel checks
  // each row's record right before writing it: a row whose sequence was released by
  // then is not written, and Finish reports it (NotFound).
  absl::Status WriteBack(uint32_t layer, absl::Span<const SequenceLayout* const> layouts,
                         const int32_t* device_tokens, const std::byte* device_entries,
                         cudaStream_t stream);
  // Waits for `stream`; the first bad index or token of the calls since the last Finish,
  // or NotFound when a sequence was released while its entries were read or written
  // (what was read may belong to another sequence: do not use it).
  absl::Status Finish(cudaStream_t stream);

 private:
  GpuFetcher(Options options, std::unique_ptr<GpuRegionRegistry> own_regions)
      : options_(options), own_regions_(std::move(own_regions)) {
    if (options_.regions == nullptr) options_.regions = own_regions_.get();
  }

  using Region = GpuRegionRegistry::Region;
  // A sequence's page tables on the device. Data pages never move and sequence ids
  // are never reused, so the copy stays right until the sequence gets more pages.
  struct DevicePages {
    uint64_t* offsets = nullptr;  // [layers][pages_per_layer]
    uint32_t pages_per_layer = 0;
  };
  // What a launch needs to name a fault after the fact, and to check afterwards that
  // its sequences were still live (a cached layout may be stale).
  struct PendingCall {
    kernels::GatherFault* fault;
    uint32_t layer;
    std::vector<uint64_t> sequence_ids;
    std::vector<uint64_t> tokens;
    std::vector<uint64_t> record_offsets;
    const std::byte* region_host = nullptr;
    std::string region_path;
  };

  absl::StatusOr<const uint64_t*> PagesFor(const SequenceLayout& layout, cudaStream_t stream);
  // Row tables of `layer` on the device, and the pending call that will name faults.
  absl::StatusOr<PendingCall*> Prepare(uint32_t layer, absl::Span<const SequenceLayout* const> layouts,
                                       cudaStream_t stream, Region* region);

  Options options_;
  std::unique_ptr<GpuRegionRegistry> own_regions_;  // when Options::regions was null
  absl::flat_hash_map<SequenceId, DevicePages> pages_;
  kernels::RowPages* device_rows_ = nullptr;
  uint32_t device_rows_capacity_ = 0;
  std::vector<kernels::GatherFault*> fault_pool_;  // pinned, reused across Finish calls
  std::vector<PendingCall> pending_;
};

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_GPU_FETCHER_H_

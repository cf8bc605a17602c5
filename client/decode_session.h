// A decode worker's batch on the GPU, shaped for how inference engines run decode: the
// whole step (every layer's top-k fetch and the write of every layer's new entry) is
// enqueued on the engine's stream with no host work between layers, so the engine can
// capture it once in a CUDA graph and replay it every step while contexts grow.
//
//   auto session = DecodeSession::Create(client, regions, options);
//   auto row = session->Join(sequence, prompt_tokens, stream);    // between steps
//   // capture once (or run eagerly):
//   session->BeginStep(stream);
//   for (layer ...) {
//     session->WriteLayer(layer, d_new_entry /* [max_batch][entry_bytes] */, stream);
//     session->FetchLayer(layer, d_topk /* int32 [max_batch][k], -1 pad */, stream);
//     attention(session->delivered(layer).entries, session->delivered(layer).flat_indices);
//   }
//   session->EndStep(stream);
//   // every step: session->PrepareStep(stream, &failures); then replay the graph.
//
// Device state: for each row (request) and layer a row table and a page table with room
// for max_tokens, allocated once; joins, leaves and growth only copy table entries
// (PrepareStep, Join, Leave), never allocate or free. Pages are reserved in the pool
// ahead of need (reserve_tokens at a time, ExtendSequence on a thread of the session),
// so no RPC sits on the per-token path.
//
// Each step appends one token per active row: BeginStep grows every active row by one
// token, WriteLayer stores that token's entry (the row's last) for a layer, and the
// layer's top-k may then select it. Entries are delivered where an attention kernel
// reads them: rows of entry_bytes addressed by flat int32 indices, -1 for padding, the
// form FlashMLA's sparse decoding takes ([blocks, 64, 1, entry_bytes] plus indices):
// without a cache in a buffer of the batch's selected entries, with the residency
// cache straight in its slot storage (only misses cross the link).
//
// Safety: the step's end checks every active row's record on the device; a row whose
// sequence was released under it is reported by the next PrepareStep (and left), at
// most one step late, without the graph ever waiting on the host. Write-backs check the
// record right before writing, and hold the client's release fence from PrepareStep
// until the step has completed on the GPU (a host node at EndStep ends it), so the
// daemon never reuses pages a step may still write.
//
// Thread-compatible: one thread drives a session; the stream is the engine's.
#ifndef SPARSEPOOL_CLIENT_DECODE_SESSION_H_
#define SPARSEPOOL_CLIENT_DECODE_SESSION_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/gpu_regions.h"
#include "client/session_rows.h"
#include "client/sparsepool_client.h"
#include "kernels/cuda_buffer.h"
#include "kernels/residency_cache.h"
#include "kernels/session_types.h"

namespace sparsepool {

struct DecodeSessionOptions {
  uint32_t max_batch = 0;    // rows at once (at most 1024)
  uint32_t layers = 0;       // of every sequence that joins
  uint32_t entry_bytes = 0;  // of every sequence that joins
  uint32_t k = 0;            // top-k per row and layer (a multiple of 64 fills whole blocks)
  uint64_t max_tokens = 0;   // longest context a row may reach
  uint32_t page_tokens = 64;  // of every sequence that joins
  // Residency cache slots per (row, layer); 0: no cache, every selected entry is copied.
  uint32_t cache_slots = 0;
  kernels::ResidencyPolicy policy = kernels::ResidencyPolicy::kDecayedFrequency;
  // Without the cache: entry buffers rotated over the layers (layer l uses l % buffers),
  // so that fetching layer l+1 may run while attention still reads layer l.
  uint32_t buffers = 3;
  // Tokens reserved in the pool ahead of a row's need, one ExtendSequence at a time.
  uint64_t reserve_tokens = 1024;
  // Cap on the blocks one gather occupies (0: fill the GPU).
  uint32_t max_blocks = 0;
  // Without the cache: how the gather runs (kernels/gather_types.h), and for the sorted
  // gather its blocks per row (0: its default).
  // Warp per entry measured fastest at batches 1 and 16 on the H200 (docs/gpu.md).
  kernels::GatherAlgorithm gather_algorithm = kernels::GatherAlgorithm::kWarpPerEntry;
  uint32_t slices_per_row = 0;
  // With the cache: threads of the lookup kernel's block (256, 512 or 1024).
  uint32_t cache_lookup_threads = 512;
  // With the cache: warps that copy a step's misses in, in row order (0: each row its
  // own blocks, all at once).
  uint32_t cache_fill_warps = 1024;
  // With the cache: record hits_ready(layer) between the lookup and the fill, for
  // engines that start attention over the hits before the misses land (an event node
  // per layer in the step's graph otherwise not there).
  bool record_hits_ready = false;
};

class DecodeSession {
 public:
  // `client` and `regions` must outlive the session. FailedPrecondition without a CUDA
  // device; InvalidArgument naming a bad option; ResourceExhausted when the GPU lacks
  // the memory (the tables are allocated here, once).
  static absl::StatusOr<std::unique_ptr<DecodeSession>> Create(Client* client, GpuRegionRegistry* regions,
                                                               const DecodeSessionOptions& options);
  // Waits for the device, then frees everything.
  ~DecodeSession();
  DecodeSession(const DecodeSession&) = delete;
  DecodeSession& operator=(const DecodeSession&) = delete;

  // ---- Between steps (never inside a capture) ----

  // Takes sequence `id`, whose first `tokens` tokens are written, into a free row (its
  // shape must match the options): its page tables go to the device, its cache instances
  // are emptied. Returns the row. ResourceExhausted when every row is taken.
  absl::StatusOr<uint32_t> Join(SequenceId id, uint64_t tokens, cudaStream_t stream);
  // Frees a row; its sequence is not released (the engine does that through the client).
  absl::Status Leave(uint32_t row, cudaStream_t stream);

  // A row the step could not serve, and why.
  struct RowFailure {
    uint32_t row;
    SequenceId sequence;
    absl::Status status;
  };
  // Before every step (every graph replay): reports what completed steps found (a row
  // released under the session is left, NotFound; a bad index or token,
  // InvalidArgument), makes sure every active row has a page for the token the step
  // appends (pages reserved ahead; it waits for a reservation only when one fell
  // behind), and takes the release fence for the step's writes. Returns an error only
  // for the session as a whole (a CUDA failure); row failures go to `failures`.
  absl::Status PrepareStep(cudaStream_t stream, std::vector<RowFailure>* failures);

  // Seeds the residency cache of `layer` for the active rows from top-k selections the
  // prefill made (its last windows), so the first decode steps start with hits. Between
  // steps; a no-op without the cache.
  absl::Status SeedCache(uint32_t layer, const int32_t* device_topk, cudaStream_t stream);

  // ---- The step: enqueued on `stream`, capturable in one CUDA graph ----

  absl::Status BeginStep(cudaStream_t stream);
  // Stores each active row's new token (its last) for `layer`: device_entries is
  // [max_batch][entry_bytes] in GPU memory; rows that are free are skipped.
  absl::Status WriteLayer(uint32_t layer, const std::byte* device_entries, cudaStream_t stream);
  // Delivers the entries `device_topk` ([max_batch][k] int32 in GPU memory, -1 padding)
  // selects for `layer`; rows that are free are skipped.
  absl::Status FetchLayer(uint32_t layer, const int32_t* device_topk, cudaStream_t stream);
  absl::Status EndStep(cudaStream_t stream);

  // Where FetchLayer(layer) delivers: entries as [entry_count][entry_bytes] (viewed as
  // blocks of 64 rows), and [max_batch][k] flat indices into them (-1: nothing). Without
  // the cache the buffer is shared by the layers l % buffers.
  struct Delivery {
    const std::byte* entries = nullptr;
    uint64_t entry_count = 0;
    const int32_t* flat_indices = nullptr;
  };
  Delivery delivered(uint32_t layer) const;
  // With the cache and record_hits_ready: recorded when FetchLayer(layer)'s lookup is
  // done, before its misses land: the hits' entries and every position's index are in
  // place; the misses of a row's instance (row * layers + layer) are listed by
  // miss_positions and miss_count.
  cudaEvent_t hits_ready(uint32_t layer) const { return hits_ready_.empty() ? nullptr : hits_ready_[layer]; }
  const uint16_t* miss_positions(uint32_t row, uint32_t layer) const;
  const uint32_t* miss_count(uint32_t row, uint32_t layer) const;

  // With the cache: hits and misses so far over every instance (waits for the device).
  absl::StatusOr<kernels::ResidencyCounters> cache_counters() const;

  const DecodeSessionOptions& options() const { return options_; }
  // Tokens of a row after the last prepared step.
  uint64_t tokens(uint32_t row) const { return rows_.tokens(row); }
  SequenceId sequence(uint32_t row) const { return rows_.sequence(row); }
  bool active(uint32_t row) const { return rows_.active(row); }
  // Device memory the session holds, in bytes.
  uint64_t device_bytes() const { return device_bytes_; }

 private:
  // An ExtendSequence the reserver thread runs, and its outcome.
  struct Reservation {
    SessionRows::Reservation job;
    absl::StatusOr<std::shared_ptr<const SequenceLayout>> result = absl::UnknownError("pending");
  };

  DecodeSession(Client* client, GpuRegionRegistry* regions, const DecodeSessionOptions& options);
  absl::Status Allocate();
  // The row tables of every layer for `row` as they are now on the host, uploaded.
  absl::Status UploadRow(uint32_t row, cudaStream_t stream);
  // The page-table entries the device lacks for `row`, uploaded.
  absl::Status UploadPages(uint32_t row, cudaStream_t stream);
  absl::Status UploadSessionRow(uint32_t row, cudaStream_t stream);
  // The row's page tables on the device: [layers][max_pages].
  uint64_t* RowPagesOnDevice(uint32_t row) const;
  // Applies the reservations that finished (new pages uploaded); with `wait`, first
  // waits up to kReservationWait for one. `arrived`, if given, says whether any did.
  absl::Status ApplyReservations(bool wait, cudaStream_t stream, std::vector<RowFailure>* failures, bool* arrived);
  void ReserverMain();
  void ReportRow(uint32_t row, absl::Status status, std::vector<RowFailure>* failures);
  kernels::SessionStepArgs StepArgs() const;
  // The flat index buffer FetchLayer(layer) writes, and a layer's cache-step arguments.
  int32_t* FlatIndices(uint32_t layer) const;
  kernels::ResidencyStepArgs CacheStepArgs(uint32_t layer, const int32_t* device_topk) const;
  static void EndTicket(void* session);

  Client* const client_;
  GpuRegionRegistry* const regions_;
  const DecodeSessionOptions options_;
  SessionRows rows_;
  uint64_t steps_prepared_ = 0;
  uint64_t device_bytes_ = 0;

  // Device memory, allocated once.
  kernels::CudaBuffer<uint64_t> pages_;              // [max_batch][layers][max_pages]
  kernels::CudaBuffer<kernels::RowPages> row_tables_;  // [layers][max_batch]
  kernels::CudaBuffer<kernels::SessionRow> session_rows_;  // [max_batch]
  kernels::CudaBuffer<uint32_t> step_counter_;
  kernels::CudaBuffer<uint32_t> instances_;          // [layers][max_batch]: row * layers + layer
  kernels::CudaBuffer<std::byte> entries_;           // no cache: [buffers][max_batch * k][entry_bytes]
  kernels::CudaBuffer<int32_t> flat_;                // [buffers or layers][max_batch][k]
  std::unique_ptr<kernels::ResidencyCache> cache_;
  // Mapped pinned host memory the kernels report into.
  kernels::SessionRowReport* reports_ = nullptr;     // [max_batch]
  kernels::GatherFault* faults_ = nullptr;           // [2][layers]: fetches, then writes
  unsigned long long* steps_done_ = nullptr;
  std::vector<cudaEvent_t> hits_ready_;              // [layers], with the cache

  // The release fence tickets of steps in flight, oldest first; EndStep's host node
  // ends the oldest.
  absl::Mutex tickets_mu_;
  std::deque<ReleaseFence::Ticket> tickets_ ABSL_GUARDED_BY(tickets_mu_);

  absl::Mutex reserve_mu_;
  std::deque<Reservation> reserve_queue_ ABSL_GUARDED_BY(reserve_mu_);
  std::vector<Reservation> reserve_done_ ABSL_GUARDED_BY(reserve_mu_);
  bool stopping_ ABSL_GUARDED_BY(reserve_mu_) = false;
  std::thread reserver_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_DECODE_SESSION_H_

// The state and the work of a decode session (client/decode_session.h, whose
// DecodeSession forwards here): device tables, the residency cache, the reserver
// thread, the release fence tickets of steps in flight. Not for engines.
#ifndef SPARSEPOOL_CLIENT_DECODE_SESSION_IMPL_H_
#define SPARSEPOOL_CLIENT_DECODE_SESSION_IMPL_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/decode_session.h"
#include "client/gpu_regions.h"
#include "client/session_rows.h"
#include "common/layout.h"
#include "common/release_fence.h"
#include "kernels/cuda_buffer.h"
#include "kernels/residency_cache.h"
#include "kernels/session_types.h"

namespace sparsepool::internal {

class DecodeSessionImpl {
 public:
  // What each call does is documented once, on DecodeSession.
  using RowFailure = DecodeSession::RowFailure;
  using Delivery = DecodeSession::Delivery;

  static absl::StatusOr<std::unique_ptr<DecodeSessionImpl>> Create(Client* client, GpuRegionRegistry* regions,
                                                                   const DecodeSessionOptions& options);
  ~DecodeSessionImpl();
  DecodeSessionImpl(const DecodeSessionImpl&) = delete;
  DecodeSessionImpl& operator=(const DecodeSessionImpl&) = delete;

  absl::StatusOr<uint32_t> Join(SequenceId id, uint64_t tokens, cudaStream_t stream);
  absl::Status Leave(uint32_t row, cudaStream_t stream);
  absl::Status PrepareStep(cudaStream_t stream, std::vector<RowFailure>* failures);
  absl::Status SeedCache(uint32_t layer, const int32_t* device_topk, cudaStream_t stream);

  absl::Status BeginStep(cudaStream_t stream);
  absl::Status WriteLayer(uint32_t layer, const std::byte* device_entries, cudaStream_t stream);
  absl::Status FetchLayer(uint32_t layer, const int32_t* device_topk, cudaStream_t stream);
  absl::Status EndStep(cudaStream_t stream);

  Delivery delivered(uint32_t layer) const;
  cudaEvent_t hits_ready(uint32_t layer) const { return hits_ready_.empty() ? nullptr : hits_ready_[layer]; }
  const uint16_t* miss_positions(uint32_t row, uint32_t layer) const;
  const uint32_t* miss_count(uint32_t row, uint32_t layer) const;
  absl::StatusOr<kernels::ResidencyCounters> cache_counters() const;

  const DecodeSessionOptions& options() const { return options_; }
  uint64_t tokens(uint32_t row) const { return rows_.tokens(row); }
  SequenceId sequence(uint32_t row) const { return rows_.sequence(row); }
  bool active(uint32_t row) const { return rows_.active(row); }
  uint64_t device_bytes() const { return device_bytes_; }

 private:
  // An ExtendSequence a reserver thread runs, and its outcome.
  struct Reservation {
    SessionRows::Reservation job;
    absl::StatusOr<std::shared_ptr<const SequenceLayout>> result = absl::UnknownError("pending");
  };

  DecodeSessionImpl(Client* client, ReleaseFence* fence, GpuRegionRegistry* regions,
                    const DecodeSessionOptions& options);
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
  ReleaseFence* const fence_;  // the client's; null when its writes are not fenced
  GpuRegionRegistry* const regions_;
  const DecodeSessionOptions options_;
  SessionRows rows_;
  uint64_t steps_prepared_ = 0;
  // FetchLayer calls since the last BeginStep, and as many as the last enqueued (or
  // captured) step made: what PrepareStep books on the client's fetch rate.
  uint32_t fetches_enqueued_ = 0;
  uint32_t fetches_per_step_ = 0;
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
  // Each takes the next reservation queued: rows that need room at one step are
  // reserved side by side (a row has one reservation at a time).
  std::vector<std::thread> reservers_;
};

}  // namespace sparsepool::internal

#endif  // SPARSEPOOL_CLIENT_DECODE_SESSION_IMPL_H_

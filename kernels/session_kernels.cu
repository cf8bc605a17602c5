// The two small kernels that open and close a decode session's step (the gathers,
// the residency cache and the write-backs run between them, in their own kernels).
#include "kernels/device_entry.cuh"
#include "kernels/session_kernels.h"

namespace sparsepool::kernels {
namespace {

// Every active row appends one token: its token count grows by one in every layer's
// row table, if its device page table has room (else the row is reported and left as
// it was: nothing of this step may be written past its pages). The step counter the
// residency cache reads advances.
__global__ void BeginStepKernel(SessionStepArgs a) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i == 0) ++*a.step_counter;
  if (i >= a.max_batch * a.layers) return;
  const uint32_t row = i % a.max_batch;
  const uint32_t layer = i / a.max_batch;
  const SessionRow sr = a.session_rows[row];
  if (sr.active == 0) return;
  RowPages& rp = a.rows[uint64_t(layer) * a.max_batch + row];
  if (rp.tokens + 1 > sr.capacity_tokens) {
    if (layer == 0) a.reports[row].out_of_room = 1;
    return;
  }
  rp.tokens += 1;
}

// After every read and write of the step: a row whose record no longer shows its
// sequence live is reported (what the step read for it may belong to another sequence).
__global__ void EndStepKernel(SessionStepArgs a) {
  const uint32_t row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row < a.max_batch && a.session_rows[row].active != 0) {
    const RowPages& rp = a.rows[row];  // layer 0's table names the sequence
    if (!RecordShowsLive(RowRecordRegion(rp, nullptr), rp.record_offset, rp.sequence_id)) a.reports[row].released = 1;
  }
  // Count the step done once every thread of the grid has checked its row.
  __syncthreads();
  if (row == 0) {
    __threadfence_system();
    atomicAdd(a.steps_done, 1ull);
  }
}

}  // namespace

cudaError_t LaunchBeginStep(const SessionStepArgs& args, cudaStream_t stream) {
  const uint32_t items = args.max_batch * args.layers;
  BeginStepKernel<<<(items + 255) / 256, 256, 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t LaunchEndStep(const SessionStepArgs& args, cudaStream_t stream) {
  // One block: the whole batch (at most kMaxSessionBatch rows) checks before the count.
  EndStepKernel<<<1, kMaxSessionBatch, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace sparsepool::kernels

// How a top-k batch becomes RDMA reads, for every RDMA backend (UCX gets, verbs READ
// work requests): one read per run of consecutive positions that hold consecutive
// tokens of one page (packed entries), padding skipped; and how reads are grouped under
// one doorbell. Pure logic, tested without a device.
#ifndef SPARSEPOOL_TRANSPORT_RDMA_READ_PLAN_H_
#define SPARSEPOOL_TRANSPORT_RDMA_READ_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "transport/data_plane.h"

namespace sparsepool {

// One read: a contiguous remote range into a contiguous local range.
struct ReadRequest {
  uint32_t row;             // batch row, whose region the remote address is in
  uint64_t remote_address;  // the region's base in the daemon (remote_base) + offset
  uint32_t length;
  uint64_t local_offset;  // into the batch's output buffer
};

// REQUIRES: ValidateGather(batch).ok()
std::vector<ReadRequest> PlanReads(const GatherBatch& batch, bool coalesce);

// The writes of a range of tokens, in the same shape (remote range <- local range of
// range.entries): one per run of tokens within a page (packed entries), or per token.
// REQUIRES: ValidateWrite(range).ok()
std::vector<ReadRequest> PlanWrites(const WriteRange& range);

// Reads grouped for posting: each group is posted as one chain of work requests with
// one doorbell, and only its last request is signalled (one completion per group).
struct PostGroup {
  size_t first;  // index into the ReadRequest list
  size_t count;
};
// `max_outstanding` bounds the requests in flight on the queue pair (its max_send_wr).
std::vector<PostGroup> GroupForDoorbells(size_t reads, uint32_t max_outstanding);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_READ_PLAN_H_

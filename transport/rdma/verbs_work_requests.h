// The work requests of one doorbell: planned transfers (read_plan.h) as a linked chain
// of RDMA READ or WRITE requests with one scatter-gather entry each, of which only the
// last asks for a completion, so one ibv_post_send and one completion cover the group.
// Pure: built and tested without a device.
#ifndef SPARSEPOOL_TRANSPORT_RDMA_VERBS_WORK_REQUESTS_H_
#define SPARSEPOOL_TRANSPORT_RDMA_VERBS_WORK_REQUESTS_H_

#include <infiniband/verbs.h>

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/types/span.h"
#include "transport/rdma/read_plan.h"

namespace sparsepool {

class WorkRequestChain {
 public:
  // One request per transfer, in order: local address local_base + local_offset (lkey),
  // remote address remote_address (the rkey of the transfer's row). The last request is
  // signalled and carries wr_id.
  WorkRequestChain(absl::Span<const ReadRequest> transfers, ibv_wr_opcode opcode, uint64_t local_base,
                   uint32_t lkey, absl::FunctionRef<uint32_t(uint32_t row)> rkey_of_row, uint64_t wr_id);
  WorkRequestChain(const WorkRequestChain&) = delete;
  WorkRequestChain& operator=(const WorkRequestChain&) = delete;

  // What ibv_post_send takes; null for an empty chain.
  ibv_send_wr* head() { return requests_.empty() ? nullptr : requests_.data(); }
  const std::vector<ibv_send_wr>& requests() const { return requests_; }

 private:
  std::vector<ibv_sge> sges_;  // requests_[i].sg_list points at sges_[i]
  std::vector<ibv_send_wr> requests_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_VERBS_WORK_REQUESTS_H_

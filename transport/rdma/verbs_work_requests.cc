#include "transport/rdma/verbs_work_requests.h"

namespace sparsepool {

WorkRequestChain::WorkRequestChain(absl::Span<const ReadRequest> transfers, ibv_wr_opcode opcode,
                                   uint64_t local_base, uint32_t lkey,
                                   absl::FunctionRef<uint32_t(uint32_t row)> rkey_of_row, uint64_t wr_id)
    : sges_(transfers.size()), requests_(transfers.size()) {
  for (size_t i = 0; i < transfers.size(); ++i) {
    const ReadRequest& t = transfers[i];
    sges_[i] = ibv_sge{local_base + t.local_offset, t.length, lkey};
    ibv_send_wr& wr = requests_[i];
    wr = ibv_send_wr{};
    wr.sg_list = &sges_[i];
    wr.num_sge = 1;
    wr.opcode = opcode;
    wr.wr.rdma.remote_addr = t.remote_address;
    wr.wr.rdma.rkey = rkey_of_row(t.row);
    wr.next = i + 1 < transfers.size() ? &requests_[i + 1] : nullptr;
  }
  if (!requests_.empty()) {
    requests_.back().send_flags = IBV_SEND_SIGNALED;
    requests_.back().wr_id = wr_id;
  }
}

}  // namespace sparsepool

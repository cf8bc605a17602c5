// libibverbs resources, each owned (RAII): protection domain, memory registrations,
// and an RC queue pair with its own completion queue, brought up towards a peer
// (verbs_plan.h gives the attributes) and driven by posting chains of work requests
// and polling for their completions under a deadline. Used by the daemon
// (service/verbs_acceptor.h) and the client (verbs_data_plane.h). Needs an RDMA device.
#ifndef SPARSEPOOL_TRANSPORT_RDMA_VERBS_QUEUE_PAIR_H_
#define SPARSEPOOL_TRANSPORT_RDMA_VERBS_QUEUE_PAIR_H_

#include <infiniband/verbs.h>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transport/rdma/verbs_device.h"
#include "transport/rdma/verbs_plan.h"

namespace sparsepool {

struct IbvDeleter {
  void operator()(ibv_pd* pd) const { ibv_dealloc_pd(pd); }
  void operator()(ibv_mr* mr) const { ibv_dereg_mr(mr); }
  void operator()(ibv_cq* cq) const { ibv_destroy_cq(cq); }
  void operator()(ibv_qp* qp) const { ibv_destroy_qp(qp); }
};
using ProtectionDomain = std::unique_ptr<ibv_pd, IbvDeleter>;
using MemoryRegistration = std::unique_ptr<ibv_mr, IbvDeleter>;

absl::StatusOr<ProtectionDomain> AllocateProtectionDomain(VerbsDevice& device);
// `access`: IBV_ACCESS_* flags (LOCAL_WRITE is added: reads land in local memory).
absl::StatusOr<MemoryRegistration> RegisterMemory(ibv_pd* pd, void* address, size_t bytes, int access);

struct QueuePairOptions {
  uint8_t port = 1;
  uint8_t gid_index = 0;
  uint32_t max_send_wr = 256;  // work requests in flight (the doorbell groups' bound)
  uint8_t max_reads = 16;      // RDMA READs in flight per queue pair (responder resources)
};

class RcQueuePair {
 public:
  static absl::StatusOr<std::unique_ptr<RcQueuePair>> Create(VerbsDevice& device, ibv_pd* pd,
                                                              const QueuePairOptions& options);
  ~RcQueuePair();
  RcQueuePair(const RcQueuePair&) = delete;
  RcQueuePair& operator=(const RcQueuePair&) = delete;

  // What the peer needs (QP number, first PSN, GID, LID) and the port's active MTU.
  const RcEndpointInfo& local() const { return local_; }
  uint32_t mtu_bytes() const { return MtuBytes(port_mtu_); }
  // INIT -> RTR -> RTS towards `remote` at `mtu_bytes` (the smaller of both sides').
  absl::Status Connect(const RcEndpointInfo& remote, uint32_t mtu_bytes);

  // One doorbell for the chain.
  absl::Status Post(ibv_send_wr* chain, const char* what);
  // Waits for `completions` signalled requests until `deadline`. Unavailable, naming
  // `what`, when one fails (the peer vanished, a key was refused) or time runs out.
  absl::Status Wait(size_t completions, absl::Time deadline, const char* what);
  // Moves the queue pair to the error state: the device flushes what is outstanding
  // and touches none of its local buffers afterwards. Call before freeing them.
  void Abort();

 private:
  RcQueuePair() = default;

  std::unique_ptr<ibv_cq, IbvDeleter> cq_;
  std::unique_ptr<ibv_qp, IbvDeleter> qp_;
  QueuePairOptions options_;
  RcEndpointInfo local_;
  ibv_mtu port_mtu_ = IBV_MTU_1024;
  bool use_gid_ = false;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_VERBS_QUEUE_PAIR_H_

#include "transport/rdma/verbs_queue_pair.h"

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"

namespace sparsepool {
namespace {

absl::Status Errno(const char* what, int err) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(err)));
}

}  // namespace

absl::StatusOr<ProtectionDomain> AllocateProtectionDomain(VerbsDevice& device) {
  ibv_pd* pd = ibv_alloc_pd(device.context());
  if (pd == nullptr) return Errno("ibv_alloc_pd", errno);
  return ProtectionDomain(pd);
}

absl::StatusOr<MemoryRegistration> RegisterMemory(ibv_pd* pd, void* address, size_t bytes, int access) {
  ibv_mr* mr = ibv_reg_mr(pd, address, bytes, access | IBV_ACCESS_LOCAL_WRITE);
  if (mr == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("registering ", bytes, " bytes for RDMA: ", std::strerror(errno)));
  }
  return MemoryRegistration(mr);
}

absl::StatusOr<std::unique_ptr<RcQueuePair>> RcQueuePair::Create(VerbsDevice& device, ibv_pd* pd,
                                                                 const QueuePairOptions& options) {
  std::unique_ptr<RcQueuePair> qp(new RcQueuePair());
  qp->options_ = options;
  ibv_port_attr port{};
  if (int e = ibv_query_port(device.context(), options.port, &port); e != 0) {
    return Errno(absl::StrCat("querying port ", options.port, " of ", device.name()).c_str(), e);
  }
  qp->port_mtu_ = port.active_mtu;
  qp->use_gid_ = port.link_layer == IBV_LINK_LAYER_ETHERNET;  // RoCE routes by GID
  qp->local_.port = options.port;
  qp->local_.gid_index = options.gid_index;
  qp->local_.lid = port.lid;
  if (ibv_query_gid(device.context(), options.port, options.gid_index, &qp->local_.gid) != 0) {
    return Errno(absl::StrCat("querying GID ", options.gid_index, " of ", device.name()).c_str(), errno);
  }
  qp->cq_.reset(ibv_create_cq(device.context(), static_cast<int>(options.max_send_wr), nullptr, nullptr, 0));
  if (qp->cq_ == nullptr) return Errno("ibv_create_cq", errno);
  ibv_qp_init_attr init{};
  init.send_cq = qp->cq_.get();
  init.recv_cq = qp->cq_.get();
  init.qp_type = IBV_QPT_RC;
  init.sq_sig_all = 0;  // only the last request of a doorbell group asks for a completion
  init.cap.max_send_wr = options.max_send_wr;
  init.cap.max_recv_wr = 1;
  init.cap.max_send_sge = 1;
  init.cap.max_recv_sge = 1;
  qp->qp_.reset(ibv_create_qp(pd, &init));
  if (qp->qp_ == nullptr) return Errno("ibv_create_qp", errno);
  qp->local_.qp_number = qp->qp_->qp_num;
  qp->local_.packet_sequence = std::random_device()() & 0xFFFFFF;
  QpTransition to_init = QpToInit(options.port);
  if (int e = ibv_modify_qp(qp->qp_.get(), &to_init.attr, to_init.mask); e != 0) {
    return Errno("queue pair RESET -> INIT", e);
  }
  return qp;
}

RcQueuePair::~RcQueuePair() {
  // The queue pair goes before its completion queue (member order does it).
  qp_.reset();
}

absl::Status RcQueuePair::Connect(const RcEndpointInfo& remote, uint32_t mtu_bytes) {
  const ibv_mtu mtu = MtuFromBytes(mtu_bytes);
  if (mtu == 0) return absl::InvalidArgumentError(absl::StrCat("path MTU ", mtu_bytes, " is not 256-4096"));
  QpTransition rtr = QpToReadyToReceive(local_, remote, mtu, use_gid_, options_.max_reads);
  if (int e = ibv_modify_qp(qp_.get(), &rtr.attr, rtr.mask); e != 0) return Errno("queue pair INIT -> RTR", e);
  QpTransition rts = QpToReadyToSend(local_.packet_sequence, options_.max_reads);
  if (int e = ibv_modify_qp(qp_.get(), &rts.attr, rts.mask); e != 0) return Errno("queue pair RTR -> RTS", e);
  return absl::OkStatus();
}

absl::Status RcQueuePair::Post(ibv_send_wr* chain, const char* what) {
  ibv_send_wr* bad = nullptr;
  if (int e = ibv_post_send(qp_.get(), chain, &bad); e != 0) return Errno(what, e);
  return absl::OkStatus();
}

absl::Status RcQueuePair::Wait(size_t completions, absl::Time deadline, const char* what) {
  ibv_wc wc[16];
  while (completions > 0) {
    const int n = ibv_poll_cq(cq_.get(), 16, wc);
    if (n < 0) return absl::UnavailableError(absl::StrCat(what, ": polling the completion queue failed"));
    for (int i = 0; i < n; ++i) {
      if (wc[i].status != IBV_WC_SUCCESS) {
        return absl::UnavailableError(
            absl::StrCat(what, ": ", ibv_wc_status_str(wc[i].status), " (the daemon or its link is gone?)"));
      }
    }
    completions -= std::min<size_t>(completions, n);
    if (n == 0 && absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrCat(what, ": no completion before the deadline"));
    }
  }
  return absl::OkStatus();
}

void RcQueuePair::Abort() {
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_ERR;
  ibv_modify_qp(qp_.get(), &attr, IBV_QP_STATE);
}

}  // namespace sparsepool

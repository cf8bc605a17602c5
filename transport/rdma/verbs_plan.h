// The device-independent half of the libibverbs backend (with read_plan.h, which
// plans the READ work requests): the attributes of each step of bringing an RC queue
// pair up. Kept apart from the calls into libibverbs so that it is tested on machines
// without an RDMA device (like this project's CI); verbs_device.h holds the part that
// needs one.
#ifndef SPARSEPOOL_TRANSPORT_RDMA_VERBS_PLAN_H_
#define SPARSEPOOL_TRANSPORT_RDMA_VERBS_PLAN_H_

#include <infiniband/verbs.h>

#include <cstdint>

#include "transport/rdma/read_plan.h"

namespace sparsepool {

// What the two sides of an RC connection exchange over the control plane.
struct RcEndpointInfo {
  uint32_t qp_number = 0;
  uint32_t packet_sequence = 0;
  ibv_gid gid{};
  uint16_t lid = 0;
  uint8_t port = 1;
  uint8_t gid_index = 0;
};

// One ibv_modify_qp step: the attributes and the mask naming those that are set.
struct QpTransition {
  ibv_qp_attr attr{};
  int mask = 0;
};
// RESET -> INIT: port, partition key 0, remote reads and writes allowed.
QpTransition QpToInit(uint8_t port);
// INIT -> RTR: towards `remote`, routed by GID when `use_gid` (RoCE), else by LID.
QpTransition QpToReadyToReceive(const RcEndpointInfo& remote, ibv_mtu mtu, bool use_gid, uint8_t max_reads);
// RTR -> RTS: retries and timeouts, our first packet sequence number.
QpTransition QpToReadyToSend(uint32_t packet_sequence, uint8_t max_reads);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_VERBS_PLAN_H_

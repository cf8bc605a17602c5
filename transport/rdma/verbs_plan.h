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

// What the two sides of an RC connection exchange over the control plane (port and
// gid_index are the side's own, not sent).
struct RcEndpointInfo {
  uint32_t qp_number = 0;
  uint32_t packet_sequence = 0;
  ibv_gid gid{};
  uint16_t lid = 0;
  uint8_t port = 1;
  uint8_t gid_index = 0;
};

// What ConnectVerbs carries each way: the endpoint and the sender's path MTU in bytes.
struct VerbsPeerInfo {
  RcEndpointInfo endpoint;
  uint32_t mtu_bytes = 0;
};

// One ibv_modify_qp step: the attributes and the mask naming those that are set.
struct QpTransition {
  ibv_qp_attr attr{};
  int mask = 0;
};
// RESET -> INIT: port, partition key 0, remote reads and writes allowed.
QpTransition QpToInit(uint8_t port);
// INIT -> RTR: towards `remote`, leaving by `local`'s port and (when routed by GID,
// `use_gid`: RoCE) its source GID index; by LID otherwise.
QpTransition QpToReadyToReceive(const RcEndpointInfo& local, const RcEndpointInfo& remote, ibv_mtu mtu, bool use_gid,
                                uint8_t max_reads);

// Path MTU in bytes (256-4096) as libibverbs' enum; 0 for any other value.
ibv_mtu MtuFromBytes(uint32_t bytes);
uint32_t MtuBytes(ibv_mtu mtu);
// RTR -> RTS: retries and timeouts, our first packet sequence number.
QpTransition QpToReadyToSend(uint32_t packet_sequence, uint8_t max_reads);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_VERBS_PLAN_H_

#include "transport/rdma/verbs_plan.h"

namespace sparsepool {

QpTransition QpToInit(uint8_t port) {
  QpTransition t;
  t.attr.qp_state = IBV_QPS_INIT;
  t.attr.pkey_index = 0;
  t.attr.port_num = port;
  t.attr.qp_access_flags = IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;
  t.mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
  return t;
}

QpTransition QpToReadyToReceive(const RcEndpointInfo& local, const RcEndpointInfo& remote, ibv_mtu mtu, bool use_gid,
                                uint8_t max_reads) {
  QpTransition t;
  t.attr.qp_state = IBV_QPS_RTR;
  t.attr.path_mtu = mtu;
  t.attr.dest_qp_num = remote.qp_number;
  t.attr.rq_psn = remote.packet_sequence;
  t.attr.max_dest_rd_atomic = max_reads;
  t.attr.min_rnr_timer = 12;
  t.attr.ah_attr.port_num = local.port;
  t.attr.ah_attr.dlid = remote.lid;
  if (use_gid) {
    t.attr.ah_attr.is_global = 1;
    t.attr.ah_attr.grh.dgid = remote.gid;
    t.attr.ah_attr.grh.sgid_index = local.gid_index;
    t.attr.ah_attr.grh.hop_limit = 64;
  }
  t.mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
           IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
  return t;
}

QpTransition QpToReadyToSend(uint32_t packet_sequence, uint8_t max_reads) {
  QpTransition t;
  t.attr.qp_state = IBV_QPS_RTS;
  t.attr.sq_psn = packet_sequence;
  t.attr.timeout = 14;  // 4.096 us x 2^14 = 67 ms per retry
  t.attr.retry_cnt = 7;
  t.attr.rnr_retry = 7;
  t.attr.max_rd_atomic = max_reads;
  t.mask = IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
           IBV_QP_MAX_QP_RD_ATOMIC;
  return t;
}

ibv_mtu MtuFromBytes(uint32_t bytes) {
  switch (bytes) {
    case 256: return IBV_MTU_256;
    case 512: return IBV_MTU_512;
    case 1024: return IBV_MTU_1024;
    case 2048: return IBV_MTU_2048;
    case 4096: return IBV_MTU_4096;
    default: return static_cast<ibv_mtu>(0);
  }
}

uint32_t MtuBytes(ibv_mtu mtu) { return mtu >= IBV_MTU_256 && mtu <= IBV_MTU_4096 ? 128u << mtu : 0; }

}  // namespace sparsepool

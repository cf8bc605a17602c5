#include "transport/rdma/verbs_endpoint_proto.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace sparsepool {

void EndpointToProto(const VerbsPeerInfo& peer, v1::VerbsEndpoint* proto) {
  proto->set_qp_number(peer.endpoint.qp_number);
  proto->set_packet_sequence(peer.endpoint.packet_sequence);
  proto->set_gid(reinterpret_cast<const char*>(peer.endpoint.gid.raw), sizeof(peer.endpoint.gid.raw));
  proto->set_lid(peer.endpoint.lid);
  proto->set_mtu(peer.mtu_bytes);
}

absl::StatusOr<VerbsPeerInfo> EndpointFromProto(const v1::VerbsEndpoint& proto) {
  constexpr uint32_t k24Bits = 1u << 24;
  if (proto.qp_number() == 0 || proto.qp_number() >= k24Bits) {
    return absl::InvalidArgumentError(absl::StrCat("queue pair number ", proto.qp_number(), " is not in [1, 2^24)"));
  }
  if (proto.packet_sequence() >= k24Bits) {
    return absl::InvalidArgumentError(
        absl::StrCat("packet sequence number ", proto.packet_sequence(), " is not in [0, 2^24)"));
  }
  if (proto.gid().size() != 16) {
    return absl::InvalidArgumentError(absl::StrCat("GID has ", proto.gid().size(), " bytes, not 16"));
  }
  if (proto.lid() > 0xFFFF) return absl::InvalidArgumentError(absl::StrCat("LID ", proto.lid(), " is not 16 bits"));
  if (MtuFromBytes(proto.mtu()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("MTU ", proto.mtu(), " is not 256, 512, 1024, 2048 or 4096"));
  }
  VerbsPeerInfo peer;
  peer.endpoint.qp_number = proto.qp_number();
  peer.endpoint.packet_sequence = proto.packet_sequence();
  std::memcpy(peer.endpoint.gid.raw, proto.gid().data(), 16);
  peer.endpoint.lid = static_cast<uint16_t>(proto.lid());
  peer.mtu_bytes = proto.mtu();
  return peer;
}

}  // namespace sparsepool

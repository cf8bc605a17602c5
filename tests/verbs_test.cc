// The libibverbs backend's device-independent parts: READ planning with coalescing,
// doorbell batching, and the queue-pair transitions; and device discovery, which on a
// host without an RDMA device (this project's CI) must fail with a clear error.
#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/rdma/verbs_endpoint_proto.h"
#include "transport/rdma/verbs_data_plane.h"
#include "transport/rdma/verbs_device.h"
#include "transport/rdma/verbs_plan.h"
#include "transport/rdma/verbs_work_requests.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

SequenceLayout Layout() {
  SequenceLayout l;
  l.sequence_id = 5;
  l.layers = 2;
  l.entry_bytes = 656;
  l.entry_stride = 656;
  l.page_tokens = 64;
  l.tokens = 200;
  l.pages_per_layer = 4;
  l.page_offsets = {4096, 90112, 200704, 303104, 405504, 507904, 610304, 712704};
  l.region.size_bytes = 1 << 20;
  l.region.remote_base = 0x7f0000000000;
  return l;
}

TEST(VerbsPlanTest, ReadsCoalesceConsecutiveTokensOfOnePage) {
  const SequenceLayout l = Layout();
  const std::vector<const SequenceLayout*> rows = {&l};
  // 10,11,12 one run; -1 skipped; 63,64 cross a page: two reads; 100 alone.
  const std::vector<int32_t> indices = {10, 11, 12, -1, 63, 64, 100};
  std::vector<std::byte> out(indices.size() * 656);
  const GatherBatch batch{1, rows, indices, absl::MakeSpan(out)};
  const std::vector<ReadRequest> reads = PlanReads(batch, /*coalesce=*/true);
  ASSERT_EQ(reads.size(), 4u);
  EXPECT_EQ(reads[0].remote_address, l.region.remote_base + l.EntryOffset(1, 10));
  EXPECT_EQ(reads[0].length, 3u * 656);
  EXPECT_EQ(reads[0].local_offset, 0u);
  EXPECT_EQ(reads[0].row, 0u);
  EXPECT_EQ(reads[1].remote_address, l.region.remote_base + l.EntryOffset(1, 63));
  EXPECT_EQ(reads[1].length, 656u);
  EXPECT_EQ(reads[1].local_offset, 4u * 656);
  EXPECT_EQ(reads[2].remote_address, l.region.remote_base + l.EntryOffset(1, 64));
  EXPECT_EQ(reads[2].local_offset, 5u * 656);
  EXPECT_EQ(reads[3].length, 656u);
  EXPECT_EQ(PlanReads(batch, /*coalesce=*/false).size(), 6u);  // one per entry
}

TEST(VerbsPlanTest, StridedEntriesAreNeverMerged) {
  SequenceLayout l = Layout();
  l.entry_stride = 704;  // cache-line aligned slots: entries are not adjacent in memory
  l.page_offsets = {4096, 90112, 200704, 303104, 405504, 507904, 610304, 712704};
  const std::vector<const SequenceLayout*> rows = {&l};
  const std::vector<int32_t> indices = {1, 2, 3};
  std::vector<std::byte> out(3 * 656);
  EXPECT_EQ(PlanReads(GatherBatch{0, rows, indices, absl::MakeSpan(out)}, true).size(), 3u);
}

TEST(VerbsPlanTest, DoorbellGroupsRespectTheQueueDepth) {
  const auto groups = GroupForDoorbells(10, 4);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].first, 0u);
  EXPECT_EQ(groups[1].count, 4u);
  EXPECT_EQ(groups[2].first, 8u);
  EXPECT_EQ(groups[2].count, 2u);
  EXPECT_TRUE(GroupForDoorbells(0, 4).empty());
  EXPECT_EQ(GroupForDoorbells(3, 0).size(), 3u);
}

TEST(VerbsPlanTest, QueuePairTransitionsSetWhatTheirMasksName) {
  const QpTransition init = QpToInit(1);
  EXPECT_EQ(init.attr.qp_state, IBV_QPS_INIT);
  EXPECT_EQ(init.mask, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
  EXPECT_TRUE(init.attr.qp_access_flags & IBV_ACCESS_REMOTE_READ);

  RcEndpointInfo remote;
  remote.qp_number = 0x1234;
  remote.packet_sequence = 77;
  remote.lid = 9;
  remote.gid.raw[15] = 1;
  RcEndpointInfo local;
  local.port = 2;
  local.gid_index = 3;
  const QpTransition rtr_ib = QpToReadyToReceive(local, remote, IBV_MTU_4096, /*use_gid=*/false, 16);
  EXPECT_EQ(rtr_ib.attr.qp_state, IBV_QPS_RTR);
  EXPECT_EQ(rtr_ib.attr.dest_qp_num, 0x1234u);
  EXPECT_EQ(rtr_ib.attr.rq_psn, 77u);
  EXPECT_EQ(rtr_ib.attr.ah_attr.dlid, 9);
  EXPECT_EQ(rtr_ib.attr.ah_attr.is_global, 0);
  EXPECT_EQ(rtr_ib.attr.ah_attr.port_num, 2) << "leaves by the local port";
  EXPECT_TRUE(rtr_ib.mask & IBV_QP_AV);
  EXPECT_TRUE(rtr_ib.mask & IBV_QP_MAX_DEST_RD_ATOMIC);
  const QpTransition rtr_roce = QpToReadyToReceive(local, remote, IBV_MTU_1024, /*use_gid=*/true, 16);
  EXPECT_EQ(rtr_roce.attr.ah_attr.is_global, 1);
  EXPECT_EQ(rtr_roce.attr.ah_attr.grh.sgid_index, 3) << "the local GID index";
  EXPECT_EQ(rtr_roce.attr.ah_attr.grh.dgid.raw[15], 1);

  const QpTransition rts = QpToReadyToSend(99, 16);
  EXPECT_EQ(rts.attr.qp_state, IBV_QPS_RTS);
  EXPECT_EQ(rts.attr.sq_psn, 99u);
  EXPECT_EQ(rts.mask & IBV_QP_SQ_PSN, IBV_QP_SQ_PSN);
  EXPECT_EQ(rts.mask & IBV_QP_AV, 0);
}

TEST(VerbsPlanTest, WritesGoOnePerPageRun) {
  const SequenceLayout l = Layout();
  // Tokens 60..69: 60-63 end page 0, 64-69 start page 1.
  std::vector<std::byte> entries(10 * 656);
  const std::vector<ReadRequest> writes = PlanWrites(WriteRange{&l, 1, 60, entries});
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].remote_address, l.region.remote_base + l.EntryOffset(1, 60));
  EXPECT_EQ(writes[0].length, 4u * 656);
  EXPECT_EQ(writes[0].local_offset, 0u);
  EXPECT_EQ(writes[1].remote_address, l.region.remote_base + l.EntryOffset(1, 64));
  EXPECT_EQ(writes[1].length, 6u * 656);
  EXPECT_EQ(writes[1].local_offset, 4u * 656);
}

TEST(VerbsWorkRequestTest, AChainIsLinkedWithOneCompletionAtItsEnd) {
  const std::vector<ReadRequest> reads = {{0, 0x1000, 656, 0}, {1, 0x9000, 1312, 656}, {0, 0x5000, 656, 1968}};
  WorkRequestChain chain(reads, IBV_WR_RDMA_READ, /*local_base=*/0x700000, /*lkey=*/42,
                         [](uint32_t row) { return row == 0 ? 100u : 200u; }, /*wr_id=*/7);
  const std::vector<ibv_send_wr>& wrs = chain.requests();
  ASSERT_EQ(wrs.size(), 3u);
  EXPECT_EQ(chain.head(), &wrs[0]);
  for (size_t i = 0; i < wrs.size(); ++i) {
    EXPECT_EQ(wrs[i].opcode, IBV_WR_RDMA_READ);
    EXPECT_EQ(wrs[i].num_sge, 1);
    EXPECT_EQ(wrs[i].sg_list->addr, 0x700000 + reads[i].local_offset);
    EXPECT_EQ(wrs[i].sg_list->length, reads[i].length);
    EXPECT_EQ(wrs[i].sg_list->lkey, 42u);
    EXPECT_EQ(wrs[i].wr.rdma.remote_addr, reads[i].remote_address);
    EXPECT_EQ(wrs[i].next, i + 1 < wrs.size() ? &wrs[i + 1] : nullptr);
    EXPECT_EQ(wrs[i].send_flags & IBV_SEND_SIGNALED, i + 1 == wrs.size() ? IBV_SEND_SIGNALED : 0u);
  }
  EXPECT_EQ(wrs[1].wr.rdma.rkey, 200u) << "each row's region has its own key";
  EXPECT_EQ(wrs[2].wr.rdma.rkey, 100u);
  EXPECT_EQ(wrs[2].wr_id, 7u);
  WorkRequestChain empty({}, IBV_WR_RDMA_WRITE, 0, 0, [](uint32_t) { return 0u; }, 0);
  EXPECT_EQ(empty.head(), nullptr);
}

TEST(VerbsEndpointTest, RoundTripsAndRefusesMalformedEndpoints) {
  EXPECT_EQ(MtuFromBytes(4096), IBV_MTU_4096);
  EXPECT_EQ(MtuBytes(IBV_MTU_1024), 1024u);
  EXPECT_EQ(MtuFromBytes(1500), 0);
  VerbsPeerInfo peer;
  peer.endpoint.qp_number = 0x123456;
  peer.endpoint.packet_sequence = 0xABCDE;
  peer.endpoint.lid = 17;
  peer.endpoint.gid.raw[0] = 0xfe;
  peer.endpoint.gid.raw[15] = 0x01;
  peer.mtu_bytes = 4096;
  v1::VerbsEndpoint proto;
  EndpointToProto(peer, &proto);
  auto back = EndpointFromProto(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->endpoint.qp_number, 0x123456u);
  EXPECT_EQ(back->endpoint.packet_sequence, 0xABCDEu);
  EXPECT_EQ(back->endpoint.lid, 17);
  EXPECT_EQ(std::memcmp(back->endpoint.gid.raw, peer.endpoint.gid.raw, 16), 0);
  EXPECT_EQ(back->mtu_bytes, 4096u);

  auto refused = [](v1::VerbsEndpoint bad) { return std::string(EndpointFromProto(bad).status().message()); };
  v1::VerbsEndpoint bad = proto;
  bad.set_qp_number(0);
  EXPECT_THAT(refused(bad), HasSubstr("queue pair number 0"));
  bad = proto;
  bad.set_qp_number(1u << 24);
  EXPECT_THAT(refused(bad), HasSubstr("queue pair number 16777216"));
  bad = proto;
  bad.set_gid("short");
  EXPECT_THAT(refused(bad), HasSubstr("GID has 5 bytes, not 16"));
  bad = proto;
  bad.set_mtu(1500);
  EXPECT_THAT(refused(bad), HasSubstr("MTU 1500"));
  bad = proto;
  bad.set_lid(70000);
  EXPECT_THAT(refused(bad), HasSubstr("LID 70000"));
  bad = proto;
  bad.set_packet_sequence(1u << 24);
  EXPECT_THAT(refused(bad), HasSubstr("packet sequence number"));
}

TEST(VerbsDataPlaneTest, WithoutADeviceCreationSaysWhy) {
  auto plane = VerbsDataPlane::Create(VerbsOptions{}, [](const VerbsPeerInfo&) -> absl::StatusOr<VerbsPeerInfo> {
    return absl::InternalError("never called without a device");
  });
  if (plane.ok()) GTEST_SKIP() << "an RDMA device is present; the verbs data plane needs a daemon to run against";
  EXPECT_TRUE(absl::IsFailedPrecondition(plane.status())) << plane.status();
  EXPECT_THAT(std::string(plane.status().message()), HasSubstr("no RDMA device"));
}

TEST(VerbsDeviceTest, OpensADeviceOrSaysThereIsNone) {
  auto device = VerbsDevice::Open("");
  if (device.ok()) {
    EXPECT_FALSE((*device)->name().empty());
    return;
  }
  EXPECT_TRUE(absl::IsFailedPrecondition(device.status()) || absl::IsUnavailable(device.status()))
      << device.status();
  if (absl::IsFailedPrecondition(device.status())) {
    EXPECT_THAT(std::string(device.status().message()), HasSubstr("no RDMA device"));
    std::printf("note: no RDMA device here; the verbs backend is declined with: %s\n",
                std::string(device.status().message()).c_str());
  }
  EXPECT_FALSE(VerbsDevice::Open("mlx5_does_not_exist").ok());
}

}  // namespace
}  // namespace sparsepool

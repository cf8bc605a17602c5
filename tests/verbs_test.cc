// The libibverbs backend's device-independent parts: READ planning with coalescing,
// doorbell batching, and the queue-pair transitions; and device discovery, which on a
// host without an RDMA device (this project's CI) must fail with a clear error.
#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/rdma/verbs_device.h"
#include "transport/rdma/verbs_plan.h"

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
  const QpTransition rtr_ib = QpToReadyToReceive(remote, IBV_MTU_4096, /*use_gid=*/false, 16);
  EXPECT_EQ(rtr_ib.attr.qp_state, IBV_QPS_RTR);
  EXPECT_EQ(rtr_ib.attr.dest_qp_num, 0x1234u);
  EXPECT_EQ(rtr_ib.attr.rq_psn, 77u);
  EXPECT_EQ(rtr_ib.attr.ah_attr.dlid, 9);
  EXPECT_EQ(rtr_ib.attr.ah_attr.is_global, 0);
  EXPECT_TRUE(rtr_ib.mask & IBV_QP_AV);
  EXPECT_TRUE(rtr_ib.mask & IBV_QP_MAX_DEST_RD_ATOMIC);
  const QpTransition rtr_roce = QpToReadyToReceive(remote, IBV_MTU_1024, /*use_gid=*/true, 16);
  EXPECT_EQ(rtr_roce.attr.ah_attr.is_global, 1);
  EXPECT_EQ(rtr_roce.attr.ah_attr.grh.dgid.raw[15], 1);

  const QpTransition rts = QpToReadyToSend(99, 16);
  EXPECT_EQ(rts.attr.qp_state, IBV_QPS_RTS);
  EXPECT_EQ(rts.attr.sq_psn, 99u);
  EXPECT_EQ(rts.mask & IBV_QP_SQ_PSN, IBV_QP_SQ_PSN);
  EXPECT_EQ(rts.mask & IBV_QP_AV, 0);
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

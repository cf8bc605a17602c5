// The throughput model against hand-computed cases.
#include "bench/throughput_model.h"

#include <cmath>

#include "gtest/gtest.h"

namespace sparsepool::bench {
namespace {

// A toy node: numbers chosen so each result is computed by hand below.
NodeParams Toy() {
  NodeParams n;
  n.gpu_memory_bytes = 100e9;
  n.weights_bytes = 40e9;
  n.reserved_bytes = 10e9;       // 50e9 free
  n.hbm_bytes_per_s = 1e12;
  n.link_bytes_per_s = 50e9;
  n.rdma_bytes_per_s = 25e9;
  n.compute_s_per_token = 1e-4;
  n.compute_fixed_s = 0.01;
  n.cache_slots_per_layer = 4096;
  n.cache_miss_fraction = 0.1;
  n.max_batch = 100000;
  return n;
}

TEST(ThroughputModelTest, AllOnGpuIsMemoryBound) {
  ModelShape s;  // 61 layers, 656 + 132 bytes per token and layer
  // 32768 tokens x 61 x 788 B = 1,575,092,224 B per request; 50e9 / that = 31.7 -> 31.
  const Throughput t = Evaluate(s, Toy(), Placement::kAllOnGpu, 32768);
  EXPECT_EQ(t.batch, 31u);
  EXPECT_EQ(t.limit, "memory");
  // indexer: 31 x 32768 x 61 x 132 / 1e12 = 8.179e-3 s; compute 0.01 + 31e-4 + that.
  EXPECT_NEAR(t.step_seconds, 0.01 + 31e-4 + 31.0 * 32768 * 61 * 132 / 1e12, 1e-9);
  EXPECT_DOUBLE_EQ(t.link_bytes_per_step, 0);
}

TEST(ThroughputModelTest, PoolTopKMovesOnlyTheSelectedEntries) {
  ModelShape s;
  // GPU keeps keys (32768 x 61 x 132 = 263,847,936) + 2 x 2048 x 656 = 2,686,976.
  EXPECT_DOUBLE_EQ(GpuBytesPerRequest(s, Toy(), Placement::kPoolTopK, 32768), 263847936.0 + 2686976.0);
  const Throughput t = Evaluate(s, Toy(), Placement::kPoolTopK, 32768);
  EXPECT_EQ(t.batch, 187u);  // floor(50e9 / 266,534,912) = 187
  // 187 x 2048 x 61 x 656 B per step.
  EXPECT_DOUBLE_EQ(t.link_bytes_per_step, 187.0 * 2048 * 61 * 656);
  const double compute = 0.01 + 187e-4 + 187.0 * 32768 * 61 * 132 / 1e12;
  const double link = t.link_bytes_per_step / 50e9;
  EXPECT_NEAR(t.step_seconds, std::max(compute, link), 1e-12);
  EXPECT_NEAR(t.tokens_per_second, 187 / t.step_seconds, 1e-6);
}

TEST(ThroughputModelTest, ResidencyCacheMovesOnlyMisses) {
  ModelShape s;
  const Throughput t = Evaluate(s, Toy(), Placement::kResidencyCache, 32768);
  // keys 263,847,936 + 4096 x 61 x 656 = 163,905,536 -> 427,753,472 per request.
  EXPECT_EQ(t.batch, 116u);  // floor(50e9 / 427,753,472) = 116
  EXPECT_DOUBLE_EQ(t.link_bytes_per_step, 116 * 0.1 * 2048 * 61 * 656);
}

TEST(ThroughputModelTest, FullPrefixOverRdmaIsLinkBoundAtLongContexts) {
  ModelShape s;
  const Throughput t = Evaluate(s, Toy(), Placement::kRdmaFullPrefix, 131072);
  // GPU: keys 131072 x 61 x 132 = 1,055,391,744 + 2 x 131072 x 656 = 171,966,464.
  EXPECT_EQ(t.batch, 40u);  // floor(50e9 / 1,227,358,208) = 40
  const double link = 40.0 * 131072 * 61 * 656 / 25e9;  // 8.39 s
  EXPECT_NEAR(t.step_seconds, link, 1e-9);
  // Top-k from a CXL pool at the same context moves 64x fewer bytes per request.
  const Throughput topk = Evaluate(s, Toy(), Placement::kPoolTopK, 131072);
  EXPECT_DOUBLE_EQ(t.link_bytes_per_step / t.batch, 64 * topk.link_bytes_per_step / topk.batch);
  EXPECT_GT(topk.tokens_per_second, 10 * t.tokens_per_second);
}

TEST(ThroughputModelTest, QueueWaitIsMD1) {
  EXPECT_DOUBLE_EQ(QueueWaitSeconds(0, 2.0), 0);
  // rho = 0.5: 0.5 x 1 / (2 x 0.5) = 0.5 s.
  EXPECT_DOUBLE_EQ(QueueWaitSeconds(0.5, 1.0), 0.5);
  // rho = 0.9: 0.9 x 0.3 / 0.2 = 1.35 s.
  EXPECT_NEAR(QueueWaitSeconds(3.0, 0.3), 1.35, 1e-12);
  EXPECT_TRUE(std::isinf(QueueWaitSeconds(2.0, 0.5))) << "pulls arriving as fast as the wire carries them";
}

// The baseline the field runs: the prefix crosses once, at admission; steps gather the
// top-k from the decode host's copy; host memory caps the batch.
TEST(ThroughputModelTest, PrefixPullPaysAtAdmissionAndInHostMemory) {
  ModelShape s;
  NodeParams n = Toy();
  n.host_memory_bytes = 100e9;
  n.arrivals_per_s = 2.0;
  // 32768 x 61 x 656 = 1,311,244,288 B per request: 100e9 / that = 76.3 -> 76 (HBM
  // would hold 187, as for the pool's top-k).
  const Throughput t = Evaluate(s, n, Placement::kRdmaPrefixPull, 32768);
  EXPECT_EQ(t.batch, 76u);
  EXPECT_EQ(t.limit, "host memory");
  // Steps move each request's top-k over the host link, as from a pool.
  EXPECT_DOUBLE_EQ(t.link_bytes_per_step, 76.0 * 2048 * 61 * 656);
  // The pull: 1,311,244,288 / 25e9 = 52.45 ms; rho = 2 x 0.05245 = 0.1049; wait =
  // rho x pull / (2 (1 - rho)).
  const double pull = 1311244288.0 / 25e9;
  const double rho = 2 * pull;
  EXPECT_NEAR(t.admission_seconds, pull + rho * pull / (2 * (1 - rho)), 1e-12);
  EXPECT_NEAR(t.ttft_seconds, t.admission_seconds + t.step_seconds, 1e-12);
  // The pool's top-k admits nothing: its TTFT is one step.
  const Throughput topk = Evaluate(s, n, Placement::kPoolTopK, 32768);
  EXPECT_DOUBLE_EQ(topk.admission_seconds, 0);
  EXPECT_DOUBLE_EQ(topk.ttft_seconds, topk.step_seconds);
  // At 128K and 8 arrivals a second the pulls outrun the wire: TTFT without bound.
  n.arrivals_per_s = 8.0;
  EXPECT_TRUE(std::isinf(Evaluate(s, n, Placement::kRdmaPrefixPull, 131072).ttft_seconds));
}

TEST(ThroughputModelTest, NothingFitsAndSchedulerCap) {
  ModelShape s;
  NodeParams n = Toy();
  n.weights_bytes = 95e9;  // less than nothing free
  EXPECT_EQ(Evaluate(s, n, Placement::kPoolTopK, 8192).batch, 0u);
  n = Toy();
  n.max_batch = 64;
  const Throughput t = Evaluate(s, n, Placement::kPoolTopK, 8192);
  EXPECT_EQ(t.batch, 64u);
  EXPECT_EQ(t.limit, "scheduler");
}

}  // namespace
}  // namespace sparsepool::bench

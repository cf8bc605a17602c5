// The GPU residency cache against its CPU model, step by step and slot by slot, with
// the entries in the slots checked byte for byte against the pool. Skips without a
// CUDA device (CI); runs on the device machine (tools/gpu_check.sh).
#include <cuda_runtime.h>

#include <cstring>
#include <random>
#include <vector>

#include "bench/overlap_trace.h"
#include "gtest/gtest.h"
#include "tests/cuda_assert.h"
#include "kernels/residency_cache.h"
#include "kernels/residency_model.h"
#include "tests/gpu_region.h"

namespace sparsepool::kernels {
namespace {


constexpr uint32_t kEntry = 656;
constexpr uint32_t kPageTokens = 64;

bool HaveGpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

// Rows of `tokens` tokens each with pages at random places in the region; device copies.
struct Rows {
  std::vector<std::vector<uint64_t>> pages;
  std::vector<RowPages> host;
  std::vector<uint64_t*> device_pages;
  RowPages* device = nullptr;
  ~Rows() {
    for (uint64_t* d : device_pages) cudaFree(d);
    cudaFree(device);
  }
};

void MakeRows(Rows& rows, uint32_t batch, uint32_t tokens, uint64_t region_bytes, std::mt19937_64& rng) {
  const uint64_t page_bytes = uint64_t{kPageTokens} * kEntry;
  for (uint32_t r = 0; r < batch; ++r) {
    std::vector<uint64_t> pages((tokens + kPageTokens - 1) / kPageTokens);
    for (auto& p : pages) p = (rng() % (region_bytes / page_bytes)) * page_bytes;
    uint64_t* d = nullptr;
    cudaMalloc(&d, pages.size() * 8);
    cudaMemcpy(d, pages.data(), pages.size() * 8, cudaMemcpyHostToDevice);
    rows.device_pages.push_back(d);
    rows.host.push_back(RowPages{d, tokens, kPageTokens, kEntry});
    rows.pages.push_back(std::move(pages));
  }
  cudaMalloc(&rows.device, batch * sizeof(RowPages));
  cudaMemcpy(rows.device, rows.host.data(), batch * sizeof(RowPages), cudaMemcpyHostToDevice);
}

class GpuResidencyTest : public ::testing::TestWithParam<ResidencyPolicy> {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no CUDA device here: GPU tests run on the device machine (tools/gpu_check.sh)";
  }
};

TEST_P(GpuResidencyTest, MatchesTheCpuModelStepByStep) {
  constexpr uint32_t kBatch = 8, kK = 2048, kTokens = 20000, kCapacity = 2560;
  testing::GpuRegion region(256 << 20, 7);
  ASSERT_TRUE(region.ok());
  std::mt19937_64 rng(1);
  Rows rows;
  MakeRows(rows, kBatch, kTokens, region.bytes(), rng);
  ResidencyOptions options;
  options.instances = kBatch + 2;
  options.capacity = kCapacity;
  options.max_tokens = 32768;
  options.entry_bytes = kEntry;
  options.policy = GetParam();
  auto cache = ResidencyCache::Create(options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  // Rows use instances 2..9, so instance ids are not row numbers.
  std::vector<uint32_t> instances(kBatch);
  for (uint32_t r = 0; r < kBatch; ++r) instances[r] = r + 2;
  uint32_t* device_instances = nullptr;
  int32_t* device_indices = nullptr;
  int32_t* device_slots = nullptr;
  GatherFault* fault = nullptr;
  CUDA_OK(cudaMalloc(&device_instances, kBatch * 4));
  CUDA_OK(cudaMalloc(&device_indices, kBatch * kK * 4));
  CUDA_OK(cudaMalloc(&device_slots, kBatch * kK * 4));
  CUDA_OK(cudaMallocHost(&fault, sizeof(GatherFault)));
  std::memset(fault, 0, sizeof(*fault));
  CUDA_OK(cudaMemcpy(device_instances, instances.data(), kBatch * 4, cudaMemcpyHostToDevice));

  std::vector<bench::OverlapTrace> traces;
  std::vector<ResidencyModel> models;
  for (uint32_t r = 0; r < kBatch; ++r) {
    traces.emplace_back(kTokens, kK, 0.8, 100 + r);
    models.emplace_back(kCapacity, 32768, GetParam());
  }
  uint64_t hits = 0, misses = 0;
  std::vector<int32_t> indices(kBatch * kK), slots(kBatch * kK);
  std::vector<std::byte> slot_data(uint64_t{kCapacity} * kEntry);
  for (uint32_t step = 1; step <= 40; ++step) {
    for (uint32_t r = 0; r < kBatch; ++r) {
      std::vector<int32_t> selected = traces[r].Next();
      std::shuffle(selected.begin(), selected.end(), rng);  // the indexer's order is by score
      if (r == 3) selected[5] = -1;                            // some padding
      std::copy(selected.begin(), selected.end(), indices.begin() + r * kK);
    }
    CUDA_OK(cudaMemcpy(device_indices, indices.data(), indices.size() * 4, cudaMemcpyHostToDevice));
    ResidencyStepArgs args;
    args.region = region.device();
    args.rows = rows.device;
    args.instances = device_instances;
    args.indices = device_indices;
    args.batch = kBatch;
    args.k = kK;
    args.step = step;
    args.out_slots = device_slots;
    args.fault = fault;
    absl::Status launched = (*cache)->Step(args, nullptr);
    ASSERT_TRUE(launched.ok()) << launched;
    CUDA_OK(cudaDeviceSynchronize());
    ASSERT_EQ(fault->flag, 0);
    CUDA_OK(cudaMemcpy(slots.data(), device_slots, slots.size() * 4, cudaMemcpyDeviceToHost));
    for (uint32_t r = 0; r < kBatch; ++r) {
      const auto expected = models[r].Step(absl::MakeSpan(indices).subspan(r * kK, kK), kTokens, step);
      hits += expected.hits;
      misses += expected.misses.size();
      ASSERT_TRUE(std::equal(expected.slots.begin(), expected.slots.end(), slots.begin() + r * kK))
          << "row " << r << " step " << step;
      if (step % 10 != 0 && step != 1) continue;
      // Every selected entry is in its slot, byte for byte.
      CUDA_OK(cudaMemcpy(slot_data.data(), (*cache)->slot_data(instances[r]), slot_data.size(),
                         cudaMemcpyDeviceToHost));
      for (uint32_t i = 0; i < kK; ++i) {
        const int32_t token = indices[r * kK + i];
        if (token < 0) continue;
        const uint64_t offset = rows.pages[r][token / kPageTokens] + uint64_t(token % kPageTokens) * kEntry;
        ASSERT_EQ(std::memcmp(slot_data.data() + uint64_t(slots[r * kK + i]) * kEntry, region.host() + offset, kEntry), 0)
            << "row " << r << " step " << step << " token " << token;
      }
    }
  }
  auto counters = (*cache)->Counters();
  ASSERT_TRUE(counters.ok());
  EXPECT_EQ(counters->hits, hits);
  EXPECT_EQ(counters->misses, misses);
  EXPECT_GT(hits, misses);  // 80% overlap: most lookups hit
  cudaFree(device_instances);
  cudaFree(device_indices);
  cudaFree(device_slots);
  cudaFreeHost(fault);
}

TEST_P(GpuResidencyTest, FaultsAreReportedAndStateStaysConsistent) {
  testing::GpuRegion region(16 << 20, 9);
  ASSERT_TRUE(region.ok());
  std::mt19937_64 rng(2);
  Rows rows;
  MakeRows(rows, 1, 1000, region.bytes(), rng);
  ResidencyOptions options;
  options.instances = 1;
  options.capacity = 4;
  options.max_tokens = 1000;
  options.entry_bytes = kEntry;
  options.policy = GetParam();
  auto cache = ResidencyCache::Create(options);
  ASSERT_TRUE(cache.ok());
  uint32_t* instance = nullptr;
  int32_t* indices = nullptr;
  int32_t* slots = nullptr;
  GatherFault* fault = nullptr;
  CUDA_OK(cudaMallocManaged(&instance, 4));
  CUDA_OK(cudaMallocManaged(&indices, 16));
  CUDA_OK(cudaMallocManaged(&slots, 16));
  CUDA_OK(cudaMallocHost(&fault, sizeof(GatherFault)));
  ResidencyStepArgs args;
  args.region = region.device();
  args.rows = rows.device;
  args.instances = instance;
  args.indices = indices;
  args.batch = 1;
  args.k = 4;
  args.out_slots = slots;
  args.fault = fault;
  struct Case {
    std::vector<int32_t> indices;
    uint32_t instance;
    int32_t kind;
  };
  uint32_t step = 0;
  for (const Case& c : {Case{{1, 2, 1000, 3}, 0, 1}, Case{{7, 7, 8, 9}, 0, kFaultDuplicateToken},
                        Case{{1, 2, 3, -1}, 5, kFaultInstance}}) {
    std::memset(fault, 0, sizeof(*fault));
    std::copy(c.indices.begin(), c.indices.end(), indices);
    *instance = c.instance;
    args.step = ++step;
    ASSERT_TRUE((*cache)->Step(args, nullptr).ok());
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT_EQ(fault->flag, c.kind);
  }
  // k above the capacity is refused by the launcher, naming both.
  args.k = 5;
  EXPECT_FALSE((*cache)->Step(args, nullptr).ok());
  args.k = 4;
  args.indices = nullptr;
  EXPECT_FALSE((*cache)->Step(args, nullptr).ok());
  cudaFree(instance);
  cudaFree(indices);
  cudaFree(slots);
  cudaFreeHost(fault);
}

INSTANTIATE_TEST_SUITE_P(Policies, GpuResidencyTest,
                         ::testing::Values(ResidencyPolicy::kLru, ResidencyPolicy::kDecayedFrequency));

}  // namespace
}  // namespace sparsepool::kernels

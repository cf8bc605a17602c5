// The client's GPU path end to end on a real region: formatted by the daemon's region
// store in /dev/shm, entries written by the CPU data plane, fetched by GpuFetcher into
// GPU memory and compared with the CPU fetch; write-back read back by the CPU. Skips
// without a CUDA device (CI); runs on the device machine (tools/gpu_check.sh).
#include "bench/gpu_fetcher.h"

#include <cuda_runtime.h>
#include <unistd.h>

#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "bench/entry_pattern.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cuda_assert.h"
#include "service/region_store.h"

namespace sparsepool {
namespace {

using ::sparsepool::bench::GpuFetcher;
using ::testing::HasSubstr;


class GpuFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fetcher = GpuFetcher::Create();
    if (!fetcher.ok()) GTEST_SKIP() << fetcher.status().message() << ": GPU tests run on the device machine";
    fetcher_ = *std::move(fetcher);
    for (int r = 0; r < 2; ++r) {
      RegionSpec spec;
      spec.path = absl::StrCat("/dev/shm/sparsepool-gpu-fetcher-", getpid(), "-", r);
      spec.size_bytes = 128 << 20;
      unlink(spec.path.c_str());
      paths_.push_back(spec.path);
      RecoveryReport report;
      auto store = RegionStore::Open(r, *MappedRegion::OpenOrCreate(spec), 64, 0, &report);
      ASSERT_TRUE(store.ok()) << store.status();
      (*store)->PersistIdLimit(1000);  // the ids these tests use, issued as the pool would
      stores_.push_back(*std::move(store));
    }
    CUDA_OK(cudaStreamCreate(&stream_));
  }
  void TearDown() override {
    fetcher_.reset();
    stores_.clear();
    for (const auto& path : paths_) unlink(path.c_str());
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  SequenceLayout Create(int region, SequenceId id, uint64_t tokens) {
    NewSequence seq;
    seq.id = id;
    seq.layers = 4;
    seq.entry_bytes = 656;
    seq.entry_stride = 656;
    seq.page_tokens = 64;
    seq.tokens = tokens;
    auto slot = stores_[region]->Create(seq);
    EXPECT_TRUE(slot.ok());
    slots_[id] = {region, *slot};
    SequenceLayout layout = stores_[region]->Layout(*slot);
    WriteTokens(layout, 0, tokens);
    return layout;
  }
  void WriteTokens(const SequenceLayout& layout, uint64_t first, uint64_t end) {
    std::vector<std::byte> entries((end - first) * layout.entry_bytes);
    for (uint32_t layer = 0; layer < layout.layers; ++layer) {
      for (uint64_t t = first; t < end; ++t) {
        bench::FillEntry(1, layout.sequence_id, layer, t,
                         absl::MakeSpan(entries).subspan((t - first) * 656, 656));
      }
      ASSERT_TRUE(cpu_.Write({&layout, layer, first, entries}).ok());
    }
  }
  // GPU fetch of `indices` for `layouts`, returned to the host; Finish's status too.
  absl::Status GpuFetch(uint32_t layer, const std::vector<const SequenceLayout*>& layouts,
                        const std::vector<int32_t>& indices, std::vector<std::byte>& out) {
    int32_t* d_indices = nullptr;
    std::byte* d_out = nullptr;
    out.assign(indices.size() * 656, std::byte{0xA5});
    cudaMalloc(&d_indices, indices.size() * 4);
    cudaMalloc(&d_out, out.size());
    cudaMemcpy(d_indices, indices.data(), indices.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(d_out, out.data(), out.size(), cudaMemcpyHostToDevice);
    absl::Status s = fetcher_->FetchTopK(layer, layouts, d_indices, indices.size() / layouts.size(), d_out, stream_);
    absl::Status finished = fetcher_->Finish(stream_);
    cudaMemcpy(out.data(), d_out, out.size(), cudaMemcpyDeviceToHost);
    cudaFree(d_indices);
    cudaFree(d_out);
    return s.ok() ? finished : s;
  }

  std::unique_ptr<GpuFetcher> fetcher_;
  std::vector<std::unique_ptr<RegionStore>> stores_;
  std::vector<std::string> paths_;
  std::map<SequenceId, std::pair<int, SlotIndex>> slots_;
  CxlDataPlane cpu_;
  cudaStream_t stream_ = nullptr;
};

TEST_F(GpuFetcherTest, MatchesTheCpuFetchAndFollowsGrowth) {
  SequenceLayout a = Create(0, 1, 300), b = Create(0, 2, 1000), c = Create(0, 3, 64 * 7 + 1);
  std::mt19937_64 rng(4);
  std::vector<const SequenceLayout*> layouts = {&a, &b, &c};
  const uint32_t k = 512;
  for (uint32_t layer = 0; layer < 4; ++layer) {
    std::vector<int32_t> indices;
    for (const SequenceLayout* l : layouts) {
      for (uint32_t i = 0; i < k; ++i) indices.push_back(rng() % 9 == 0 ? -1 : static_cast<int32_t>(rng() % l->tokens));
    }
    std::vector<std::byte> gpu, cpu(indices.size() * 656, std::byte{0xA5});
    ASSERT_TRUE(GpuFetch(layer, layouts, indices, gpu).ok());
    ASSERT_TRUE(cpu_.Gather({layer, layouts, indices, absl::MakeSpan(cpu)}).ok());
    ASSERT_TRUE(gpu == cpu) << "layer " << layer;
  }
  // The sequence grows by pages: the device page table is replaced.
  ASSERT_TRUE(stores_[0]->Extend(slots_[2].second, 1500, 1).ok());
  b = stores_[0]->Layout(slots_[2].second);
  WriteTokens(b, 1000, 1500);
  std::vector<int32_t> indices(k);
  for (auto& i : indices) i = 1000 + static_cast<int32_t>(rng() % 500);
  std::vector<std::byte> gpu, cpu(indices.size() * 656);
  ASSERT_TRUE(GpuFetch(2, {&b}, indices, gpu).ok());
  ASSERT_TRUE(cpu_.Gather({2, std::vector<const SequenceLayout*>{&b}, indices, absl::MakeSpan(cpu)}).ok());
  EXPECT_TRUE(gpu == cpu);
}

TEST_F(GpuFetcherTest, BadInputIsNamed) {
  SequenceLayout a = Create(0, 7, 100), other = Create(1, 8, 100);
  std::vector<std::byte> out;
  absl::Status s = GpuFetch(1, {&a}, std::vector<int32_t>{0, 5, 100, 3}, out);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("token index 100"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("sequence 7"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("layer 1"));
  s = GpuFetch(0, {&a, &other}, std::vector<int32_t>{0, 1}, out);
  EXPECT_THAT(std::string(s.message()), HasSubstr("different regions"));
  s = GpuFetch(9, {&a}, std::vector<int32_t>{0}, out);
  EXPECT_THAT(std::string(s.message()), HasSubstr("layer 9"));
  // After the errors the fetcher still works.
  EXPECT_TRUE(GpuFetch(0, {&a}, std::vector<int32_t>{99, -1}, out).ok());
}

TEST_F(GpuFetcherTest, AStaleLayoutIsRefusedAfterTheFetchAndBeforeAWrite) {
  SequenceLayout a = Create(0, 21, 300), b = Create(0, 22, 300);
  std::vector<int32_t> indices(2 * 64);
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int32_t>(i % 64);
  std::vector<std::byte> out;
  ASSERT_TRUE(GpuFetch(1, {&a, &b}, indices, out).ok());
  // Another client releases b while this one still holds its layout.
  const auto [region, slot] = slots_[22];
  stores_[region]->SetState(slot, region_format::RecordState::kReleased, 1);
  absl::Status stale = GpuFetch(1, {&a, &b}, indices, out);
  EXPECT_TRUE(absl::IsNotFound(stale)) << stale;
  EXPECT_THAT(std::string(stale.message()), HasSubstr("sequence 22 was released while this client still used"));
  // A write-back through the stale layout is refused before it is enqueued.
  int32_t* d_tokens = nullptr;
  std::byte* d_entries = nullptr;
  CUDA_OK(cudaMalloc(&d_tokens, 2 * sizeof(int32_t)));
  CUDA_OK(cudaMalloc(&d_entries, 2 * 656));
  std::vector<const SequenceLayout*> rows = {&a, &b};
  EXPECT_TRUE(absl::IsNotFound(fetcher_->WriteBack(0, rows, d_tokens, d_entries, stream_)));
  EXPECT_TRUE(fetcher_->Finish(stream_).ok()) << "nothing was left pending";
  cudaFree(d_tokens);
  cudaFree(d_entries);
}

TEST_F(GpuFetcherTest, WriteBackLandsInThePool) {
  SequenceLayout a = Create(0, 11, 130), b = Create(0, 12, 64);
  std::vector<const SequenceLayout*> layouts = {&a, &b};
  const std::vector<int32_t> tokens = {129, 10};
  std::vector<std::byte> entries(2 * 656);
  std::mt19937_64 rng(8);
  for (auto& e : entries) e = static_cast<std::byte>(rng());
  int32_t* d_tokens = nullptr;
  std::byte* d_entries = nullptr;
  CUDA_OK(cudaMalloc(&d_tokens, 8));
  CUDA_OK(cudaMalloc(&d_entries, entries.size()));
  CUDA_OK(cudaMemcpy(d_tokens, tokens.data(), 8, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d_entries, entries.data(), entries.size(), cudaMemcpyHostToDevice));
  ASSERT_TRUE(fetcher_->WriteBack(3, layouts, d_tokens, d_entries, stream_).ok());
  ASSERT_TRUE(fetcher_->Finish(stream_).ok());
  std::vector<std::byte> read(2 * 656);
  ASSERT_TRUE(cpu_.Gather({3, std::vector<const SequenceLayout*>{&a}, std::vector<int32_t>{129}, absl::MakeSpan(read).subspan(0, 656)}).ok());
  ASSERT_TRUE(cpu_.Gather({3, std::vector<const SequenceLayout*>{&b}, std::vector<int32_t>{10}, absl::MakeSpan(read).subspan(656)}).ok());
  EXPECT_TRUE(read == entries);
  cudaFree(d_tokens);
  cudaFree(d_entries);
}

// Through the residency cache: slot indices point at entries identical to the CPU
// fetch, and a second step with the same selection is all hits.
TEST_F(GpuFetcherTest, CachedFetchDeliversTheSameEntries) {
  SequenceLayout a = Create(0, 21, 3000), b = Create(0, 22, 2000);
  std::vector<const SequenceLayout*> layouts = {&a, &b};
  kernels::ResidencyOptions options;
  options.instances = 2;
  options.capacity = 1024;
  options.max_tokens = 4096;
  options.entry_bytes = 656;
  auto cache = kernels::ResidencyCache::Create(options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  const uint32_t k = 512;
  std::mt19937_64 rng(12);
  std::vector<int32_t> indices;
  for (const SequenceLayout* l : layouts) {
    std::vector<int32_t> row(l->tokens);
    std::iota(row.begin(), row.end(), 0);
    std::shuffle(row.begin(), row.end(), rng);
    indices.insert(indices.end(), row.begin(), row.begin() + k);
  }
  const std::vector<uint32_t> instances = {1, 0};
  uint32_t* d_instances = nullptr;
  int32_t* d_indices = nullptr;
  int32_t* d_slots = nullptr;
  CUDA_OK(cudaMalloc(&d_instances, 8));
  CUDA_OK(cudaMalloc(&d_indices, indices.size() * 4));
  CUDA_OK(cudaMalloc(&d_slots, indices.size() * 4));
  CUDA_OK(cudaMemcpy(d_instances, instances.data(), 8, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d_indices, indices.data(), indices.size() * 4, cudaMemcpyHostToDevice));
  std::vector<std::byte> cpu(indices.size() * 656);
  ASSERT_TRUE(cpu_.Gather({2, layouts, indices, absl::MakeSpan(cpu)}).ok());
  for (uint32_t step = 1; step <= 2; ++step) {
    ASSERT_TRUE(fetcher_->FetchTopKCached(**cache, 2, layouts, d_instances, d_indices, k, step, d_slots, stream_).ok());
    ASSERT_TRUE(fetcher_->Finish(stream_).ok());
  }
  std::vector<int32_t> slots(indices.size());
  CUDA_OK(cudaMemcpy(slots.data(), d_slots, slots.size() * 4, cudaMemcpyDeviceToHost));
  for (uint32_t row = 0; row < 2; ++row) {
    std::vector<std::byte> data(options.capacity * 656);
    CUDA_OK(cudaMemcpy(data.data(), (*cache)->slot_data(instances[row]), data.size(), cudaMemcpyDeviceToHost));
    for (uint32_t i = 0; i < k; ++i) {
      const int32_t slot = slots[row * k + i];
      ASSERT_GE(slot, 0);
      ASSERT_EQ(std::memcmp(data.data() + uint64_t(slot) * 656, cpu.data() + (uint64_t(row) * k + i) * 656, 656), 0);
    }
  }
  auto counters = (*cache)->Counters();
  EXPECT_EQ(counters->misses, 2u * k);  // the first step
  EXPECT_EQ(counters->hits, 2u * k);    // the second
  cudaFree(d_instances);
  cudaFree(d_indices);
  cudaFree(d_slots);
}

}  // namespace
}  // namespace sparsepool

// GPU top-k gather against the CPU reference on random inputs of many shapes, with
// padding and bad indices, and the launcher's argument checks. Needs a CUDA device:
// without one (CI) every test is skipped with a message saying so; tools/gpu_check.sh
// runs them on the device machine.
#include <cuda_runtime.h>

#include <cstring>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cuda_assert.h"
#include "kernels/cpu_reference.h"
#include "kernels/topk_gather.h"
#include "tests/gpu_region.h"

namespace sparsepool::kernels {
namespace {

using ::testing::HasSubstr;


bool HaveGpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

class GpuGatherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no CUDA device here: GPU tests run on the device machine (tools/gpu_check.sh)";
    region_ = std::make_unique<testing::GpuRegion>(64 << 20, 5);
    ASSERT_TRUE(region_->ok());
    region_bytes_ = region_->bytes();
    device_region_ = region_->device();
    CUDA_OK(cudaMallocHost(&fault_, sizeof(GatherFault)));
    CUDA_OK(cudaStreamCreate(&stream_));
  }
  void TearDown() override {
    if (region_ == nullptr) return;
    cudaStreamDestroy(stream_);
    cudaFreeHost(fault_);
  }

  struct Case {
    std::vector<RowPages> rows;  // page_offsets point at host copies until uploaded
    std::vector<std::vector<uint64_t>> pages;
    std::vector<int32_t> indices;
    uint32_t k = 0;
    uint32_t entry_bytes = 0;
  };

  // Random rows whose pages lie at random page-aligned places in the region.
  Case MakeCase(uint32_t batch, uint32_t k, uint32_t entry_bytes, uint32_t stride,
                uint32_t page_tokens, std::mt19937_64& rng) {
    Case c;
    c.k = k;
    c.entry_bytes = entry_bytes;
    const uint64_t page_bytes = uint64_t{page_tokens} * stride;
    const uint64_t slots = region_bytes_ / page_bytes;
    for (uint32_t row = 0; row < batch; ++row) {
      const uint64_t tokens = 1 + rng() % 6000;
      std::vector<uint64_t> pages((tokens + page_tokens - 1) / page_tokens);
      for (auto& p : pages) p = (rng() % slots) * page_bytes;  // rows may share pages: reads only
      c.pages.push_back(pages);
      c.rows.push_back(RowPages{nullptr, tokens, page_tokens, stride});
      for (uint32_t i = 0; i < k; ++i) {
        c.indices.push_back(rng() % 6 == 0 ? -1 : static_cast<int32_t>(rng() % tokens));
      }
    }
    return c;
  }

  // Runs the gather on the GPU; returns the output and the fault.
  void Run(Case& c, GatherAlgorithm algorithm, std::vector<std::byte>& out, GatherFault& fault,
           absl::Status* launch_status = nullptr) {
    std::vector<uint64_t*> device_pages;
    for (size_t row = 0; row < c.rows.size(); ++row) {
      uint64_t* d = nullptr;
      CUDA_OK(cudaMalloc(&d, c.pages[row].size() * 8 + 8));
      CUDA_OK(cudaMemcpy(d, c.pages[row].data(), c.pages[row].size() * 8, cudaMemcpyHostToDevice));
      device_pages.push_back(d);
      c.rows[row].page_offsets = d;
    }
    RowPages* rows = nullptr;
    int32_t* indices = nullptr;
    std::byte* device_out = nullptr;
    const uint64_t out_bytes = c.rows.size() * uint64_t{c.k} * c.entry_bytes;
    CUDA_OK(cudaMalloc(&rows, c.rows.size() * sizeof(RowPages)));
    CUDA_OK(cudaMalloc(&indices, c.indices.size() * 4));
    CUDA_OK(cudaMalloc(&device_out, out_bytes));
    CUDA_OK(cudaMemcpy(rows, c.rows.data(), c.rows.size() * sizeof(RowPages), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(indices, c.indices.data(), c.indices.size() * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(device_out, 0xA5, out_bytes));  // poison: padding must stay so
    std::memset(fault_, 0, sizeof(GatherFault));
    GatherLaunch launch;
    launch.region = device_region_;
    launch.region_bytes = region_bytes_;
    launch.rows = rows;
    launch.indices = indices;
    launch.batch = static_cast<uint32_t>(c.rows.size());
    launch.k = c.k;
    launch.entry_bytes = c.entry_bytes;
    launch.out = device_out;
    launch.out_bytes = out_bytes;
    launch.fault = fault_;
    launch.algorithm = algorithm;
    void* scratch = nullptr;
    if (algorithm == GatherAlgorithm::kBatchSortedByAddress) {
      launch.scratch_bytes = GatherScratchBytes(uint64_t{launch.batch} * launch.k);
      CUDA_OK(cudaMalloc(&scratch, launch.scratch_bytes));
      launch.scratch = scratch;
    }
    absl::Status status = LaunchTopKGather(launch, stream_);
    if (launch_status != nullptr) *launch_status = status;
    ASSERT_TRUE(status.ok()) << status;
    CUDA_OK(cudaStreamSynchronize(stream_));
    out.resize(out_bytes);
    CUDA_OK(cudaMemcpy(out.data(), device_out, out_bytes, cudaMemcpyDeviceToHost));
    fault = *fault_;
    cudaFree(rows);
    cudaFree(indices);
    cudaFree(device_out);
    cudaFree(scratch);
    for (uint64_t* d : device_pages) cudaFree(d);
  }

  static constexpr GatherAlgorithm kAlgorithms[] = {GatherAlgorithm::kWarpPerEntry,
                                                    GatherAlgorithm::kSortedByAddress,
                                                    GatherAlgorithm::kBatchSortedByAddress};

  std::unique_ptr<testing::GpuRegion> region_;
  const std::byte* device_region_ = nullptr;
  uint64_t region_bytes_ = 0;
  GatherFault* fault_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

TEST_F(GpuGatherTest, MatchesTheCpuReferenceOnManyShapes) {
  std::mt19937_64 rng(17);
  int cases = 0;
  for (uint32_t entry_bytes : {656u, 584u, 1152u, 100u, 17u}) {
    for (uint32_t align : {1u, 64u}) {
      for (uint32_t page_tokens : {1u, 7u, 64u}) {
        for (auto [batch, k] : {std::pair<uint32_t, uint32_t>{1, 1}, {3, 100}, {8, 2048}, {2, 3000}, {2, 5000}}) {
          const uint32_t stride = (entry_bytes + align - 1) / align * align;
          Case c = MakeCase(batch, k, entry_bytes, stride, page_tokens, rng);
          std::vector<std::byte> expected(c.rows.size() * uint64_t{k} * entry_bytes, std::byte{0xA5});
          ReferenceGather(region_->host(), c.rows, c.pages, c.indices, k, entry_bytes, expected.data());
          for (GatherAlgorithm algorithm : kAlgorithms) {
            std::vector<std::byte> out;
            GatherFault fault{};
            Run(c, algorithm, out, fault);
            ASSERT_EQ(fault.flag, 0);
            ASSERT_TRUE(out == expected) << "entry " << entry_bytes << " stride " << stride << " page "
                                         << page_tokens << " batch " << batch << " k " << k
                                         << " algorithm " << static_cast<int>(algorithm);
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 5 * 2 * 3 * 5 * 3);
}

TEST_F(GpuGatherTest, BadIndicesAreNeverReadAndAreReported) {
  std::mt19937_64 rng(23);
  for (GatherAlgorithm algorithm : kAlgorithms) {
    Case c = MakeCase(4, 256, 656, 656, 64, rng);
    c.indices[2 * 256 + 9] = static_cast<int32_t>(c.rows[2].tokens);
    std::vector<std::byte> out;
    GatherFault fault{};
    Run(c, algorithm, out, fault);
    ASSERT_EQ(fault.flag, 1);
    EXPECT_EQ(fault.row, 2);
    EXPECT_EQ(fault.position, 9);
    EXPECT_EQ(fault.index, static_cast<int32_t>(c.rows[2].tokens));
    const std::vector<uint64_t> ids = {10, 11, 12, 13};
    std::vector<uint64_t> tokens;
    for (const auto& row : c.rows) tokens.push_back(row.tokens);
    absl::Status status = FaultToStatus(fault, ids, tokens, 7);
    EXPECT_TRUE(absl::IsInvalidArgument(status));
    EXPECT_THAT(std::string(status.message()), HasSubstr("sequence 12"));
    EXPECT_THAT(std::string(status.message()), HasSubstr("layer 7"));
    EXPECT_THAT(std::string(status.message()), HasSubstr(absl::StrCat("token index ", tokens[2])));

    c.indices[2 * 256 + 9] = -7;
    Run(c, algorithm, out, fault);
    EXPECT_EQ(fault.index, -7);
    EXPECT_THAT(std::string(FaultToStatus(fault, ids, tokens, 7).message()), HasSubstr("below -1"));

    // A row whose only page lies far outside the region and whose indices are all bad:
    // dereferencing any of them would stop the kernel with an illegal address.
    c.pages[3] = {region_bytes_ * 1024};
    c.rows[3].tokens = 5;
    for (uint32_t i = 0; i < 256; ++i) c.indices[3 * 256 + i] = i % 2 ? 5 + static_cast<int32_t>(i) : -2;
    Run(c, algorithm, out, fault);
    EXPECT_EQ(fault.flag, 1);
  }
}

TEST_F(GpuGatherTest, WriteBackStoresNewTokensIntoThePool) {
  std::mt19937_64 rng(31);
  for (uint32_t entry_bytes : {656u, 100u}) {
    Case c = MakeCase(16, 1, entry_bytes, entry_bytes, 64, rng);
    // Distinct pages per row so that no two rows write the same bytes.
    const uint64_t page_bytes = uint64_t{64} * entry_bytes;
    for (size_t row = 0; row < c.rows.size(); ++row) {
      c.rows[row].tokens = 64;
      c.pages[row] = {row * page_bytes};
    }
    // Each row's sequence record, live, after the pages: the kernel checks it before writing.
    const uint64_t records_at = 16 * page_bytes;
    auto set_record = [&](size_t row, uint32_t state) {
      std::byte* record = region_->host() + records_at + row * 512;
      std::memset(record, 0, 512);
      const uint64_t generation = 1, id = 100 + row;
      std::memcpy(record, &generation, 8);
      std::memcpy(record + 8, &id, 8);
      std::memcpy(record + 16, &state, 4);
    };
    for (size_t row = 0; row < c.rows.size(); ++row) {
      set_record(row, /*kLive=*/1);
      c.rows[row].sequence_id = 100 + row;
      c.rows[row].record_offset = records_at + row * 512;
    }
    std::vector<int32_t> tokens(c.rows.size());
    for (size_t row = 0; row < tokens.size(); ++row) tokens[row] = row == 5 ? -1 : static_cast<int32_t>(rng() % 64);
    tokens[9] = 64;  // past the row's tokens: reported, not written
    std::vector<std::byte> entries(tokens.size() * entry_bytes);
    for (auto& b : entries) b = static_cast<std::byte>(rng());
    const std::vector<std::byte> before(region_->host(), region_->host() + 16 * page_bytes);

    std::vector<uint64_t*> device_pages;
    for (size_t row = 0; row < c.rows.size(); ++row) {
      uint64_t* d = nullptr;
      CUDA_OK(cudaMalloc(&d, 8));
      CUDA_OK(cudaMemcpy(d, c.pages[row].data(), 8, cudaMemcpyHostToDevice));
      c.rows[row].page_offsets = d;
      device_pages.push_back(d);
    }
    RowPages* rows = nullptr;
    int32_t* device_tokens = nullptr;
    std::byte* device_entries = nullptr;
    CUDA_OK(cudaMalloc(&rows, c.rows.size() * sizeof(RowPages)));
    CUDA_OK(cudaMalloc(&device_tokens, tokens.size() * 4));
    CUDA_OK(cudaMalloc(&device_entries, entries.size()));
    CUDA_OK(cudaMemcpy(rows, c.rows.data(), c.rows.size() * sizeof(RowPages), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(device_tokens, tokens.data(), tokens.size() * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(device_entries, entries.data(), entries.size(), cudaMemcpyHostToDevice));
    std::memset(fault_, 0, sizeof(GatherFault));
    WriteBackLaunch launch;
    launch.region = const_cast<std::byte*>(device_region_);
    launch.region_bytes = region_bytes_;
    launch.rows = rows;
    launch.tokens = device_tokens;
    launch.entries = device_entries;
    launch.batch = static_cast<uint32_t>(tokens.size());
    launch.entry_bytes = entry_bytes;
    launch.fault = fault_;
    ASSERT_TRUE(LaunchWriteBack(launch, stream_).ok());
    CUDA_OK(cudaStreamSynchronize(stream_));
    EXPECT_EQ(fault_->flag, 1);
    EXPECT_EQ(fault_->row, 9);
    for (size_t row = 0; row < tokens.size(); ++row) {
      const std::byte* page = region_->host() + row * page_bytes;
      for (uint32_t t = 0; t < 64; ++t) {
        const std::byte* expected = (static_cast<int32_t>(t) == tokens[row])
                                        ? entries.data() + row * entry_bytes
                                        : before.data() + row * page_bytes + t * entry_bytes;
        ASSERT_EQ(std::memcmp(page + t * entry_bytes, expected, entry_bytes), 0) << "row " << row << " token " << t;
      }
    }
    // Row 3's sequence is released before the next write-back runs: its entry is not
    // written, and the fault says so; the other rows are written.
    set_record(3, /*kReleased=*/2);
    tokens[9] = 1;
    CUDA_OK(cudaMemcpy(device_tokens, tokens.data(), tokens.size() * 4, cudaMemcpyHostToDevice));
    std::vector<std::byte> second(entries.size());
    for (auto& b : second) b = static_cast<std::byte>(rng());
    CUDA_OK(cudaMemcpy(device_entries, second.data(), second.size(), cudaMemcpyHostToDevice));
    const std::vector<std::byte> row3_before(region_->host() + 3 * page_bytes, region_->host() + 4 * page_bytes);
    std::memset(fault_, 0, sizeof(GatherFault));
    ASSERT_TRUE(LaunchWriteBack(launch, stream_).ok());
    CUDA_OK(cudaStreamSynchronize(stream_));
    EXPECT_EQ(fault_->flag, kFaultReleased);
    EXPECT_EQ(fault_->row, 3);
    EXPECT_TRUE(std::equal(row3_before.begin(), row3_before.end(), region_->host() + 3 * page_bytes));
    EXPECT_EQ(std::memcmp(region_->host() + 9 * page_bytes + entry_bytes, second.data() + 9 * entry_bytes, entry_bytes), 0);
    cudaFree(rows);
    cudaFree(device_tokens);
    cudaFree(device_entries);
    for (uint64_t* d : device_pages) cudaFree(d);
  }
}

// Host code only: runs in CI too.
TEST(FaultToStatusTest, NamesEachKindOfFault) {
  const std::vector<uint64_t> ids = {40, 41};
  const std::vector<uint64_t> tokens = {100, 200};
  auto message = [&](int32_t flag, int32_t index) {
    return std::string(FaultToStatus(GatherFault{flag, 1, 7, index}, ids, tokens, 3).message());
  };
  EXPECT_THAT(message(kFaultReleased, 12), HasSubstr("sequence 41 (batch row 1, layer 3) was released before its write-back ran"));
  EXPECT_TRUE(absl::IsNotFound(FaultToStatus(GatherFault{kFaultReleased, 0, 0, 1}, ids, tokens, 3)));
  EXPECT_TRUE(FaultToStatus(GatherFault{}, ids, tokens, 3).ok());
  EXPECT_THAT(message(kFaultBadIndex, 250), HasSubstr("token index 250 at batch row 1, position 7 is past the 200 tokens written to sequence 41 (layer 3)"));
  EXPECT_THAT(message(kFaultBadIndex, -4), HasSubstr("below -1"));
  EXPECT_THAT(message(kFaultDuplicateToken, 9), HasSubstr("token index 9 appears twice in batch row 1"));
  EXPECT_TRUE(absl::IsResourceExhausted(FaultToStatus(GatherFault{kFaultCapacity, 1, 7, 9}, ids, tokens, 3)));
  EXPECT_THAT(message(kFaultInstance, 12), HasSubstr("instance 12"));
}

TEST_F(GpuGatherTest, LauncherNamesTheBadArgument) {
  std::vector<std::byte> host(4096);
  int32_t* indices = nullptr;
  std::byte* out = nullptr;
  RowPages* rows = nullptr;
  CUDA_OK(cudaMalloc(&indices, 4 * 64));
  CUDA_OK(cudaMalloc(&out, 656 * 64));
  CUDA_OK(cudaMalloc(&rows, sizeof(RowPages)));
  GatherLaunch good;
  good.region = device_region_;
  good.region_bytes = region_bytes_;
  good.rows = rows;
  good.indices = indices;
  good.batch = 1;
  good.k = 64;
  good.entry_bytes = 656;
  good.out = out;
  good.out_bytes = 656 * 64;
  good.fault = fault_;
  GatherLaunch bad = good;
  bad.indices = nullptr;
  EXPECT_THAT(std::string(LaunchTopKGather(bad, stream_).message()), HasSubstr("indices is null"));
  bad = good;
  bad.region = host.data();
  EXPECT_THAT(std::string(LaunchTopKGather(bad, stream_).message()), HasSubstr("region is plain host memory"));
  bad = good;
  bad.out_bytes = 100;
  EXPECT_THAT(std::string(LaunchTopKGather(bad, stream_).message()), HasSubstr("output buffer of 100 bytes"));
  bad = good;
  bad.entry_bytes = 0;
  EXPECT_FALSE(LaunchTopKGather(bad, stream_).ok());
  cudaFree(indices);
  cudaFree(out);
  cudaFree(rows);
}

}  // namespace
}  // namespace sparsepool::kernels

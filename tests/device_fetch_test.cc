// DeviceFetcher: a layer's top-k into GPU memory over CXL and over UCX (tcp), against a
// real daemon: every delivered entry compared with the pattern written, padding zeroed,
// staging buffers taking turns, and bad input refused. Skips without a CUDA device
// (CI); runs on the device machine (tools/gpu_check.sh).
#include "client/device_fetch.h"

#include <cuda_runtime.h>
#include <stdlib.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/entry_pattern.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cuda_assert.h"
#include "tests/daemon_process.h"
#include "tests/ucx_loopback.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kLayers = 2;
constexpr uint32_t kEntry = 656;
constexpr uint64_t kTokens = 300;
constexpr uint32_t kK = 64;
constexpr uint64_t kSeed = 91;

class DeviceFetchTest : public ::testing::TestWithParam<std::string /*transport*/> {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      GTEST_SKIP() << "no CUDA device: GPU tests run on the device machine";
    }
    testing::UseUcxOnLoopback();
    testing::DaemonOptions options;
    if (GetParam() == "ucx") options.extra_args = {"--ucx=true"};
    daemon_ = std::make_unique<testing::DaemonProcess>(
        absl::StrCat("device-fetch-", GetParam(), "-", ::testing::UnitTest::GetInstance()->current_test_info()->name()),
        options);
    ASSERT_TRUE(daemon_->Start().ok()) << daemon_->Log();
    ClientOptions client_options;
    client_options.address = daemon_->address();
    client_options.transport = GetParam();
    auto client = Client::Connect(client_options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    auto fetcher = DeviceFetcher::Create(client_.get());
    ASSERT_TRUE(fetcher.ok()) << fetcher.status();
    fetcher_ = *std::move(fetcher);
    CUDA_OK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  void TearDown() override {
    fetcher_.reset();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  SequenceId Written() {
    SequenceSpec spec;
    spec.layers = kLayers;
    spec.entry_bytes = kEntry;
    spec.tokens = kTokens;
    auto id = client_->CreateSequence(spec);
    EXPECT_TRUE(id.ok()) << id.status();
    std::vector<std::byte> entries(kTokens * kEntry);
    for (uint32_t layer = 0; layer < kLayers; ++layer) {
      for (uint64_t t = 0; t < kTokens; ++t) {
        bench::FillEntry(kSeed, *id, layer, t, absl::MakeSpan(entries).subspan(t * kEntry, kEntry));
      }
      EXPECT_TRUE(client_->WriteEntries(*id, layer, 0, entries).ok());
    }
    return *id;
  }

  std::unique_ptr<testing::DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<DeviceFetcher> fetcher_;
  cudaStream_t stream_ = nullptr;
};

// Three fetches in a row (the staging buffers take turns, and the third waits for the
// first's copy), each into its own GPU buffer, then every entry checked.
TEST_P(DeviceFetchTest, EntriesLandInGpuMemoryOverTheTransport) {
  const std::vector<SequenceId> batch = {Written(), Written()};
  constexpr int kFetches = 3;
  const size_t bytes = batch.size() * kK * kEntry;
  std::vector<std::vector<int32_t>> indices(kFetches);
  std::vector<std::byte*> device(kFetches);
  std::mt19937_64 rng(5);
  for (int f = 0; f < kFetches; ++f) {
    for (size_t i = 0; i < batch.size() * kK; ++i) {
      indices[f].push_back(rng() % 7 == 0 ? -1 : static_cast<int32_t>(rng() % kTokens));
    }
    CUDA_OK(cudaMalloc(&device[f], bytes));
    CUDA_OK(cudaMemset(device[f], 0xEE, bytes));
    absl::Status s = fetcher_->FetchTopK(f % kLayers, batch, indices[f], device[f], bytes, stream_);
    ASSERT_TRUE(s.ok()) << s;
  }
  EXPECT_GE(fetcher_->staging_bytes(), 2 * bytes);
  CUDA_OK(cudaStreamSynchronize(stream_));
  std::vector<std::byte> got(bytes), expected(kEntry), zeros(kEntry);
  for (int f = 0; f < kFetches; ++f) {
    CUDA_OK(cudaMemcpy(got.data(), device[f], bytes, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < indices[f].size(); ++i) {
      const std::byte* entry = got.data() + i * kEntry;
      if (indices[f][i] < 0) {
        ASSERT_EQ(std::memcmp(entry, zeros.data(), kEntry), 0) << "padding is zeroed; fetch " << f << " position " << i;
        continue;
      }
      bench::FillEntry(kSeed, batch[i / kK], f % kLayers, indices[f][i], absl::MakeSpan(expected));
      ASSERT_EQ(std::memcmp(entry, expected.data(), kEntry), 0) << "fetch " << f << " position " << i;
    }
    cudaFree(device[f]);
  }
  // The client counted them on its transport.
  const ClientMetrics metrics = client_->Metrics();
  ASSERT_EQ(metrics.transports.count(GetParam()), 1u);
  EXPECT_EQ(metrics.transports.at(GetParam()).fetch_calls, static_cast<uint64_t>(kFetches));
}

TEST_P(DeviceFetchTest, BadInputIsRefusedAndNothingIsCopied) {
  const std::vector<SequenceId> batch = {Written()};
  const size_t bytes = kK * kEntry;
  std::byte* device = nullptr;
  CUDA_OK(cudaMalloc(&device, bytes));
  CUDA_OK(cudaMemset(device, 0xEE, bytes));
  std::vector<int32_t> indices(kK, 1);

  std::vector<std::byte> plain_host(bytes);
  absl::Status s = fetcher_->FetchTopK(0, batch, indices, plain_host.data(), bytes, stream_);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("device_out"));

  indices[3] = static_cast<int32_t>(kTokens);
  s = fetcher_->FetchTopK(0, batch, indices, device, bytes, stream_);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("300"));
  indices[3] = 1;
  s = fetcher_->FetchTopK(0, batch, indices, device, bytes - 1, stream_);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;

  cudaStream_t capturing = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&capturing, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamBeginCapture(capturing, cudaStreamCaptureModeThreadLocal));
  s = fetcher_->FetchTopK(0, batch, indices, device, bytes, capturing);
  cudaGraph_t graph = nullptr;
  CUDA_OK(cudaStreamEndCapture(capturing, &graph));
  if (graph != nullptr) cudaGraphDestroy(graph);
  cudaStreamDestroy(capturing);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("DecodeSession"));

  ASSERT_TRUE(client_->ReleaseSequence(batch[0]).ok());
  s = fetcher_->FetchTopK(0, batch, indices, device, bytes, stream_);
  EXPECT_TRUE(absl::IsNotFound(s)) << s;

  CUDA_OK(cudaStreamSynchronize(stream_));
  std::vector<std::byte> got(bytes);
  CUDA_OK(cudaMemcpy(got.data(), device, bytes, cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(got[i], std::byte{0xEE}) << "byte " << i << " was written";
  cudaFree(device);
}

INSTANTIATE_TEST_SUITE_P(Transports, DeviceFetchTest, ::testing::Values("cxl", "ucx"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace sparsepool

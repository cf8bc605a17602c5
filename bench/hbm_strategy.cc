// hbm-only: no pool on the decode path. The batch's whole latent cache is in HBM (as
// prefill would have left it there), and each layer's top-k is gathered from it by the
// same kernel the pool's GPU path runs, with nothing crossing a link. What it pays is
// HBM: its batch is what HBM holds (the throughput model's "all on GPU").
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/dense_pages.h"
#include "bench/gpu_strategies.h"
#include "bench/prefix_fetch.h"
#include "kernels/cuda_buffer.h"
#include "kernels/cuda_pointer.h"
#include "kernels/topk_gather.h"

namespace sparsepool::bench {
namespace {

using kernels::CudaBuffer;
using kernels::CudaMemory;
using kernels::CudaToStatus;

// Tokens copied into HBM per FetchTopK while the cache is laid down.
constexpr uint64_t kUploadChunkTokens = 16384;

class HbmOnlyFetch final : public FetchStrategy {
 public:
  HbmOnlyFetch(std::string name, std::unique_ptr<Client> client) : name_(std::move(name)), client_(std::move(client)) {}
  ~HbmOnlyFetch() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  absl::Status Init() { return CudaToStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream"); }

  std::string name() const override { return name_; }
  Client& client() override { return *client_; }

  // What prefill leaves in HBM: every row's prompt, every stored layer, one dense page per
  // (layer, row) with room for the longest context.
  absl::Status Prefill(const BatchShape& shape) override {
    shape_ = shape;
    const size_t rows = shape.sequences.size();
    auto cache = CudaBuffer<std::byte>::Allocate(uint64_t{shape.stored_layers} * rows * shape.max_tokens *
                                                     shape.entry_bytes,
                                                 CudaMemory::kDevice);
    if (!cache.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat("the batch's cache does not fit in HBM (the batch is what HBM "
                                                       "holds): ",
                                                       cache.status().message()));
    }
    cache_ = *std::move(cache);
    const uint64_t copies = uint64_t{shape.stored_layers} * rows;
    auto pages = DensePageOffsets(copies, shape.max_tokens * shape.entry_bytes);
    if (!pages.ok()) return pages.status();
    pages_ = *std::move(pages);
    rows_host_.assign(copies, kernels::RowPages{});
    for (size_t i = 0; i < copies; ++i) {
      rows_host_[i].page_offsets = pages_.data() + i;
      rows_host_[i].page_tokens = static_cast<uint32_t>(shape.max_tokens);
      rows_host_[i].entry_stride = shape.entry_bytes;
    }
    auto rows_device = CudaBuffer<kernels::RowPages>::Allocate(rows_host_.size(), CudaMemory::kDevice);
    if (!rows_device.ok()) return rows_device.status();
    rows_device_ = *std::move(rows_device);
    present_ = 0;
    return UploadUpTo(shape.prefix_tokens);
  }

  absl::Status Begin(const BatchShape& shape) override {
    if (cache_.data() == nullptr || shape.sequences != shape_.sequences) {
      return absl::FailedPreconditionError("hbm-only admits only the batch whose prefill it holds");
    }
    const size_t cells = shape.sequences.size() * size_t{shape.k};
    auto host = CudaBuffer<int32_t>::Allocate(cells, CudaMemory::kPinnedHost);
    auto device = CudaBuffer<int32_t>::Allocate(cells, CudaMemory::kDevice);
    auto out = CudaBuffer<std::byte>::Allocate(cells * shape.entry_bytes, CudaMemory::kDevice);
    auto fault = CudaBuffer<kernels::GatherFault>::Allocate(1, CudaMemory::kPinnedHost);
    for (absl::Status s : {host.status(), device.status(), out.status(), fault.status()}) {
      if (!s.ok()) return s;
    }
    host_indices_ = *std::move(host);
    device_indices_ = *std::move(device);
    out_ = *std::move(out);
    fault_ = *std::move(fault);
    return absl::OkStatus();
  }

  // The engine writes its new entries in HBM itself: copied here from the pool, untimed
  // as a fetch (it goes with the append), counted as no link bytes.
  absl::Status Appended(uint64_t tokens) override { return UploadUpTo(tokens); }

  absl::Status Fetch(const LayerFetch& fetch) override {
    const size_t rows = shape_.sequences.size();
    if (fetch.pool_layer >= shape_.stored_layers || fetch.tokens > present_) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", fetch.pool_layer, " at ", fetch.tokens,
                                                     " tokens is not in HBM (", present_, " are)"));
    }
    std::memcpy(host_indices_.data(), fetch.indices.data(), fetch.indices.size() * sizeof(int32_t));
    for (size_t row = 0; row < rows; ++row) rows_host_[fetch.pool_layer * rows + row].tokens = fetch.tokens;
    if (absl::Status s = CudaToStatus(
            cudaMemcpyAsync(rows_device_.data() + fetch.pool_layer * rows, rows_host_.data() + fetch.pool_layer * rows,
                            rows * sizeof(kernels::RowPages), cudaMemcpyHostToDevice, stream_),
            "row tables");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CudaToStatus(cudaMemcpyAsync(device_indices_.data(), host_indices_.data(),
                                                      fetch.indices.size() * sizeof(int32_t), cudaMemcpyHostToDevice,
                                                      stream_),
                                      "indices");
        !s.ok()) {
      return s;
    }
    *fault_.data() = kernels::GatherFault{};
    kernels::GatherLaunch launch;
    launch.region = cache_.data();
    launch.region_bytes = cache_.bytes();
    launch.rows = rows_device_.data() + fetch.pool_layer * rows;
    launch.indices = device_indices_.data();
    launch.batch = static_cast<uint32_t>(rows);
    launch.k = shape_.k;
    launch.entry_bytes = shape_.entry_bytes;
    launch.out = out_.data();
    launch.out_bytes = out_.bytes();
    launch.fault = fault_.data();
    if (absl::Status s = kernels::LaunchTopKGather(launch, stream_); !s.ok()) return s;
    if (absl::Status s = CudaToStatus(cudaStreamSynchronize(stream_), "gather"); !s.ok()) return s;
    if (fault_.data()->flag != 0) {
      return absl::InvalidArgumentError(absl::StrCat("row ", fault_.data()->row, " selects token ",
                                                     fault_.data()->index, " outside its ", fetch.tokens, " tokens"));
    }
    return absl::OkStatus();
  }

  uint64_t LinkBytes() override { return 0; }
  uint64_t LocalBytes() override { return cache_.bytes(); }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    return CudaToStatus(cudaMemcpy(out.data(), out_.data() + (uint64_t{row} * shape_.k + position) * shape_.entry_bytes,
                                   out.size(), cudaMemcpyDeviceToHost),
                        "reading back an entry");
  }

 private:
  // Copies tokens [present_, tokens) of every row and stored layer from the pool into HBM.
  absl::Status UploadUpTo(uint64_t tokens) {
    const size_t rows = shape_.sequences.size();
    const uint32_t entry = shape_.entry_bytes;
    if (tokens > shape_.max_tokens) {
      return absl::OutOfRangeError(absl::StrCat(tokens, " tokens do not fit the ", shape_.max_tokens, " laid down"));
    }
    while (present_ < tokens) {
      const uint64_t count = std::min(kUploadChunkTokens, tokens - present_);
      staging_.resize(rows * count * entry);
      for (uint32_t layer = 0; layer < shape_.stored_layers; ++layer) {
        if (absl::Status s =
                FetchTokenRange(*client_, layer, shape_.sequences, present_, count, absl::MakeSpan(staging_));
            !s.ok()) {
          return s;
        }
        for (size_t row = 0; row < rows; ++row) {
          std::byte* to = cache_.data() + ((uint64_t{layer} * rows + row) * shape_.max_tokens + present_) * entry;
          if (absl::Status s = CudaToStatus(
                  cudaMemcpy(to, staging_.data() + row * count * entry, count * entry, cudaMemcpyHostToDevice),
                  "laying the cache down in HBM");
              !s.ok()) {
            return s;
          }
        }
      }
      present_ += count;
    }
    return absl::OkStatus();
  }

  std::string name_;
  std::unique_ptr<Client> client_;
  cudaStream_t stream_ = nullptr;
  BatchShape shape_;
  CudaBuffer<std::byte> cache_;                 // [stored layers][rows][max_tokens][entry]
  CudaBuffer<uint64_t> pages_;                  // one page per (layer, row)
  std::vector<kernels::RowPages> rows_host_;    // [stored layers][rows]
  CudaBuffer<kernels::RowPages> rows_device_;
  CudaBuffer<int32_t> host_indices_, device_indices_;
  CudaBuffer<std::byte> out_;
  CudaBuffer<kernels::GatherFault> fault_;
  std::vector<std::byte> staging_;
  uint64_t present_ = 0;  // tokens of every row in HBM
};

}  // namespace

absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeHbmOnlyFetch(std::string name, std::unique_ptr<Client> client) {
  if (absl::Status s = kernels::RequireCudaDevice("hbm-only"); !s.ok()) return s;
  auto strategy = std::make_unique<HbmOnlyFetch>(std::move(name), std::move(client));
  if (absl::Status s = strategy->Init(); !s.ok()) return s;
  return strategy;
}

}  // namespace sparsepool::bench

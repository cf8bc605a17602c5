#include "bench/gpu_strategies.h"

#include <cuda_runtime_api.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "bench/gpu_fetcher.h"
#include "client/client_internal.h"
#include "kernels/cuda_buffer.h"
#include "kernels/residency_cache.h"

namespace sparsepool::bench {
namespace {

using kernels::CudaBuffer;
using kernels::CudaMemory;
using kernels::CudaToStatus;

// What both GPU strategies share: the fetcher, a stream, the indices' trip to the GPU,
// and the batch's layouts from the client's cache.
class GpuStrategyBase : public FetchStrategy {
 public:
  ~GpuStrategyBase() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  std::string name() const override { return name_; }
  Client& client() override { return *client_; }

 protected:
  GpuStrategyBase(std::string name, std::unique_ptr<Client> client, std::unique_ptr<GpuFetcher> fetcher)
      : name_(std::move(name)), client_(std::move(client)), fetcher_(std::move(fetcher)) {}

  absl::Status Init() { return CudaToStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream"); }

  absl::Status BeginBase(const BatchShape& shape) {
    shape_ = shape;
    const size_t cells = shape.sequences.size() * size_t{shape.k};
    auto host = CudaBuffer<int32_t>::Allocate(cells, CudaMemory::kPinnedHost);
    if (!host.ok()) return host.status();
    auto device = CudaBuffer<int32_t>::Allocate(cells, CudaMemory::kDevice);
    if (!device.ok()) return device.status();
    host_indices_ = *std::move(host);
    device_indices_ = *std::move(device);
    return absl::OkStatus();
  }

  // Copies the indices to the GPU on the stream and refreshes the layouts (the client
  // caches them; a sequence that grew is asked of the daemon again).
  absl::Status Stage(const LayerFetch& fetch) {
    std::memcpy(host_indices_.data(), fetch.indices.data(), fetch.indices.size() * sizeof(int32_t));
    if (absl::Status s = CudaToStatus(cudaMemcpyAsync(device_indices_.data(), host_indices_.data(),
                                                      fetch.indices.size() * sizeof(int32_t),
                                                      cudaMemcpyHostToDevice, stream_),
                                      "copying indices");
        !s.ok()) {
      return s;
    }
    held_layouts_.clear();
    layouts_.clear();
    for (SequenceId id : shape_.sequences) {
      auto layout = internal::CachedLayout(*client_, id);
      if (!layout.ok()) return layout.status();
      if ((*layout)->tokens < fetch.tokens) {  // grown by another client: ask again
        if (auto fresh = internal::Layout(*client_, id); !fresh.ok()) return fresh.status();
        layout = internal::CachedLayout(*client_, id);
        if (!layout.ok()) return layout.status();
      }
      layouts_.push_back(layout->get());
      held_layouts_.push_back(*std::move(layout));
    }
    return absl::OkStatus();
  }

  absl::Status CopyToHost(void* out, const void* device, size_t bytes) {
    return CudaToStatus(cudaMemcpy(out, device, bytes, cudaMemcpyDeviceToHost), "reading back an entry");
  }

  std::string name_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<GpuFetcher> fetcher_;
  cudaStream_t stream_ = nullptr;
  BatchShape shape_;
  CudaBuffer<int32_t> host_indices_;
  CudaBuffer<int32_t> device_indices_;
  std::vector<std::shared_ptr<const SequenceLayout>> held_layouts_;
  std::vector<const SequenceLayout*> layouts_;
};

class GpuFetch final : public GpuStrategyBase {
 public:
  GpuFetch(std::string name, std::unique_ptr<Client> client, std::unique_ptr<GpuFetcher> fetcher)
      : GpuStrategyBase(std::move(name), std::move(client), std::move(fetcher)) {}
  using GpuStrategyBase::Init;

  absl::Status Begin(const BatchShape& shape) override {
    if (absl::Status s = BeginBase(shape); !s.ok()) return s;
    auto out = CudaBuffer<std::byte>::Allocate(shape.sequences.size() * uint64_t{shape.k} * shape.entry_bytes,
                                               CudaMemory::kDevice);
    if (!out.ok()) return out.status();
    out_ = *std::move(out);
    link_bytes_ = 0;
    return absl::OkStatus();
  }

  absl::Status Fetch(const LayerFetch& fetch) override {
    if (absl::Status s = Stage(fetch); !s.ok()) return s;
    if (absl::Status s = fetcher_->FetchTopK(fetch.pool_layer, layouts_, device_indices_.data(), shape_.k,
                                             out_.data(), stream_);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = fetcher_->Finish(stream_); !s.ok()) return s;
    link_bytes_ += CountSelected(fetch.indices) * shape_.entry_bytes;
    return absl::OkStatus();
  }

  uint64_t LinkBytes() override { return link_bytes_; }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    return CopyToHost(out.data(), out_.data() + (uint64_t{row} * shape_.k + position) * shape_.entry_bytes,
                      out.size());
  }

 private:
  CudaBuffer<std::byte> out_;
  uint64_t link_bytes_ = 0;
};

class GpuCacheFetch final : public GpuStrategyBase {
 public:
  GpuCacheFetch(std::string name, std::unique_ptr<Client> client, std::unique_ptr<GpuFetcher> fetcher,
                uint32_t capacity)
      : GpuStrategyBase(std::move(name), std::move(client), std::move(fetcher)), capacity_(capacity) {}
  using GpuStrategyBase::Init;

  absl::Status Begin(const BatchShape& shape) override {
    if (absl::Status s = BeginBase(shape); !s.ok()) return s;
    const uint32_t rows = static_cast<uint32_t>(shape.sequences.size());
    cache_.reset();  // free the previous batch's HBM first
    kernels::ResidencyOptions options;
    options.instances = rows * shape.fetched_layers;
    options.capacity = capacity_;
    options.max_tokens = static_cast<uint32_t>(shape.max_tokens);
    options.entry_bytes = shape.entry_bytes;
    auto cache = kernels::ResidencyCache::Create(options);
    if (!cache.ok()) return cache.status();
    cache_ = *std::move(cache);
    // Instance of (layer slot, row): layer_slot * rows + row, laid out per layer slot.
    std::vector<uint32_t> instances(options.instances);
    for (uint32_t i = 0; i < options.instances; ++i) instances[i] = i;
    auto device_instances = CudaBuffer<uint32_t>::Allocate(instances.size(), CudaMemory::kDevice);
    if (!device_instances.ok()) return device_instances.status();
    device_instances_ = *std::move(device_instances);
    if (absl::Status s = CudaToStatus(cudaMemcpy(device_instances_.data(), instances.data(),
                                                 instances.size() * sizeof(uint32_t), cudaMemcpyHostToDevice),
                                      "copying cache instances");
        !s.ok()) {
      return s;
    }
    auto slots = CudaBuffer<int32_t>::Allocate(uint64_t{rows} * shape.k, CudaMemory::kDevice);
    if (!slots.ok()) return slots.status();
    device_slots_ = *std::move(slots);
    return absl::OkStatus();
  }

  absl::Status Fetch(const LayerFetch& fetch) override {
    if (absl::Status s = Stage(fetch); !s.ok()) return s;
    const uint32_t* instances = device_instances_.data() + uint64_t{fetch.layer_slot} * shape_.sequences.size();
    if (absl::Status s = fetcher_->FetchTopKCached(*cache_, fetch.pool_layer, layouts_, instances,
                                                   device_indices_.data(), shape_.k, fetch.step,
                                                   device_slots_.data(), stream_);
        !s.ok()) {
      return s;
    }
    last_layer_slot_ = fetch.layer_slot;
    return fetcher_->Finish(stream_);
  }

  uint64_t LinkBytes() override {
    auto counters = cache_->Counters();
    if (!counters.ok()) return 0;
    return counters->misses * uint64_t{shape_.entry_bytes};
  }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    int32_t slot = -1;
    if (absl::Status s = CopyToHost(&slot, device_slots_.data() + uint64_t{row} * shape_.k + position, sizeof(slot));
        !s.ok()) {
      return s;
    }
    if (slot < 0) return absl::NotFoundError(absl::StrCat("row ", row, " position ", position, " has no slot"));
    const uint32_t instance = last_layer_slot_ * static_cast<uint32_t>(shape_.sequences.size()) + row;
    return CopyToHost(out.data(), cache_->slot_data(instance) + uint64_t(slot) * shape_.entry_bytes, out.size());
  }

 private:
  uint32_t capacity_;
  std::unique_ptr<kernels::ResidencyCache> cache_;
  CudaBuffer<uint32_t> device_instances_;
  CudaBuffer<int32_t> device_slots_;
  uint32_t last_layer_slot_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeGpuFetch(std::string name, std::unique_ptr<Client> client) {
  auto fetcher = GpuFetcher::Create();
  if (!fetcher.ok()) return fetcher.status();
  auto strategy = std::make_unique<GpuFetch>(std::move(name), std::move(client), *std::move(fetcher));
  if (absl::Status s = strategy->Init(); !s.ok()) return s;
  return strategy;
}

absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeGpuCacheFetch(std::string name, std::unique_ptr<Client> client,
                                                                 uint32_t cache_capacity) {
  auto fetcher = GpuFetcher::Create();
  if (!fetcher.ok()) return fetcher.status();
  auto strategy =
      std::make_unique<GpuCacheFetch>(std::move(name), std::move(client), *std::move(fetcher), cache_capacity);
  if (absl::Status s = strategy->Init(); !s.ok()) return s;
  return strategy;
}

}  // namespace sparsepool::bench

#include "bench/host_strategies.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "bench/prefix_fetch.h"
#include "kernels/residency_model.h"

namespace sparsepool::bench {
namespace {

class ClientFetch final : public FetchStrategy {
 public:
  ClientFetch(std::string name, std::unique_ptr<Client> client, bool full_prefix)
      : name_(std::move(name)), client_(std::move(client)), full_prefix_(full_prefix) {}

  std::string name() const override { return name_; }
  Client& client() override { return *client_; }

  absl::Status Begin(const BatchShape& shape) override {
    shape_ = shape;
    out_.assign(uint64_t{shape.sequences.size()} * shape.k * shape.entry_bytes, std::byte{0});
    link_bytes_ = 0;
    return absl::OkStatus();
  }

  absl::Status Fetch(const LayerFetch& fetch) override {
    const absl::Status fetched =
        full_prefix_ ? FetchThroughPrefix(*client_, fetch.pool_layer, shape_.sequences, fetch.indices, absl::MakeSpan(out_))
                     : client_->FetchTopK(fetch.pool_layer, shape_.sequences, fetch.indices, absl::MakeSpan(out_));
    if (!fetched.ok()) return fetched;
    // Full prefix: every row's whole layer crossed; top-k: each selected entry.
    const uint64_t entries = full_prefix_ ? fetch.tokens * shape_.sequences.size() : CountSelected(fetch.indices);
    link_bytes_ += entries * shape_.entry_bytes;
    return absl::OkStatus();
  }

  uint64_t LinkBytes() override { return link_bytes_; }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    std::memcpy(out.data(), out_.data() + (uint64_t{row} * shape_.k + position) * shape_.entry_bytes, out.size());
    return absl::OkStatus();
  }

 private:
  std::string name_;
  std::unique_ptr<Client> client_;
  bool full_prefix_;
  BatchShape shape_;
  std::vector<std::byte> out_;
  uint64_t link_bytes_ = 0;
};

class HostCacheFetch final : public FetchStrategy {
 public:
  HostCacheFetch(std::string name, std::unique_ptr<Client> client, uint32_t capacity)
      : name_(std::move(name)), client_(std::move(client)), capacity_(capacity) {}

  std::string name() const override { return name_; }
  Client& client() override { return *client_; }

  absl::Status Begin(const BatchShape& shape) override {
    if (capacity_ < shape.k) {
      return absl::InvalidArgumentError(
          absl::StrCat("cache capacity ", capacity_, " is below k = ", shape.k, ": a step's selection must fit"));
    }
    shape_ = shape;
    const uint64_t instances = uint64_t{shape.sequences.size()} * shape.fetched_layers;
    models_.clear();
    for (uint64_t i = 0; i < instances; ++i) {
      models_.emplace_back(capacity_, static_cast<uint32_t>(shape.max_tokens),
                           kernels::ResidencyPolicy::kDecayedFrequency);
    }
    slots_.assign(instances * capacity_ * shape.entry_bytes, std::byte{0});
    staging_.assign(uint64_t{shape.sequences.size()} * shape.k * shape.entry_bytes, std::byte{0});
    miss_indices_.assign(uint64_t{shape.sequences.size()} * shape.k, -1);
    last_slots_.assign(miss_indices_.size(), -1);
    link_bytes_ = 0;
    return absl::OkStatus();
  }

  absl::Status Fetch(const LayerFetch& fetch) override {
    const size_t rows = shape_.sequences.size();
    const uint32_t k = shape_.k;
    std::fill(miss_indices_.begin(), miss_indices_.end(), -1);
    std::vector<std::vector<int32_t>> misses(rows);
    for (size_t row = 0; row < rows; ++row) {
      kernels::ResidencyModel& model = models_[Instance(fetch.layer_slot, row)];
      auto indices = fetch.indices.subspan(row * k, k);
      kernels::ResidencyModel::StepResult result = model.Step(indices, fetch.tokens, fetch.step);
      if (result.bad_index) {
        return absl::InvalidArgumentError(absl::StrCat("row ", row, " of layer ", fetch.pool_layer,
                                                       " selects a token outside its ", fetch.tokens, " tokens"));
      }
      if (result.capacity_exceeded) {
        return absl::ResourceExhaustedError(absl::StrCat("cache capacity ", capacity_, " exceeded"));
      }
      for (int32_t position : result.misses) miss_indices_[row * k + position] = indices[position];
      std::copy(result.slots.begin(), result.slots.end(), last_slots_.begin() + row * k);
      misses[row] = std::move(result.misses);
    }
    // Only the misses cross the link; hits stay in the slots.
    if (absl::Status s = client_->FetchTopK(fetch.pool_layer, shape_.sequences, miss_indices_, absl::MakeSpan(staging_));
        !s.ok()) {
      return s;
    }
    const uint32_t entry = shape_.entry_bytes;
    for (size_t row = 0; row < rows; ++row) {
      std::byte* slots = SlotData(fetch.layer_slot, row);
      for (int32_t position : misses[row]) {
        const int32_t slot = last_slots_[row * k + position];
        std::memcpy(slots + uint64_t(slot) * entry, staging_.data() + (row * k + position) * entry, entry);
      }
      link_bytes_ += misses[row].size() * uint64_t{entry};
    }
    last_layer_slot_ = fetch.layer_slot;
    return absl::OkStatus();
  }

  uint64_t LinkBytes() override { return link_bytes_; }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    const int32_t slot = last_slots_[uint64_t{row} * shape_.k + position];
    if (slot < 0) return absl::NotFoundError(absl::StrCat("row ", row, " position ", position, " has no slot"));
    std::memcpy(out.data(), SlotData(last_layer_slot_, row) + uint64_t(slot) * shape_.entry_bytes, out.size());
    return absl::OkStatus();
  }

 private:
  size_t Instance(uint32_t layer_slot, size_t row) const {
    return size_t{layer_slot} * shape_.sequences.size() + row;
  }
  std::byte* SlotData(uint32_t layer_slot, size_t row) {
    return slots_.data() + Instance(layer_slot, row) * capacity_ * shape_.entry_bytes;
  }

  std::string name_;
  std::unique_ptr<Client> client_;
  uint32_t capacity_;
  BatchShape shape_;
  std::vector<kernels::ResidencyModel> models_;  // [fetched_layers][rows]
  std::vector<std::byte> slots_;                 // [instance][capacity][entry_bytes]
  std::vector<std::byte> staging_;
  std::vector<int32_t> miss_indices_;
  std::vector<int32_t> last_slots_;
  uint32_t last_layer_slot_ = 0;
  uint64_t link_bytes_ = 0;
};

}  // namespace

std::unique_ptr<FetchStrategy> MakeClientFetch(std::string name, std::unique_ptr<Client> client,
                                               bool full_prefix) {
  return std::make_unique<ClientFetch>(std::move(name), std::move(client), full_prefix);
}

std::unique_ptr<FetchStrategy> MakeHostCacheFetch(std::string name, std::unique_ptr<Client> client,
                                                  uint32_t cache_capacity) {
  return std::make_unique<HostCacheFetch>(std::move(name), std::move(client), cache_capacity);
}

}  // namespace sparsepool::bench

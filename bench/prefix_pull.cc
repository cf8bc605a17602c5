#include "bench/prefix_pull.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/prefix_fetch.h"

namespace sparsepool::bench {
namespace {

// Tokens pulled per FetchTopK: bounds the index and staging buffers, and is long
// enough that the client coalesces adjacent tokens into page-sized reads.
constexpr uint64_t kPullChunkTokens = 16384;

class PrefixPullFetch final : public FetchStrategy {
 public:
  PrefixPullFetch(std::string name, std::unique_ptr<Client> client)
      : name_(std::move(name)), client_(std::move(client)) {}

  std::string name() const override { return name_; }
  Client& client() override { return *client_; }

  // Admission: every stored layer of every row, tokens [0, prefix_tokens), into the
  // local copy, which has room for the batch's longest context.
  absl::Status Begin(const BatchShape& shape) override {
    if (shape.stored_layers == 0 || shape.prefix_tokens > shape.max_tokens) {
      return absl::InvalidArgumentError(absl::StrCat("a prefix pull needs stored layers (", shape.stored_layers,
                                                     ") and a prefix (", shape.prefix_tokens,
                                                     " tokens) within the longest context (", shape.max_tokens, ")"));
    }
    shape_ = shape;
    link_bytes_ = 0;
    admission_bytes_ = 0;
    out_.assign(uint64_t{shape.sequences.size()} * shape.k * shape.entry_bytes, std::byte{0});
    local_.assign(uint64_t{shape.stored_layers} * shape.sequences.size() * shape.max_tokens * shape.entry_bytes,
                  std::byte{0});
    pulled_.assign(shape.stored_layers, 0);
    for (uint32_t layer = 0; layer < shape.stored_layers; ++layer) {
      if (absl::Status s = PullUpTo(layer, shape.prefix_tokens); !s.ok()) return s;
    }
    admission_bytes_ = link_bytes_;
    link_bytes_ = 0;
    return absl::OkStatus();
  }

  absl::Status Appended(uint64_t tokens) override {
    if (tokens > shape_.max_tokens) {
      return absl::InvalidArgumentError(absl::StrCat("context ", tokens, " is beyond the ", shape_.max_tokens,
                                                     " tokens admitted"));
    }
    const uint64_t before = link_bytes_;
    for (uint32_t layer = 0; layer < shape_.stored_layers; ++layer) {
      if (absl::Status s = PullUpTo(layer, tokens); !s.ok()) return s;
    }
    link_bytes_ = before;  // the engine's own writes, in a deployment: nothing crosses
    return absl::OkStatus();
  }

  absl::Status Fetch(const LayerFetch& fetch) override {
    if (fetch.pool_layer >= shape_.stored_layers || fetch.tokens > pulled_[fetch.pool_layer]) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", fetch.pool_layer, " at ", fetch.tokens,
                                                     " tokens is outside the local copy"));
    }
    // The step's gather: local memory only.
    const uint32_t entry = shape_.entry_bytes;
    const size_t rows = shape_.sequences.size();
    for (size_t row = 0; row < rows; ++row) {
      const std::byte* local = Local(fetch.pool_layer, row, 0);
      for (uint32_t position = 0; position < shape_.k; ++position) {
        const int32_t token = fetch.indices[row * shape_.k + position];
        if (token < 0) continue;
        if (static_cast<uint64_t>(token) >= fetch.tokens) {
          return absl::OutOfRangeError(absl::StrCat("row ", row, " selects token ", token, " of ", fetch.tokens));
        }
        std::memcpy(out_.data() + (row * shape_.k + position) * entry, local + uint64_t(token) * entry, entry);
      }
    }
    return absl::OkStatus();
  }

  uint64_t LinkBytes() override { return link_bytes_; }
  uint64_t AdmissionBytes() override { return admission_bytes_; }
  uint64_t LocalBytes() override { return local_.size(); }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    std::memcpy(out.data(), out_.data() + (uint64_t{row} * shape_.k + position) * shape_.entry_bytes, out.size());
    return absl::OkStatus();
  }

 private:
  std::byte* Local(uint32_t layer, size_t row, uint64_t token) {
    return local_.data() +
           ((uint64_t{layer} * shape_.sequences.size() + row) * shape_.max_tokens + token) * shape_.entry_bytes;
  }

  // Reads tokens [pulled_[layer], tokens) of every row of `layer` into the local copy.
  absl::Status PullUpTo(uint32_t layer, uint64_t tokens) {
    const size_t rows = shape_.sequences.size();
    const uint32_t entry = shape_.entry_bytes;
    while (pulled_[layer] < tokens) {
      const uint64_t first = pulled_[layer];
      const uint64_t count = std::min(kPullChunkTokens, tokens - first);
      staging_.resize(rows * count * entry);
      if (absl::Status s = FetchTokenRange(*client_, layer, shape_.sequences, first, count, absl::MakeSpan(staging_));
          !s.ok()) {
        return s;
      }
      for (size_t row = 0; row < rows; ++row) {
        std::memcpy(Local(layer, row, first), staging_.data() + row * count * entry, count * entry);
      }
      link_bytes_ += rows * count * entry;
      pulled_[layer] = first + count;
    }
    return absl::OkStatus();
  }

  std::string name_;
  std::unique_ptr<Client> client_;
  BatchShape shape_;
  std::vector<std::byte> out_;        // [rows][k][entry]: where the attention reads
  std::vector<std::byte> local_;      // [stored layers][rows][max_tokens][entry]
  std::vector<uint64_t> pulled_;      // tokens of each layer in the local copy
  std::vector<std::byte> staging_;
  uint64_t link_bytes_ = 0;
  uint64_t admission_bytes_ = 0;
};

}  // namespace

std::unique_ptr<FetchStrategy> MakePrefixPullFetch(std::string name, std::unique_ptr<Client> client) {
  return std::make_unique<PrefixPullFetch>(std::move(name), std::move(client));
}

}  // namespace sparsepool::bench

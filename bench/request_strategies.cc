#include "bench/request_strategies.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bench/prefix_fetch.h"

namespace sparsepool::bench {
namespace {

class TopKRequests final : public RequestStrategy {
 public:
  TopKRequests(std::string name, std::unique_ptr<Client> client) : name_(std::move(name)), client_(std::move(client)) {}
  std::string name() const override { return name_; }
  Client& client() override { return *client_; }
  // The hand-off from the prefill worker: one RPC.
  absl::Status Admit(SequenceId id, uint64_t, uint64_t) override { return client_->AdoptSequence(id); }
  void Leave(SequenceId) override {}
  absl::Status Fetch(uint32_t pool_layer, absl::Span<const SequenceId> rows, absl::Span<const int32_t> indices,
                     absl::Span<std::byte> out) override {
    return client_->FetchTopK(pool_layer, rows, indices, out);
  }

 private:
  std::string name_;
  std::unique_ptr<Client> client_;
};

// Tokens pulled per FetchTopK, as in bench/prefix_pull.cc.
constexpr uint64_t kPullChunkTokens = 16384;

class PrefixPullRequests final : public RequestStrategy {
 public:
  PrefixPullRequests(std::string name, std::unique_ptr<Client> client, uint32_t stored_layers, uint32_t entry_bytes)
      : name_(std::move(name)), client_(std::move(client)), stored_layers_(stored_layers), entry_(entry_bytes) {}
  std::string name() const override { return name_; }
  Client& client() override { return *client_; }

  absl::Status Admit(SequenceId id, uint64_t tokens, uint64_t max_tokens) override {
    if (absl::Status s = client_->AdoptSequence(id); !s.ok()) return s;
    Copy& copy = copies_[id];
    copy.max_tokens = max_tokens;
    copy.data.assign(uint64_t{stored_layers_} * max_tokens * entry_, std::byte{0});
    copy.pulled.assign(stored_layers_, 0);
    local_bytes_ += copy.data.size();
    for (uint32_t layer = 0; layer < stored_layers_; ++layer) {
      if (absl::Status s = PullUpTo(id, copy, layer, tokens); !s.ok()) return s;
    }
    admission_bytes_ += uint64_t{stored_layers_} * tokens * entry_;
    return absl::OkStatus();
  }

  void Leave(SequenceId id) override {
    auto it = copies_.find(id);
    if (it == copies_.end()) return;
    local_bytes_ -= it->second.data.size();
    copies_.erase(it);
  }

  // The engine's own write of its new entries, in a deployment: nothing crosses.
  absl::Status Appended(SequenceId id, uint64_t tokens) override {
    auto it = copies_.find(id);
    if (it == copies_.end()) return absl::NotFoundError(absl::StrCat("request ", id, " was not admitted"));
    if (tokens > it->second.max_tokens) {
      return absl::OutOfRangeError(absl::StrCat("request ", id, " grew past the ", it->second.max_tokens,
                                                " tokens it was admitted for"));
    }
    for (uint32_t layer = 0; layer < stored_layers_; ++layer) {
      if (absl::Status s = PullUpTo(id, it->second, layer, tokens); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Fetch(uint32_t pool_layer, absl::Span<const SequenceId> rows, absl::Span<const int32_t> indices,
                     absl::Span<std::byte> out) override {
    if (rows.empty()) return absl::OkStatus();
    const size_t k = indices.size() / rows.size();
    for (size_t row = 0; row < rows.size(); ++row) {
      auto it = copies_.find(rows[row]);
      if (it == copies_.end() || pool_layer >= stored_layers_) {
        return absl::NotFoundError(absl::StrCat("request ", rows[row], " layer ", pool_layer, " has no local copy"));
      }
      const Copy& copy = it->second;
      for (size_t position = 0; position < k; ++position) {
        const int32_t token = indices[row * k + position];
        if (token < 0) continue;
        if (static_cast<uint64_t>(token) >= copy.pulled[pool_layer]) {
          return absl::OutOfRangeError(absl::StrCat("request ", rows[row], " selects token ", token, " of ",
                                                    copy.pulled[pool_layer]));
        }
        std::memcpy(out.data() + (row * k + position) * entry_, Local(copy, pool_layer, token), entry_);
      }
    }
    return absl::OkStatus();
  }

  uint64_t AdmissionBytes() const override { return admission_bytes_; }
  uint64_t LocalBytes() const override { return local_bytes_; }

 private:
  struct Copy {
    uint64_t max_tokens = 0;
    std::vector<std::byte> data;  // [stored layers][max_tokens][entry]
    std::vector<uint64_t> pulled;  // tokens of each layer in the copy
  };
  const std::byte* Local(const Copy& copy, uint32_t layer, uint64_t token) const {
    return copy.data.data() + (uint64_t{layer} * copy.max_tokens + token) * entry_;
  }

  absl::Status PullUpTo(SequenceId id, Copy& copy, uint32_t layer, uint64_t tokens) {
    while (copy.pulled[layer] < tokens) {
      const uint64_t first = copy.pulled[layer];
      const uint64_t count = std::min(kPullChunkTokens, tokens - first);
      const SequenceId row[] = {id};
      if (absl::Status s = FetchTokenRange(
              *client_, layer, row, first, count,
              absl::MakeSpan(copy.data).subspan((uint64_t{layer} * copy.max_tokens + first) * entry_, count * entry_));
          !s.ok()) {
        return s;
      }
      copy.pulled[layer] = first + count;
    }
    return absl::OkStatus();
  }

  std::string name_;
  std::unique_ptr<Client> client_;
  const uint32_t stored_layers_;
  const uint32_t entry_;
  absl::flat_hash_map<SequenceId, Copy> copies_;
  uint64_t admission_bytes_ = 0;
  uint64_t local_bytes_ = 0;
};

}  // namespace

std::unique_ptr<RequestStrategy> MakeTopKRequests(std::string name, std::unique_ptr<Client> client) {
  return std::make_unique<TopKRequests>(std::move(name), std::move(client));
}

std::unique_ptr<RequestStrategy> MakePrefixPullRequests(std::string name, std::unique_ptr<Client> client,
                                                        uint32_t stored_layers, uint32_t entry_bytes) {
  return std::make_unique<PrefixPullRequests>(std::move(name), std::move(client), stored_layers, entry_bytes);
}

}  // namespace sparsepool::bench

#include "bench/request_strategies.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/prefix_fetch.h"
#include "bench/request_step.h"

namespace sparsepool::bench {

absl::Status WriteStepThroughClient(Client& client, absl::Span<const StepRow> rows,
                                    absl::Span<const std::byte> new_entries, std::vector<SequenceId>& ids,
                                    std::vector<uint64_t>& positions) {
  ids.clear();
  positions.clear();
  for (const StepRow& row : rows) {
    ids.push_back(row.id);
    positions.push_back(row.tokens);
  }
  return client.WriteStep(ids, positions, new_entries);
}

absl::Status CheckStepShape(const RequestShape& shape, absl::Span<const StepRow> rows,
                            absl::Span<const std::byte> new_entries, absl::Span<const int32_t> indices) {
  if (rows.size() > shape.max_batch || new_entries.size() != rows.size() * shape.stored_layers * shape.entry_bytes ||
      indices.size() != uint64_t{shape.fetched_layers} * rows.size() * shape.k) {
    return absl::InvalidArgumentError(absl::StrCat("a step of ", rows.size(), " rows (at most ", shape.max_batch,
                                                   ") came with ", new_entries.size(), " bytes of entries and ",
                                                   indices.size(), " indices"));
  }
  return absl::OkStatus();
}

namespace {

class TopKRequests final : public RequestStrategy {
 public:
  TopKRequests(std::string name, std::unique_ptr<Client> client, const RequestShape& shape)
      : name_(std::move(name)), client_(std::move(client)), shape_(shape) {}
  std::string name() const override { return name_; }
  Client& client() override { return *client_; }
  // The hand-off from the prefill worker: one RPC.
  absl::Status Admit(SequenceId id, uint64_t, uint64_t) override { return client_->AdoptSequence(id); }
  void Leave(SequenceId) override {}

  absl::Status Step(absl::Span<const StepRow> rows, absl::Span<const std::byte> new_entries,
                    absl::Span<const int32_t> indices) override {
    if (absl::Status s = CheckStepShape(shape_, rows, new_entries, indices); !s.ok()) return s;
    if (absl::Status s = WriteStepThroughClient(*client_, rows, new_entries, ids_, positions_); !s.ok()) return s;
    const size_t cells = rows.size() * size_t{shape_.k};
    out_.resize(cells * shape_.entry_bytes);
    for (uint32_t slot = 0; slot < shape_.fetched_layers; ++slot) {
      if (absl::Status s = client_->FetchTopK(slot % shape_.stored_layers, ids_, indices.subspan(slot * cells, cells),
                                              absl::MakeSpan(out_));
          !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("fetched layer ", slot, ": ", s.message()));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    std::memcpy(out.data(), out_.data() + (uint64_t{row} * shape_.k + position) * shape_.entry_bytes, out.size());
    return absl::OkStatus();
  }

 private:
  std::string name_;
  std::unique_ptr<Client> client_;
  const RequestShape shape_;
  std::vector<SequenceId> ids_;
  std::vector<uint64_t> positions_;
  std::vector<std::byte> out_;  // [rows][k][entry]: the last fetched layer's
};

// Tokens pulled per FetchTopK, as in bench/prefix_pull.cc.
constexpr uint64_t kPullChunkTokens = 16384;

class PrefixPullRequests final : public RequestStrategy {
 public:
  PrefixPullRequests(std::string name, std::unique_ptr<Client> client, std::unique_ptr<Client> pull_client,
                     const RequestShape& shape)
      : name_(std::move(name)), client_(std::move(client)), pull_client_(std::move(pull_client)), shape_(shape) {}
  std::string name() const override { return name_; }
  Client& client() override { return *client_; }

  absl::Status Admit(SequenceId id, uint64_t tokens, uint64_t max_tokens) override {
    if (absl::Status s = client_->AdoptSequence(id); !s.ok()) return s;
    auto copy = std::make_unique<Copy>();
    copy->max_tokens = max_tokens;
    copy->tokens = tokens;
    copy->data.assign(uint64_t{shape_.stored_layers} * max_tokens * shape_.entry_bytes, std::byte{0});
    local_bytes_ += copy->data.size();
    for (uint32_t layer = 0; layer < shape_.stored_layers; ++layer) {
      for (uint64_t first = 0; first < tokens; first += kPullChunkTokens) {
        const uint64_t count = std::min(kPullChunkTokens, tokens - first);
        const SequenceId row[] = {id};
        if (absl::Status s = FetchTokenRange(*pull_client_, layer, row, first, count,
                                             absl::MakeSpan(copy->data).subspan(Offset(*copy, layer, first),
                                                                                count * shape_.entry_bytes));
            !s.ok()) {
          local_bytes_ -= copy->data.size();
          return s;
        }
        admission_bytes_ += count * shape_.entry_bytes;
      }
    }
    absl::MutexLock lock(&admitted_mu_);
    admitted_[id] = std::move(copy);
    return absl::OkStatus();
  }

  absl::Status Join(SequenceId id, uint64_t tokens) override {
    absl::MutexLock lock(&admitted_mu_);
    auto it = admitted_.find(id);
    if (it == admitted_.end()) return absl::NotFoundError(absl::StrCat("request ", id, " was not admitted"));
    copies_[id] = std::move(it->second);
    admitted_.erase(it);
    return absl::OkStatus();
  }

  void Leave(SequenceId id) override {
    auto it = copies_.find(id);
    if (it == copies_.end()) return;
    local_bytes_ -= it->second->data.size();
    copies_.erase(it);
  }

  absl::Status Step(absl::Span<const StepRow> rows, absl::Span<const std::byte> new_entries,
                    absl::Span<const int32_t> indices) override {
    if (absl::Status s = CheckStepShape(shape_, rows, new_entries, indices); !s.ok()) return s;
    step_copies_.clear();
    for (const StepRow& row : rows) {
      auto it = copies_.find(row.id);
      if (it == copies_.end()) return absl::NotFoundError(absl::StrCat("request ", row.id, " did not join"));
      Copy& copy = *it->second;
      if (row.tokens != copy.tokens || copy.tokens >= copy.max_tokens) {
        return absl::OutOfRangeError(absl::StrCat("request ", row.id, " at ", row.tokens, " tokens: its copy holds ",
                                                  copy.tokens, " of room for ", copy.max_tokens));
      }
      step_copies_.push_back(&copy);
    }
    if (absl::Status s = WriteStepThroughClient(*client_, rows, new_entries, ids_, positions_); !s.ok()) return s;
    // The decode worker keeps its own new entries: nothing crosses for them.
    const uint32_t entry = shape_.entry_bytes;
    for (size_t i = 0; i < rows.size(); ++i) {
      Copy& copy = *step_copies_[i];
      for (uint32_t layer = 0; layer < shape_.stored_layers; ++layer) {
        std::memcpy(copy.data.data() + Offset(copy, layer, copy.tokens),
                    new_entries.data() + (i * shape_.stored_layers + layer) * entry, entry);
      }
      ++copy.tokens;
    }
    const size_t cells = rows.size() * size_t{shape_.k};
    out_.resize(cells * entry);
    for (uint32_t slot = 0; slot < shape_.fetched_layers; ++slot) {
      const uint32_t layer = slot % shape_.stored_layers;
      for (size_t i = 0; i < rows.size(); ++i) {
        const Copy& copy = *step_copies_[i];
        for (uint32_t position = 0; position < shape_.k; ++position) {
          const int32_t token = indices[slot * cells + i * shape_.k + position];
          if (token < 0) continue;
          if (static_cast<uint64_t>(token) >= copy.tokens) {
            return absl::OutOfRangeError(
                absl::StrCat("request ", rows[i].id, " selects token ", token, " of ", copy.tokens));
          }
          std::memcpy(out_.data() + (i * shape_.k + position) * entry, copy.data.data() + Offset(copy, layer, token),
                      entry);
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    std::memcpy(out.data(), out_.data() + (uint64_t{row} * shape_.k + position) * shape_.entry_bytes, out.size());
    return absl::OkStatus();
  }

  uint64_t AdmissionBytes() const override { return admission_bytes_; }
  uint64_t LocalBytes() const override { return local_bytes_; }

 private:
  struct Copy {
    uint64_t max_tokens = 0;
    uint64_t tokens = 0;           // in the copy, every layer
    std::vector<std::byte> data;   // [stored layers][max_tokens][entry]
  };
  uint64_t Offset(const Copy& copy, uint32_t layer, uint64_t token) const {
    return (uint64_t{layer} * copy.max_tokens + token) * shape_.entry_bytes;
  }

  std::string name_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Client> pull_client_;
  const RequestShape shape_;
  absl::Mutex admitted_mu_;
  absl::flat_hash_map<SequenceId, std::unique_ptr<Copy>> admitted_ ABSL_GUARDED_BY(admitted_mu_);
  absl::flat_hash_map<SequenceId, std::unique_ptr<Copy>> copies_;  // the batch's: decode thread only
  std::vector<Copy*> step_copies_;
  std::vector<SequenceId> ids_;
  std::vector<uint64_t> positions_;
  std::vector<std::byte> out_;
  std::atomic<uint64_t> admission_bytes_{0};
  std::atomic<uint64_t> local_bytes_{0};
};

}  // namespace

std::unique_ptr<RequestStrategy> MakeTopKRequests(std::string name, std::unique_ptr<Client> client,
                                                  const RequestShape& shape) {
  return std::make_unique<TopKRequests>(std::move(name), std::move(client), shape);
}

std::unique_ptr<RequestStrategy> MakePrefixPullRequests(std::string name, std::unique_ptr<Client> client,
                                                        std::unique_ptr<Client> pull_client,
                                                        const RequestShape& shape) {
  return std::make_unique<PrefixPullRequests>(std::move(name), std::move(client), std::move(pull_client), shape);
}

}  // namespace sparsepool::bench

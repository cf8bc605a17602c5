#include "bench/bench_runner.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/entry_pattern.h"
#include "bench/median.h"

namespace sparsepool::bench {
namespace {

constexpr uint64_t kWriteChunkTokens = 1024;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Releases the cell's sequences however the cell ends.
class SequenceGuard {
 public:
  explicit SequenceGuard(Client& client) : client_(client) {}
  ~SequenceGuard() {
    for (SequenceId id : ids_) (void)client_.ReleaseSequence(id);
  }
  void Add(SequenceId id) { ids_.push_back(id); }
  const std::vector<SequenceId>& ids() const { return ids_; }

 private:
  Client& client_;
  std::vector<SequenceId> ids_;
};

// The model layers a step fetches: all, or `sampled` spread evenly.
std::vector<uint32_t> FetchedLayers(uint32_t layers, uint32_t sampled) {
  std::vector<uint32_t> out;
  const uint32_t n = sampled == 0 ? layers : std::min(sampled, layers);
  for (uint32_t i = 0; i < n; ++i) out.push_back(static_cast<uint32_t>(uint64_t{i} * layers / n));
  return out;
}

// One cell, step by step: the prefix written through the prefill client, then every
// step's append and fetch through the strategy, each fetch checked.
class CellRun {
 public:
  CellRun(const CellPlan& plan, Client& prefill, FetchStrategy& strategy, const Progress& progress)
      : plan_(plan), model_(plan.model), strategy_(strategy), progress_(progress), sequences_(prefill),
        prefill_(prefill),
        layers_(FetchedLayers(model_.layers, plan.trace != nullptr ? plan.trace->layers : plan.sampled_layers)),
        k_(plan.trace != nullptr ? plan.trace->k : model_.top_k),
        stored_(std::min(plan.stored_layers, model_.layers)),
        total_steps_(plan.warmup_steps + plan.steps),
        rng_(plan.seed) {}

  absl::StatusOr<CellResult> Run() {
    if (plan_.trace != nullptr && plan_.trace->steps() < total_steps_) {
      return absl::InvalidArgumentError(absl::StrCat("the trace has ", plan_.trace->steps(),
                                                     " steps; the run needs ", total_steps_, " (warm-up and timed)"));
    }
    MakeTraces();
    if (absl::Status s = WritePrefix(); !s.ok()) return s;
    BatchShape shape;
    shape.sequences = sequences_.ids();
    shape.k = k_;
    shape.entry_bytes = model_.entry_bytes;
    shape.fetched_layers = static_cast<uint32_t>(layers_.size());
    shape.max_tokens = traces_[0]->context[total_steps_ - 1];
    shape.prefix_tokens = written_;
    shape.stored_layers = stored_;
    if (absl::Status s = strategy_.Prefill(shape); !s.ok()) return s;
    progress_("admitting the batch");
    auto start = std::chrono::steady_clock::now();
    if (absl::Status s = strategy_.Begin(shape); !s.ok()) return s;
    admission_s_ = Seconds(start);

    step_indices_.assign(layers_.size(), std::vector<int32_t>(uint64_t{plan_.batch} * k_));
    std::vector<double> fetch_seconds, append_seconds;
    uint64_t link_bytes_after_warmup = 0;
    for (uint32_t step = 0; step < total_steps_; ++step) {
      const bool warmup = step < plan_.warmup_steps;
      progress_(absl::StrCat(warmup ? "warm-up step " : "step ", warmup ? step + 1 : step - plan_.warmup_steps + 1,
                             "/", warmup ? plan_.warmup_steps : plan_.steps));
      const uint64_t tokens = traces_[0]->context[step];
      start = std::chrono::steady_clock::now();
      if (absl::Status s = Append(tokens); !s.ok()) return s;
      const double append = Seconds(start);
      SelectionsOf(step);
      start = std::chrono::steady_clock::now();
      if (absl::Status s = FetchEveryLayer(step, tokens); !s.ok()) return s;
      const double fetch = Seconds(start);
      if (step == 0) first_fetch_s_ = fetch;
      if (absl::Status s = CheckLastLayer(step); !s.ok()) return s;
      if (step + 1 == plan_.warmup_steps) link_bytes_after_warmup = strategy_.LinkBytes();
      if (!warmup) {
        fetch_seconds.push_back(fetch);
        append_seconds.push_back(append);
      }
    }
    return Summarize(fetch_seconds, append_seconds, strategy_.LinkBytes() - link_bytes_after_warmup);
  }

 private:
  // One generated trace per row (its own seed), or the replayed one for every row.
  void MakeTraces() {
    for (uint32_t row = 0; row < plan_.batch && plan_.trace == nullptr; ++row) {
      TraceParams params;
      params.layers = static_cast<uint32_t>(layers_.size());
      params.k = k_;
      params.context = plan_.context;
      params.steps = total_steps_;
      params.overlap = plan_.overlap;
      params.seed = plan_.seed * 7919 + row + plan_.context * 31;
      generated_.push_back(GenerateTrace(params));
    }
    for (uint32_t row = 0; row < plan_.batch; ++row) {
      traces_.push_back(plan_.trace != nullptr ? plan_.trace : &generated_[row]);
    }
    written_ = traces_[0]->context[0];
  }

  // What a prefill worker does: create each request and write its prompt's entries.
  absl::Status WritePrefix() {
    progress_(absl::StrCat("writing the prefix of ", plan_.batch, " requests"));
    for (uint32_t row = 0; row < plan_.batch; ++row) {
      SequenceSpec spec;
      spec.layers = stored_;
      spec.entry_bytes = model_.entry_bytes;
      spec.tokens = written_;
      spec.page_tokens = model_.page_tokens;
      auto id = prefill_.CreateSequence(spec);
      if (!id.ok()) return id.status();
      sequences_.Add(*id);
      for (uint32_t layer = 0; layer < stored_; ++layer) {
        for (uint64_t first = 0; first < written_; first += kWriteChunkTokens) {
          const uint64_t count = std::min(kWriteChunkTokens, written_ - first);
          if (absl::Status s = WritePatternTokens(prefill_, *id, layer, first, count, model_.entry_bytes, buffer_); !s.ok()) {
            return s;
          }
        }
      }
    }
    return absl::OkStatus();
  }

  // Appends what the previous step decoded (one token, or as many as a replayed trace
  // grew by) to every request, in every stored layer, through the decode client.
  absl::Status Append(uint64_t tokens) {
    if (tokens <= written_) return absl::OkStatus();
    Client& decode = strategy_.client();
    for (SequenceId id : sequences_.ids()) {
      if (absl::Status s = decode.ExtendSequence(id, tokens); !s.ok()) return s;
      for (uint32_t layer = 0; layer < stored_; ++layer) {
        if (absl::Status s = WritePatternTokens(decode, id, layer, written_, tokens - written_, model_.entry_bytes, buffer_);
            !s.ok()) {
          return s;
        }
      }
    }
    written_ = tokens;
    return strategy_.Appended(tokens);
  }

  // The step's [rows][k] selections of every fetched layer, laid out for Fetch.
  void SelectionsOf(uint32_t step) {
    for (size_t slot = 0; slot < layers_.size(); ++slot) {
      for (uint32_t row = 0; row < plan_.batch; ++row) {
        const int32_t* selection = traces_[row]->Selection(step, static_cast<uint32_t>(slot));
        std::copy(selection, selection + k_, step_indices_[slot].begin() + uint64_t{row} * k_);
      }
    }
  }

  absl::Status FetchEveryLayer(uint32_t step, uint64_t tokens) {
    for (size_t slot = 0; slot < layers_.size(); ++slot) {
      LayerFetch fetch;
      fetch.layer_slot = static_cast<uint32_t>(slot);
      fetch.pool_layer = layers_[slot] % stored_;
      fetch.step = step + 1;  // the residency cache counts steps from 1
      fetch.tokens = tokens;
      fetch.indices = step_indices_[slot];
      if (absl::Status s = strategy_.Fetch(fetch); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat(strategy_.name(), ", step ", step, ", layer ", layers_[slot], ": ",
                                                   s.message()));
      }
    }
    return absl::OkStatus();
  }

  // What the attention would read for the last layer: byte for byte what was written.
  absl::Status CheckLastLayer(uint32_t step) {
    const uint32_t pool_layer = layers_.back() % stored_;
    const std::vector<int32_t>& last = step_indices_.back();
    std::vector<std::byte> expected(model_.entry_bytes), got(model_.entry_bytes);
    for (uint32_t row = 0; row < plan_.batch; ++row) {
      for (uint32_t c = 0; c < plan_.checked_per_row; ++c) {
        const uint32_t position = static_cast<uint32_t>(rng_() % k_);
        const int32_t token = last[uint64_t{row} * k_ + position];
        if (token < 0) continue;
        FillEntry(kPatternSeed, sequences_.ids()[row], pool_layer, static_cast<uint64_t>(token),
                  absl::MakeSpan(expected));
        if (absl::Status s = strategy_.ReadEntry(row, position, absl::MakeSpan(got)); !s.ok()) return s;
        if (got != expected) {
          return absl::DataLossError(absl::StrCat(strategy_.name(), ": step ", step, ", row ", row, ", position ",
                                                  position, " (token ", token, ", pool layer ", pool_layer,
                                                  "): the fetched entry differs from the one written"));
        }
        ++checked_;
      }
    }
    return absl::OkStatus();
  }

  CellResult Summarize(const std::vector<double>& fetch_seconds, const std::vector<double>& append_seconds,
                       uint64_t link_bytes) const {
    CellResult result;
    result.context = traces_[0]->context[0];
    result.batch = plan_.batch;
    result.strategy = strategy_.name();
    result.layers_fetched = static_cast<uint32_t>(layers_.size());
    result.scale = double(model_.layers) / layers_.size();
    result.fetch_p50_s = Percentile(fetch_seconds, 0.5) * result.scale;
    result.fetch_p99_s = Percentile(fetch_seconds, 0.99) * result.scale;
    result.append_p50_s = Percentile(append_seconds, 0.5);
    result.link_bytes_per_step = double(link_bytes) / plan_.steps * result.scale;
    uint64_t selected = 0;  // of the last step; the same count every step
    for (const auto& indices : step_indices_) selected += CountSelected(indices);
    result.entries_per_s = selected / Percentile(fetch_seconds, 0.5);
    result.steps_per_s = 1.0 / (result.fetch_p50_s + result.append_p50_s);
    result.entries_checked = checked_;
    const double stored_scale = double(model_.layers) / stored_;
    // A pull's time grows with the layers it pulls; other admissions move nothing.
    result.admission_s = strategy_.AdmissionBytes() > 0 ? admission_s_ * stored_scale : admission_s_;
    result.admission_bytes = double(strategy_.AdmissionBytes()) * stored_scale;
    result.local_bytes = double(strategy_.LocalBytes()) * stored_scale;
    result.ttft_s = result.admission_s + first_fetch_s_ * result.scale;
    return result;
  }

  const CellPlan& plan_;
  const ModelGeometry& model_;
  FetchStrategy& strategy_;
  const Progress& progress_;
  SequenceGuard sequences_;  // released when the run ends, however it ends
  Client& prefill_;
  const std::vector<uint32_t> layers_;  // model layers fetched per step
  const uint32_t k_;
  const uint32_t stored_;  // pool layers per request; layer l reads l % stored_
  const uint32_t total_steps_;
  std::mt19937_64 rng_;
  std::vector<Trace> generated_;
  std::vector<const Trace*> traces_;             // [rows]
  std::vector<std::vector<int32_t>> step_indices_;  // [fetched layers][rows x k]
  std::vector<std::byte> buffer_;
  uint64_t written_ = 0;  // tokens written to every request
  uint64_t checked_ = 0;
  double admission_s_ = 0;
  double first_fetch_s_ = 0;
};

}  // namespace

absl::Status WritePatternTokens(Client& client, SequenceId id, uint32_t layer, uint64_t first, uint64_t count,
                                uint32_t entry_bytes, std::vector<std::byte>& buffer) {
  buffer.resize(count * entry_bytes);
  for (uint64_t t = 0; t < count; ++t) {
    FillEntry(kPatternSeed, id, layer, first + t, absl::MakeSpan(buffer).subspan(t * entry_bytes, entry_bytes));
  }
  return client.WriteEntries(id, layer, first, buffer);
}

absl::StatusOr<CellResult> RunCell(const CellPlan& plan, Client& prefill, FetchStrategy& strategy,
                                   const Progress& progress) {
  return CellRun(plan, prefill, strategy, progress).Run();
}

}  // namespace sparsepool::bench

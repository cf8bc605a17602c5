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

constexpr uint64_t kPatternSeed = 0x5EED;
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

absl::Status WriteTokens(Client& client, SequenceId id, uint32_t layer, uint64_t first, uint64_t count,
                         uint32_t entry_bytes, std::vector<std::byte>& buffer) {
  buffer.resize(count * entry_bytes);
  for (uint64_t t = 0; t < count; ++t) {
    FillEntry(kPatternSeed, id, layer, first + t, absl::MakeSpan(buffer).subspan(t * entry_bytes, entry_bytes));
  }
  return client.WriteEntries(id, layer, first, buffer);
}

// The model layers a step fetches: all, or `sampled` spread evenly.
std::vector<uint32_t> FetchedLayers(uint32_t layers, uint32_t sampled) {
  std::vector<uint32_t> out;
  const uint32_t n = sampled == 0 ? layers : std::min(sampled, layers);
  for (uint32_t i = 0; i < n; ++i) out.push_back(static_cast<uint32_t>(uint64_t{i} * layers / n));
  return out;
}

}  // namespace

uint64_t CellPoolBytes(const CellPlan& plan) {
  const uint64_t tokens = plan.trace != nullptr ? plan.trace->context.back() : plan.context + plan.warmup_steps + plan.steps;
  const uint64_t pages = (tokens + plan.model.page_tokens - 1) / plan.model.page_tokens;
  return uint64_t{plan.batch} * plan.stored_layers * pages * plan.model.page_tokens * plan.model.entry_bytes;
}

absl::StatusOr<CellResult> RunCell(const CellPlan& plan, Client& prefill, FetchStrategy& strategy,
                                   const Progress& progress) {
  const ModelGeometry& model = plan.model;
  const uint32_t total_steps = plan.warmup_steps + plan.steps;
  const std::vector<uint32_t> layers = plan.trace != nullptr ? FetchedLayers(model.layers, plan.trace->layers)
                                                             : FetchedLayers(model.layers, plan.sampled_layers);
  const uint32_t k = plan.trace != nullptr ? plan.trace->k : model.top_k;
  const uint32_t stored = std::min(plan.stored_layers, model.layers);
  if (plan.trace != nullptr && plan.trace->steps() < total_steps) {
    return absl::InvalidArgumentError(absl::StrCat("the trace has ", plan.trace->steps(), " steps; the run needs ",
                                                   total_steps, " (warm-up and timed)"));
  }

  // Selections: one generated trace per row (its own seed), or the replayed one.
  std::vector<Trace> generated;
  std::vector<const Trace*> traces;
  for (uint32_t row = 0; row < plan.batch; ++row) {
    if (plan.trace != nullptr) {
      traces.push_back(plan.trace);
      continue;
    }
    TraceParams params;
    params.layers = static_cast<uint32_t>(layers.size());
    params.k = k;
    params.context = plan.context;
    params.steps = total_steps;
    params.overlap = plan.overlap;
    params.seed = plan.seed * 7919 + row + plan.context * 31;
    generated.push_back(GenerateTrace(params));
  }
  for (const Trace& t : generated) traces.push_back(&t);
  const uint64_t first_context = traces[0]->context[0];

  progress(absl::StrCat("writing the prefix of ", plan.batch, " requests"));
  SequenceGuard sequences(prefill);
  std::vector<std::byte> buffer;
  for (uint32_t row = 0; row < plan.batch; ++row) {
    SequenceSpec spec;
    spec.layers = stored;
    spec.entry_bytes = model.entry_bytes;
    spec.tokens = first_context;
    spec.page_tokens = model.page_tokens;
    auto id = prefill.CreateSequence(spec);
    if (!id.ok()) return id.status();
    sequences.Add(*id);
    for (uint32_t layer = 0; layer < stored; ++layer) {
      for (uint64_t first = 0; first < first_context; first += kWriteChunkTokens) {
        const uint64_t count = std::min(kWriteChunkTokens, first_context - first);
        if (absl::Status s = WriteTokens(prefill, *id, layer, first, count, model.entry_bytes, buffer); !s.ok()) {
          return s;
        }
      }
    }
  }
  const std::vector<SequenceId>& ids = sequences.ids();

  BatchShape shape;
  shape.sequences = ids;
  shape.k = k;
  shape.entry_bytes = model.entry_bytes;
  shape.fetched_layers = static_cast<uint32_t>(layers.size());
  shape.max_tokens = traces[0]->context[total_steps - 1];
  if (absl::Status s = strategy.Begin(shape); !s.ok()) return s;

  Client& decode = strategy.client();
  std::vector<std::vector<int32_t>> step_indices(layers.size(), std::vector<int32_t>(uint64_t{plan.batch} * k));
  std::vector<double> fetch_seconds, append_seconds;
  std::vector<std::byte> expected(model.entry_bytes), got(model.entry_bytes);
  std::mt19937_64 rng(plan.seed);
  uint64_t checked = 0, link_bytes_after_warmup = 0, written = first_context;
  for (uint32_t step = 0; step < total_steps; ++step) {
    const uint64_t tokens = traces[0]->context[step];
    progress(absl::StrCat(step < plan.warmup_steps ? "warm-up step " : "step ",
                          step < plan.warmup_steps ? step + 1 : step - plan.warmup_steps + 1, "/",
                          step < plan.warmup_steps ? plan.warmup_steps : plan.steps));
    // Append what the previous step decoded (one token, or as many as a replayed trace
    // grew by) to every request, in every stored layer.
    const auto append_start = std::chrono::steady_clock::now();
    if (tokens > written) {
      for (SequenceId id : ids) {
        if (absl::Status s = decode.ExtendSequence(id, tokens); !s.ok()) return s;
        for (uint32_t layer = 0; layer < stored; ++layer) {
          if (absl::Status s = WriteTokens(decode, id, layer, written, tokens - written, model.entry_bytes, buffer);
              !s.ok()) {
            return s;
          }
        }
      }
      written = tokens;
    }
    const double append = Seconds(append_start);
    for (size_t slot = 0; slot < layers.size(); ++slot) {
      for (uint32_t row = 0; row < plan.batch; ++row) {
        const int32_t* selection = traces[row]->Selection(step, static_cast<uint32_t>(slot));
        std::copy(selection, selection + k, step_indices[slot].begin() + uint64_t{row} * k);
      }
    }
    const auto fetch_start = std::chrono::steady_clock::now();
    for (size_t slot = 0; slot < layers.size(); ++slot) {
      LayerFetch fetch;
      fetch.layer_slot = static_cast<uint32_t>(slot);
      fetch.pool_layer = layers[slot] % stored;
      fetch.step = step + 1;  // the residency cache counts steps from 1
      fetch.tokens = tokens;
      fetch.indices = step_indices[slot];
      if (absl::Status s = strategy.Fetch(fetch); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat(strategy.name(), ", step ", step, ", layer ", layers[slot], ": ",
                                                   s.message()));
      }
    }
    const double fetch = Seconds(fetch_start);
    // What the attention would read for the last layer: byte for byte what was written.
    const uint32_t pool_layer = layers.back() % stored;
    const std::vector<int32_t>& last = step_indices.back();
    for (uint32_t row = 0; row < plan.batch; ++row) {
      for (uint32_t c = 0; c < plan.checked_per_row; ++c) {
        const uint32_t position = static_cast<uint32_t>(rng() % k);
        const int32_t token = last[uint64_t{row} * k + position];
        if (token < 0) continue;
        FillEntry(kPatternSeed, ids[row], pool_layer, static_cast<uint64_t>(token), absl::MakeSpan(expected));
        if (absl::Status s = strategy.ReadEntry(row, position, absl::MakeSpan(got)); !s.ok()) return s;
        if (got != expected) {
          return absl::DataLossError(absl::StrCat(strategy.name(), ": step ", step, ", row ", row, ", position ",
                                                  position, " (token ", token, ", pool layer ", pool_layer,
                                                  "): the fetched entry differs from the one written"));
        }
        ++checked;
      }
    }
    if (step + 1 == plan.warmup_steps) link_bytes_after_warmup = strategy.LinkBytes();
    if (step >= plan.warmup_steps) {
      fetch_seconds.push_back(fetch);
      append_seconds.push_back(append);
    }
  }
  const uint64_t link_bytes = strategy.LinkBytes() - (plan.warmup_steps > 0 ? link_bytes_after_warmup : 0);

  CellResult result;
  result.context = first_context;
  result.batch = plan.batch;
  result.strategy = strategy.name();
  result.layers_fetched = static_cast<uint32_t>(layers.size());
  result.scale = double(model.layers) / layers.size();
  result.fetch_p50_s = Percentile(fetch_seconds, 0.5) * result.scale;
  result.fetch_p99_s = Percentile(fetch_seconds, 0.99) * result.scale;
  result.append_p50_s = Percentile(append_seconds, 0.5);
  result.link_bytes_per_step = double(link_bytes) / plan.steps * result.scale;
  uint64_t selected = 0;
  for (const auto& indices : step_indices) {
    for (int32_t index : indices) selected += index >= 0;
  }
  result.entries_per_s = selected / Percentile(fetch_seconds, 0.5);
  result.steps_per_s = 1.0 / (result.fetch_p50_s + result.append_p50_s);
  result.entries_checked = checked;
  return result;
}

}  // namespace sparsepool::bench

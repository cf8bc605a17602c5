#include "bench/request_run.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_report.h"
#include "bench/entry_pattern.h"
#include "bench/median.h"
#include "bench/trace_file.h"
#include "common/units.h"

namespace sparsepool::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kPrefillChunkTokens = 1024;

// One request through the run.
struct Request {
  Arrival arrival;
  SequenceId id = 0;
  Trace trace;              // its selections, [output steps][fetched layers][k]
  uint64_t tokens = 0;      // in the pool now
  uint32_t decoded = 0;
  double admitted_s = 0;
  double last_token_s = 0;
  bool released = false;
};

class RequestRun {
 public:
  RequestRun(const RequestRunPlan& plan, Client& prefill, RequestStrategy& strategy, const Progress& progress)
      : plan_(plan), prefill_(prefill), strategy_(strategy), progress_(progress), rng_(plan.arrivals.seed) {}

  ~RequestRun() {
    // However the run ends, nothing stays in the pool.
    for (Request& r : requests_) {
      if (r.id != 0 && !r.released) {
        strategy_.Leave(r.id);
        (void)strategy_.client().ReleaseSequence(r.id);
        (void)prefill_.ReleaseSequence(r.id);
      }
    }
  }

  absl::StatusOr<RequestRunResult> Run() {
    if (plan_.concurrency == 0 || plan_.fetched_layers == 0 || plan_.stored_layers == 0) {
      return absl::InvalidArgumentError("a request run needs a concurrency, fetched layers and stored layers");
    }
    auto arrivals = GenerateArrivals(plan_.arrivals);
    if (!arrivals.ok()) return arrivals.status();
    if (absl::Status s = Prefill(*arrivals); !s.ok()) return s;

    const Clock::time_point start = Clock::now();
    auto now_s = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    size_t next_arrival = 0;
    std::deque<size_t> waiting;
    std::vector<size_t> active;
    uint32_t completed = 0;
    while (completed < requests_.size()) {
      while (next_arrival < requests_.size() && requests_[next_arrival].arrival.at_s <= now_s()) {
        waiting.push_back(next_arrival++);
      }
      while (active.size() < plan_.concurrency && !waiting.empty()) {
        const size_t index = waiting.front();
        waiting.pop_front();
        Request& r = requests_[index];
        const double begin = now_s();
        if (absl::Status s = strategy_.Admit(r.id, r.tokens, r.tokens + r.arrival.output_tokens); !s.ok()) return s;
        r.admitted_s = now_s();
        wait_s_.push_back(begin - r.arrival.at_s);
        admission_s_.push_back(r.admitted_s - begin);
        peak_local_ = std::max(peak_local_, strategy_.LocalBytes());
        active.push_back(index);
      }
      if (active.empty()) {
        // Idle until the next arrival.
        const double until = requests_[next_arrival].arrival.at_s - now_s();
        if (until > 0) std::this_thread::sleep_for(std::chrono::duration<double>(std::min(until, 0.005)));
        continue;
      }
      if (absl::Status s = Step(active, now_s); !s.ok()) return s;
      // Requests whose output is complete leave the batch.
      for (auto it = active.begin(); it != active.end();) {
        Request& r = requests_[*it];
        if (r.decoded < r.arrival.output_tokens) {
          ++it;
          continue;
        }
        strategy_.Leave(r.id);
        if (absl::Status s = strategy_.client().ReleaseSequence(r.id); !s.ok()) return s;
        r.released = true;
        ++completed;
        it = active.erase(it);
      }
      progress_(absl::StrCat(completed, "/", requests_.size(), " requests done, ", active.size(), " decoding, ",
                             waiting.size(), " waiting"));
    }
    return Summarize(now_s());
  }

 private:
  // What the prefill workers do before the requests reach decode: every prompt's
  // entries in the pool, and each request's selections.
  absl::Status Prefill(const std::vector<Arrival>& arrivals) {
    const ModelGeometry& m = plan_.model;
    requests_.resize(arrivals.size());
    for (size_t i = 0; i < arrivals.size(); ++i) {
      progress_(absl::StrCat("prefill of request ", i + 1, "/", arrivals.size()));
      Request& r = requests_[i];
      r.arrival = arrivals[i];
      r.tokens = arrivals[i].context;
      SequenceSpec spec;
      spec.layers = plan_.stored_layers;
      spec.entry_bytes = m.entry_bytes;
      spec.tokens = r.tokens;
      spec.page_tokens = m.page_tokens;
      auto id = prefill_.CreateSequence(spec);
      if (!id.ok()) return id.status();
      r.id = *id;
      for (uint32_t layer = 0; layer < plan_.stored_layers; ++layer) {
        for (uint64_t first = 0; first < r.tokens; first += kPrefillChunkTokens) {
          const uint64_t count = std::min(kPrefillChunkTokens, r.tokens - first);
          if (absl::Status s = WritePatternTokens(prefill_, r.id, layer, first, count, m.entry_bytes, buffer_);
              !s.ok()) {
            return s;
          }
        }
      }
      TraceParams trace;
      trace.layers = plan_.fetched_layers;
      trace.k = m.top_k;
      trace.context = r.tokens + 1;  // the first step sees the first decoded token's entry
      trace.steps = arrivals[i].output_tokens;
      trace.overlap = plan_.overlap;
      trace.seed = plan_.arrivals.seed * 7919 + i;
      r.trace = GenerateTrace(trace);
    }
    return absl::OkStatus();
  }

  // One decode step of the batch: every row appends its new token's entries, then every
  // fetched layer's top-k of every row is fetched; each row then has its next token.
  absl::Status Step(const std::vector<size_t>& active, const std::function<double()>& now_s) {
    const ModelGeometry& m = plan_.model;
    Client& decode = strategy_.client();
    rows_.clear();
    for (size_t index : active) {
      Request& r = requests_[index];
      const uint64_t grown = r.tokens + 1;
      if (absl::Status s = decode.ExtendSequence(r.id, grown); !s.ok()) return s;
      for (uint32_t layer = 0; layer < plan_.stored_layers; ++layer) {
        if (absl::Status s = WritePatternTokens(decode, r.id, layer, r.tokens, 1, m.entry_bytes, buffer_); !s.ok()) {
          return s;
        }
      }
      r.tokens = grown;
      if (absl::Status s = strategy_.Appended(r.id, grown); !s.ok()) return s;
      rows_.push_back(r.id);
    }
    const size_t k = m.top_k;
    indices_.assign(active.size() * k, -1);
    out_.resize(active.size() * k * m.entry_bytes);
    for (uint32_t slot = 0; slot < plan_.fetched_layers; ++slot) {
      for (size_t row = 0; row < active.size(); ++row) {
        const Request& r = requests_[active[row]];
        const int32_t* selection = r.trace.Selection(r.decoded, slot);
        std::copy(selection, selection + k, indices_.begin() + row * k);
      }
      const uint32_t pool_layer = slot % plan_.stored_layers;
      if (absl::Status s = strategy_.Fetch(pool_layer, rows_, indices_, absl::MakeSpan(out_)); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat(strategy_.name(), ", layer ", slot, ": ", s.message()));
      }
      if (slot + 1 == plan_.fetched_layers) {
        if (absl::Status s = Check(active, pool_layer); !s.ok()) return s;
      }
    }
    const double t = now_s();
    for (size_t index : active) {
      Request& r = requests_[index];
      if (r.decoded == 0) {
        ttft_s_.push_back(t - r.arrival.at_s);
      } else {
        tbt_s_.push_back(t - r.last_token_s);
      }
      r.last_token_s = t;
      ++r.decoded;
      ++tokens_;
    }
    return absl::OkStatus();
  }

  // What the attention reads for the step's last layer is what was written.
  absl::Status Check(const std::vector<size_t>& active, uint32_t pool_layer) {
    const uint32_t entry = plan_.model.entry_bytes;
    const size_t k = plan_.model.top_k;
    std::vector<std::byte> expected(entry);
    for (size_t row = 0; row < active.size(); ++row) {
      for (uint32_t c = 0; c < plan_.checked_per_row; ++c) {
        const size_t position = rng_() % k;
        const int32_t token = indices_[row * k + position];
        if (token < 0) continue;
        FillEntry(kPatternSeed, rows_[row], pool_layer, static_cast<uint64_t>(token), absl::MakeSpan(expected));
        if (std::memcmp(out_.data() + (row * k + position) * entry, expected.data(), entry) != 0) {
          return absl::DataLossError(absl::StrCat(strategy_.name(), ": request ", rows_[row], " token ", token,
                                                  " (pool layer ", pool_layer,
                                                  "): the delivered entry differs from the one written"));
        }
        ++checked_;
      }
    }
    return absl::OkStatus();
  }

  RequestRunResult Summarize(double wall_s) const {
    RequestRunResult result;
    result.strategy = strategy_.name();
    result.completed = static_cast<uint32_t>(requests_.size());
    result.tokens = tokens_;
    result.wall_s = wall_s - requests_.front().arrival.at_s;
    result.ttft_p50_s = Percentile(ttft_s_, 0.5);
    result.ttft_p99_s = Percentile(ttft_s_, 0.99);
    result.wait_p99_s = Percentile(wait_s_, 0.99);
    result.admission_p50_s = Percentile(admission_s_, 0.5);
    if (!tbt_s_.empty()) {
      result.tbt_p50_s = Percentile(tbt_s_, 0.5);
      result.tbt_p99_s = Percentile(tbt_s_, 0.99);
    }
    result.tokens_per_s = tokens_ / result.wall_s;
    result.admission_bytes = strategy_.AdmissionBytes();
    result.peak_local_bytes = peak_local_;
    result.entries_checked = checked_;
    return result;
  }

  const RequestRunPlan& plan_;
  Client& prefill_;
  RequestStrategy& strategy_;
  const Progress& progress_;
  std::mt19937_64 rng_;
  std::vector<Request> requests_;
  std::vector<SequenceId> rows_;
  std::vector<int32_t> indices_;
  std::vector<std::byte> out_;
  std::vector<std::byte> buffer_;
  std::vector<double> ttft_s_, tbt_s_, wait_s_, admission_s_;
  uint64_t tokens_ = 0;
  uint64_t peak_local_ = 0;
  uint64_t checked_ = 0;
};

}  // namespace

absl::StatusOr<RequestRunResult> RunRequests(const RequestRunPlan& plan, Client& prefill, RequestStrategy& strategy,
                                             const Progress& progress) {
  return RequestRun(plan, prefill, strategy, progress).Run();
}

std::string RequestResultsMarkdown(const std::vector<RequestRunResult>& results) {
  std::string out =
      "| strategy | requests | TTFT p50 | TTFT p99 | of which waiting for a place, p99 | admission p50 | TBT p50 | "
      "TBT p99 | tokens/s | moved at admission | largest local copy |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const RequestRunResult& r : results) {
    absl::StrAppendFormat(&out, "| %s | %d | %s | %s | %s | %s | %s | %s | %.1f | %s | %s |\n", r.strategy,
                          r.completed, FormatSeconds(r.ttft_p50_s), FormatSeconds(r.ttft_p99_s),
                          FormatSeconds(r.wait_p99_s), FormatSeconds(r.admission_p50_s), FormatSeconds(r.tbt_p50_s),
                          FormatSeconds(r.tbt_p99_s), r.tokens_per_s,
                          r.admission_bytes > 0 ? FormatBytes(r.admission_bytes) : "-",
                          r.peak_local_bytes > 0 ? FormatBytes(r.peak_local_bytes) : "-");
  }
  return out;
}

std::string RequestResultsCsv(const std::vector<RequestRunResult>& results) {
  std::string out =
      "strategy,requests,tokens,wall_s,ttft_p50_ms,ttft_p99_ms,wait_p99_ms,admission_p50_ms,tbt_p50_ms,tbt_p99_ms,"
      "tokens_per_s,admission_mib,peak_local_mib,entries_checked\n";
  for (const RequestRunResult& r : results) {
    absl::StrAppendFormat(&out, "%s,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.2f,%.3f,%.3f,%d\n", r.strategy,
                          r.completed, r.tokens, r.wall_s, r.ttft_p50_s * 1e3, r.ttft_p99_s * 1e3, r.wait_p99_s * 1e3,
                          r.admission_p50_s * 1e3, r.tbt_p50_s * 1e3, r.tbt_p99_s * 1e3, r.tokens_per_s,
                          r.admission_bytes / double(1 << 20), r.peak_local_bytes / double(1 << 20),
                          r.entries_checked);
  }
  return out;
}

}  // namespace sparsepool::bench

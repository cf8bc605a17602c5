#include "bench/request_run.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
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
  // Seconds since the run began. pull_start_s and admitted_s are written by the
  // admission worker before it reports the request finished.
  double placed_s = 0, admitted_s = 0, first_token_s = 0, last_token_s = 0;
  bool released = false;
};

// Runs admissions one at a time, in the order they were queued, off the decode thread.
class AdmissionWorker {
 public:
  using Admit = std::function<absl::Status(size_t)>;
  explicit AdmissionWorker(Admit admit) : admit_(std::move(admit)), thread_([this] { Loop(); }) {}
  ~AdmissionWorker() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  void Enqueue(size_t index) {
    absl::MutexLock lock(&mu_);
    queued_.push_back(index);
  }
  // Admissions finished since the last call, with how each went.
  std::vector<std::pair<size_t, absl::Status>> TakeFinished() {
    absl::MutexLock lock(&mu_);
    return std::exchange(finished_, {});
  }
  // Until one is finished, or `timeout`.
  void WaitForFinished(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](std::vector<std::pair<size_t, absl::Status>>* f) { return !f->empty(); },
                             &finished_),
                         timeout);
  }

 private:
  void Loop() {
    while (true) {
      size_t index = 0;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &AdmissionWorker::HasWork));
        if (queued_.empty()) return;  // stopping
        index = queued_.front();
        queued_.pop_front();
      }
      absl::Status status = admit_(index);
      absl::MutexLock lock(&mu_);
      finished_.emplace_back(index, std::move(status));
    }
  }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queued_.empty(); }

  const Admit admit_;
  absl::Mutex mu_;
  std::deque<size_t> queued_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<size_t, absl::Status>> finished_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: it starts once the rest is built
};

class RequestRun {
 public:
  RequestRun(const RequestRunPlan& plan, Client& prefill, RequestStrategy& strategy, const Progress& progress)
      : plan_(plan), prefill_(prefill), strategy_(strategy), progress_(progress), rng_(plan.arrivals.seed) {}

  ~RequestRun() {
    worker_.reset();  // no admission runs while the requests go
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
    std::vector<SequenceId> prompts;
    for (const Request& r : requests_) prompts.push_back(r.id);
    if (absl::Status s = strategy_.WarmUp(prompts); !s.ok()) return s;

    start_ = Clock::now();
    worker_ = std::make_unique<AdmissionWorker>([this](size_t index) {
      Request& r = requests_[index];
      absl::Status s = strategy_.Admit(r.id, r.tokens, r.tokens + r.arrival.output_tokens);
      r.admitted_s = NowS();
      return s;
    });
    size_t next_arrival = 0;
    std::deque<size_t> waiting;
    std::vector<size_t> active;
    size_t admitting = 0;
    uint32_t completed = 0;
    while (completed < requests_.size()) {
      while (next_arrival < requests_.size() && requests_[next_arrival].arrival.at_s <= NowS()) {
        waiting.push_back(next_arrival++);
      }
      while (active.size() + admitting < plan_.concurrency && !waiting.empty()) {
        const size_t index = waiting.front();
        waiting.pop_front();
        requests_[index].placed_s = NowS();
        worker_->Enqueue(index);
        ++admitting;
      }
      for (auto& [index, status] : worker_->TakeFinished()) {
        --admitting;
        Request& r = requests_[index];
        if (!status.ok()) {
          return absl::Status(status.code(), absl::StrCat(strategy_.name(), ": admitting request ", r.id, ": ",
                                                          status.message()));
        }
        if (absl::Status s = strategy_.Join(r.id, r.tokens); !s.ok()) return s;
        active.push_back(index);
      }
      peak_local_ = std::max(peak_local_, strategy_.LocalBytes());
      if (active.empty()) {
        // Idle until an admission ends or the next request arrives.
        double until = 0.005;
        if (next_arrival < requests_.size()) {
          until = std::min(until, requests_[next_arrival].arrival.at_s - NowS());
        }
        if (until > 0) worker_->WaitForFinished(absl::Seconds(until));
        continue;
      }
      if (absl::Status s = Step(active); !s.ok()) return s;
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
                             admitting, " being admitted, ", waiting.size(), " waiting"));
    }
    return Summarize(NowS());
  }

 private:
  double NowS() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

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
  absl::Status Step(const std::vector<size_t>& active) {
    const ModelGeometry& m = plan_.model;
    const uint32_t entry = m.entry_bytes;
    const size_t rows = active.size(), k = m.top_k;
    rows_.clear();
    new_entries_.resize(rows * plan_.stored_layers * entry);
    indices_.assign(plan_.fetched_layers * rows * k, -1);
    for (size_t row = 0; row < rows; ++row) {
      const Request& r = requests_[active[row]];
      rows_.push_back(StepRow{r.id, r.tokens});
      for (uint32_t layer = 0; layer < plan_.stored_layers; ++layer) {
        FillEntry(kPatternSeed, r.id, layer, r.tokens,
                  absl::MakeSpan(new_entries_).subspan((row * plan_.stored_layers + layer) * entry, entry));
      }
      for (uint32_t slot = 0; slot < plan_.fetched_layers; ++slot) {
        const int32_t* selection = r.trace.Selection(r.decoded, slot);
        std::copy(selection, selection + k, indices_.begin() + (slot * rows + row) * k);
      }
    }
    if (absl::Status s = strategy_.Step(rows_, new_entries_, indices_); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(strategy_.name(), ": ", s.message()));
    }
    const double t = NowS();
    for (size_t index : active) {
      Request& r = requests_[index];
      ++r.tokens;
      if (r.decoded == 0) {
        ttft_s_.push_back(t - r.arrival.at_s);
        r.first_token_s = t;
      } else {
        tbt_s_.push_back(t - r.last_token_s);
      }
      r.last_token_s = t;
      ++r.decoded;
      ++tokens_;
    }
    return Check((plan_.fetched_layers - 1) % plan_.stored_layers);
  }

  // What the attention reads for the step's last fetched layer is what was written.
  absl::Status Check(uint32_t pool_layer) {
    const uint32_t entry = plan_.model.entry_bytes;
    const size_t k = plan_.model.top_k, rows = rows_.size();
    const int32_t* last = indices_.data() + (plan_.fetched_layers - 1) * rows * k;
    std::vector<std::byte> expected(entry), got(entry);
    for (size_t row = 0; row < rows; ++row) {
      for (uint32_t c = 0; c < plan_.checked_per_row; ++c) {
        const size_t position = rng_() % k;
        const int32_t token = last[row * k + position];
        if (token < 0) continue;
        if (absl::Status s = strategy_.ReadEntry(row, position, absl::MakeSpan(got)); !s.ok()) return s;
        FillEntry(kPatternSeed, rows_[row].id, pool_layer, static_cast<uint64_t>(token), absl::MakeSpan(expected));
        if (got != expected) {
          return absl::DataLossError(absl::StrCat(strategy_.name(), ": request ", rows_[row].id, " token ", token,
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
    std::vector<double> wait_s, admission_s;
    for (const Request& r : requests_) {
      wait_s.push_back(r.placed_s - r.arrival.at_s);
      admission_s.push_back(r.admitted_s - r.placed_s);
      result.requests.push_back(RequestRunResult::PerRequest{r.arrival.at_s, r.placed_s, r.admitted_s,
                                                             r.first_token_s, r.last_token_s, r.arrival.context,
                                                             r.arrival.output_tokens});
    }
    result.ttft_p50_s = Percentile(ttft_s_, 0.5);
    result.ttft_p99_s = Percentile(ttft_s_, 0.99);
    result.wait_p99_s = Percentile(wait_s, 0.99);
    result.admission_p50_s = Percentile(admission_s, 0.5);
    result.admission_p99_s = Percentile(admission_s, 0.99);
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
  Clock::time_point start_;
  std::vector<Request> requests_;
  std::unique_ptr<AdmissionWorker> worker_;
  std::vector<StepRow> rows_;
  std::vector<int32_t> indices_;      // [fetched layers][rows][k]
  std::vector<std::byte> new_entries_;  // [rows][stored layers][entry]
  std::vector<std::byte> buffer_;
  std::vector<double> ttft_s_, tbt_s_;
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
      "| strategy | requests | TTFT p50 | TTFT p99 | of which waiting for a place, p99 | admission p50 | admission p99 | "
      "TBT p50 | TBT p99 | tokens/s | moved at admission | largest local copy |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const RequestRunResult& r : results) {
    absl::StrAppendFormat(&out, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s |\n", r.strategy,
                          r.completed, FormatSeconds(r.ttft_p50_s), FormatSeconds(r.ttft_p99_s),
                          FormatSeconds(r.wait_p99_s), FormatSeconds(r.admission_p50_s),
                          FormatSeconds(r.admission_p99_s), FormatSeconds(r.tbt_p50_s),
                          FormatSeconds(r.tbt_p99_s), r.tokens_per_s,
                          r.admission_bytes > 0 ? FormatBytes(r.admission_bytes) : "-",
                          r.peak_local_bytes > 0 ? FormatBytes(r.peak_local_bytes) : "-");
  }
  return out;
}

std::string RequestResultsCsv(const std::vector<RequestRunResult>& results) {
  std::string out =
      "strategy,requests,tokens,wall_s,ttft_p50_ms,ttft_p99_ms,wait_p99_ms,admission_p50_ms,admission_p99_ms,tbt_p50_ms,"
      "tbt_p99_ms,"
      "tokens_per_s,admission_mib,peak_local_mib,entries_checked\n";
  for (const RequestRunResult& r : results) {
    absl::StrAppendFormat(&out, "%s,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.2f,%.3f,%.3f,%d\n", r.strategy,
                          r.completed, r.tokens, r.wall_s, r.ttft_p50_s * 1e3, r.ttft_p99_s * 1e3, r.wait_p99_s * 1e3,
                          r.admission_p50_s * 1e3, r.admission_p99_s * 1e3, r.tbt_p50_s * 1e3, r.tbt_p99_s * 1e3, r.tokens_per_s,
                          r.admission_bytes / double(1 << 20), r.peak_local_bytes / double(1 << 20),
                          r.entries_checked);
  }
  return out;
}

std::string RequestTimelineCsv(const std::vector<RequestRunResult>& results) {
  std::string out = "strategy,request,arrival_s,context,output_tokens,placed_s,admitted_s,first_token_s,done_s\n";
  for (const RequestRunResult& r : results) {
    for (size_t i = 0; i < r.requests.size(); ++i) {
      const RequestRunResult::PerRequest& q = r.requests[i];
      absl::StrAppendFormat(&out, "%s,%d,%.6f,%d,%d,%.6f,%.6f,%.6f,%.6f\n", r.strategy, i, q.arrival_s, q.context,
                            q.output_tokens, q.placed_s, q.admitted_s, q.first_token_s, q.done_s);
    }
  }
  return out;
}

std::string RequestGnuplotScript(const std::vector<RequestRunResult>& results) {
  std::string out =
      "# Draws sparsepool-serve-bench's plots from timeline.csv: gnuplot plots.gp\n"
      "set terminal pngcairo size 900,560 font ',11'\n"
      "set datafile separator ','\n"
      "set key outside right top\n"
      "set grid\n";
  // Columns of timeline.csv: 1 strategy, 3 arrival_s, 4 context, 5 output_tokens,
  // 6 placed_s, 7 admitted_s, 8 first_token_s, 9 done_s.
  auto plot = [&](const std::string& file, const std::string& title, const std::string& settings,
                  const std::string& using_expr, const std::string& style) {
    absl::StrAppend(&out, "set output '", file, "'\nset title '", title, "'\n", settings, "plot ");
    for (size_t i = 0; i < results.size(); ++i) {
      const std::string& name = results[i].strategy;
      absl::StrAppend(&out, i == 0 ? "" : ", \\\n     ", "'timeline.csv' skip 1 using ",
                      absl::StrReplaceAll(using_expr, {{"KEEP", absl::StrCat("(strcol(1) eq '", name, "')")}}),
                      " ", style, absl::StrContains(style, "points") ? absl::StrCat(" pt ", 5 + i) : "",
                      " title '", name, "'");
    }
    absl::StrAppend(&out, "\nunset logscale\n");
  };
  plot("ttft_by_arrival.png", "time to first token of each request, by its arrival",
       "set xlabel 'arrival (s since the run began)'\nset ylabel 'TTFT (s)'\nset logscale y\n",
       "3:(KEEP ? $8 - $3 : NaN)", "with points");
  plot("ttft_cdf.png", "time to first token: share of requests served within",
       "set xlabel 'TTFT (s)'\nset ylabel 'share of requests'\nset logscale x\nset yrange [0:1]\n",
       "(KEEP ? $8 - $3 : NaN):(1.0) smooth cnormal", "with steps lw 2");
  absl::StrAppend(&out, "set yrange [*:*]\n");
  plot("tbt_by_context.png", "mean time between tokens of each request, by its prompt",
       "set xlabel 'prompt (tokens)'\nset ylabel 'mean TBT (ms)'\nset logscale x 2\n",
       "4:(KEEP && $5 > 1 ? ($9 - $8) * 1000 / ($5 - 1) : NaN)", "with points");
  return out;
}

}  // namespace sparsepool::bench

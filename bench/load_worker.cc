#include "bench/load_worker.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/entry_pattern.h"
#include "bench/load_ledger.h"
#include "bench/request_strategies.h"
#include "client/decode_session.h"
#include "client/sparsepool_client.h"
#include "common/file_text.h"

namespace sparsepool::bench {
namespace {

constexpr uint64_t kSeed = 0x10ad;
using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point begin) {
  return std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
}

// Adds the time from its making to its end to `seconds`: a phase of the worker's loop
// (LoadWorkerTime).
class TimeInto {
 public:
  explicit TimeInto(double& seconds) : seconds_(seconds), begin_(Clock::now()) {}
  ~TimeInto() { seconds_ += MillisSince(begin_) / 1000; }
  TimeInto(const TimeInto&) = delete;
  TimeInto& operator=(const TimeInto&) = delete;

 private:
  double& seconds_;
  const Clock::time_point begin_;
};

// Failures a worker rides out: the daemon gone or restarting, the pool full.
bool Transient(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsResourceExhausted(s);
}

// Times this process was continued after a stop (SIGCONT): the parent stops every
// worker (SIGSTOP) for its checks, and a call that spanned a stop took longer by it.
// Process-wide because a signal handler can reach nothing else; lock-free, so safe to
// touch there.
std::atomic<uint64_t> continued_after_stop{0};
void CountContinue(int) { continued_after_stop.fetch_add(1, std::memory_order_relaxed); }

class Worker {
 public:
  explicit Worker(const LoadWorkerOptions& o) : o_(o), rng_(kSeed + o.index) {}

  int Run() {
    const auto start = Clock::now();
    if (const std::string own = LoadWorkerDir(o_.dir, o_.index); mkdir(own.c_str(), 0700) != 0 && errno != EEXIST) {
      return Fail(absl::InternalError(absl::StrCat("cannot make ", own, ": ", std::strerror(errno))));
    }
    // A daemon that does not answer at the start is a mistake of the run, not a fault.
    if (absl::Status s = Connect(); !s.ok()) return Fail(s);
    for (int r = 0; r < o_.requests; ++r) {
      if (absl::Status s = Join(); !s.ok()) return Fail(s);
    }
    const auto deadline = start + std::chrono::duration<double>(o_.seconds);
    std::vector<double> step_us, wait_us;
    uint64_t entries = 0, checked = 0;
    while (Clock::now() < deadline && !StopRequested()) {
      {
        TimeInto timed(time_.select_s);
        SelectTopK();
      }
      const auto begin = Clock::now();
      double wait_ms = 0;
      if (absl::Status s = Step(entries, wait_ms); !s.ok()) return Fail(s);
      const double step_ms = MillisSince(begin);
      time_.step_s += step_ms / 1000;
      step_us.push_back(step_ms * 1000);
      wait_us.push_back(wait_ms * 1000);
      absl::Status delivered;
      {
        TimeInto timed(time_.check_s);
        delivered = CheckDelivered(checked);
      }
      if (!delivered.ok()) return Fail(delivered);
      if (absl::Status s = SaveLedger(); !s.ok()) return Fail(s);
      if (absl::Status s = RejoinLeft(); !s.ok()) return Fail(s);
      if (++progress_.steps % o_.churn == 0) {
        if (absl::Status s = Leave(); !s.ok()) return Fail(s);
        if (absl::Status s = Join(); !s.ok()) return Fail(s);
      }
      if (o_.client_churn > 0 && progress_.steps % o_.client_churn == 0) {
        if (absl::Status s = ReplaceClient(); !s.ok()) return Fail(s);
      }
      if (progress_.steps % 16 == 0) WriteProgress();
    }
    while (!batch_.empty()) {
      if (absl::Status s = Leave(); !s.ok()) return Fail(s);
    }
    WriteProgress();
    LoadWorkerTime& t = time_;
    const double elapsed_s = MillisSince(start) / 1000;
    t.other_s = elapsed_s - (t.select_s + t.step_s + t.check_s + t.ledger_s + t.create_s + t.prefill_s + t.release_s);
    std::string lines = absl::StrFormat("%d %d %.3f %d %.1f %.6f %.6f %.6f %.6f %.6f %.6f %.6f %.6f %d\n", entries,
                                        checked, elapsed_s, progress_.errors, progress_.longest_error_ms, t.select_s,
                                        t.step_s, t.check_s, t.ledger_s, t.create_s, t.prefill_s, t.release_s,
                                        t.other_s, rejoined_);
    for (size_t i = 0; i < step_us.size(); ++i) absl::StrAppendFormat(&lines, "%.1f %.1f\n", step_us[i], wait_us[i]);
    // The parent reads the result; one it cannot read fails the run there, saying so.
    (void)WriteFileTextAtomically(LoadWorkerFile(o_.dir, o_.index, "result"), lines);
    return 0;
  }

 private:
  struct Row {
    SequenceId id;
    uint64_t tokens;
  };

  // A client of its own (a lease, connections, for the GPU path a decode session and
  // its registrations), named for the worker, its process and its generation.
  absl::Status Connect() {
    ClientOptions options;
    options.address = o_.address;
    options.transport = o_.transport;
    if (!o_.token_file.empty()) {
      absl::StatusOr<std::string> token = ReadFileText(o_.token_file, "the tenant's token file");
      if (!token.ok()) return token.status();
      options.token = std::string(absl::StripAsciiWhitespace(*token));
    }
    options.rpc_timeout = o_.rpc_timeout;
    options.fetch_bytes_per_second = o_.fetch_bytes_per_second;
    options.fetch_burst = o_.fetch_burst;
    options.fetch_pacer_file = o_.fetch_pacer_file;
    if (o_.reserve_tokens > 0 && o_.path == "cpu") options.reserve_tokens = o_.reserve_tokens;
    reserve_tokens_ = options.reserve_tokens;
    options.client_id = absl::StrCat("load-worker-", o_.index, "-", getpid());
    if (generation_ > 0) absl::StrAppend(&options.client_id, "-", generation_);
    auto client = Client::Connect(options);
    if (!client.ok()) return client.status();
    owned_client_ = *std::move(client);
    client_ = owned_client_.get();
    if (o_.path == "gpu") {
      // The decode session, the whole step one captured CUDA graph, takes the client.
      RequestShape shape;
      shape.max_batch = static_cast<uint32_t>(o_.requests);
      shape.stored_layers = shape.fetched_layers = o_.layers;
      shape.entry_bytes = kLoadEntryBytes;
      shape.k = o_.k;
      // A request lives `requests` x `churn` steps; the margin covers steps a retried
      // join or release adds.
      shape.max_tokens = std::min<uint64_t>(o_.context + uint64_t(o_.requests) * o_.churn + 4096, 1u << 30);
      shape.reserve_tokens = o_.reserve_tokens;
      auto session = MakeSessionRequests(o_.cache_slots > 0 ? "cxl-gpu-topk-cache" : "cxl-gpu-topk",
                                         std::move(owned_client_), shape, o_.cache_slots);
      if (!session.ok()) return session.status();
      gpu_ = *std::move(session);
      client_ = &gpu_->client();
    }
    ledger_ = LoadLedger(client_->client_id());
    return SaveLedger();
  }

  // The worker as a new one: its requests released, its client (and decode session)
  // closed, then a fresh client with a new id takes new requests. What a fleet that
  // restarts workers asks of the daemon: leases, connections and registrations that
  // come and go, not only sequences. Between steps, outside their clock.
  absl::Status ReplaceClient() {
    while (!batch_.empty()) {
      if (absl::Status s = Leave(); !s.ok()) return s;
    }
    gpu_.reset();
    owned_client_.reset();
    client_ = nullptr;
    ++generation_;
    if (absl::Status s = Connect(); !s.ok()) return s;
    for (int r = 0; r < o_.requests; ++r) {
      if (absl::Status s = Join(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // When a call began, and how many stops (the parent's checks) had been by then.
  struct CallClock {
    Clock::time_point begin = Clock::now();
    uint64_t stops = continued_after_stop.load(std::memory_order_relaxed);
  };
  // `failures` failed attempts ridden out, of a call that began at `call`.
  void CountFailure(const CallClock& call, uint64_t failures) {
    progress_.errors += failures;
    // A call the parent's check stopped us in the middle of took longer by the stop:
    // its time says nothing of its deadline.
    if (continued_after_stop.load(std::memory_order_relaxed) == call.stops) {
      progress_.longest_error_ms = std::max(progress_.longest_error_ms, MillisSince(call.begin));
    }
    WriteProgress();
  }

  // Runs `attempt` until it succeeds, riding out transient failures for up to
  // recover_seconds; each failed attempt is counted with how long it took to fail.
  absl::Status Retrying(const std::function<absl::Status()>& attempt) {
    std::optional<Clock::time_point> failing_since;
    while (true) {
      const CallClock call;
      absl::Status s = attempt();
      if (s.ok() || !Transient(s)) return s;
      CountFailure(call, 1);
      if (!failing_since) failing_since = call.begin;
      if (MillisSince(*failing_since) > o_.recover_seconds * 1000) {
        return absl::Status(s.code(), absl::StrCat(s.message(), " (still failing after ", o_.recover_seconds, " s)"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // A request joins: created, its prompt written (the prefill worker's part, not timed).
  // On the CPU path it is created with room for its first decode steps too, as an engine
  // admitting a request reserves room past the prompt: created with the prompt's room
  // alone, its first WriteStep would wait for an ExtendSequence, the room WriteStep then
  // reserves ahead (2-3 ms on this project's VM, at every request's first step: with a
  // request replaced every 16 steps, the CPU path's p99). The GPU path's decode session
  // reserves a joining row's first room itself.
  absl::Status Join() {
    SequenceSpec spec;
    spec.layers = o_.layers;
    spec.entry_bytes = kLoadEntryBytes;
    spec.tokens = o_.context + (gpu_ == nullptr ? reserve_tokens_ : 0);
    SequenceId id = 0;
    absl::Status created = Retrying([&]() -> absl::Status {
      ledger_.BeginCreate();
      if (absl::Status s = SaveLedger(); !s.ok()) return s;
      absl::StatusOr<SequenceId> made;
      {
        TimeInto timed(time_.create_s);
        made = client_->CreateSequence(spec);
      }
      ledger_.EndCreate(made.ok()                                   ? LoadLedger::CreateOutcome::kCreated
                        : absl::IsResourceExhausted(made.status()) ? LoadLedger::CreateOutcome::kRefused
                                                                    : LoadLedger::CreateOutcome::kAnswerLost);
      if (made.ok()) {
        id = *made;
        ledger_.Created(id, o_.layers, kLoadEntryBytes);
      }
      if (absl::Status s = SaveLedger(); !s.ok()) return s;
      return made.status();
    });
    if (!created.ok()) return created;
    if (absl::Status s = Prefill(id); !s.ok()) return s;
    batch_.push_back(Row{id, o_.context});
    return SaveLedger();
  }

  // A created request's prompt: made, written and committed to the ledger, on the GPU
  // path its region pinned and a session row joined.
  absl::Status Prefill(SequenceId id) {
    TimeInto timed(time_.prefill_s);
    prompt_.resize(o_.layers * o_.context * kLoadEntryBytes);
    const uint64_t layer_bytes = o_.context * kLoadEntryBytes;
    for (uint32_t layer = 0; layer < o_.layers; ++layer) {
      auto entries = absl::MakeSpan(prompt_).subspan(layer * layer_bytes, layer_bytes);
      for (uint64_t t = 0; t < o_.context; ++t) {
        FillEntry(kSeed, id, layer, t, entries.subspan(t * kLoadEntryBytes, kLoadEntryBytes));
      }
      if (absl::Status s = Retrying([&] { return client_->WriteEntries(id, layer, 0, entries); }); !s.ok()) return s;
    }
    if (absl::Status s = ledger_.Committed(id, o_.context, prompt_); !s.ok()) return s;
    if (gpu_ != nullptr) {
      // Pins the request's region for the GPU (once per region and process), then a
      // session row: both between steps, as an engine admits a request.
      // Each may ask the daemon (the region, the room for the first steps): retried as
      // the create was.
      const SequenceId joining[] = {id};
      if (absl::Status s = Retrying([&] { return gpu_->WarmUp(joining); }); !s.ok()) return s;
      if (absl::Status s = Retrying([&] { return gpu_->Join(id, o_.context); }); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // The oldest request leaves.
  absl::Status Leave() {
    const SequenceId id = batch_.front().id;
    if (gpu_ != nullptr) gpu_->Leave(id);
    ledger_.Releasing(id);
    if (absl::Status s = SaveLedger(); !s.ok()) return s;
    // NotFound: an earlier try's answer was lost after the release, and the memory has
    // been reclaimed since; the request is gone either way.
    absl::Status released = Retrying([&] {
      TimeInto timed(time_.release_s);
      return client_->ReleaseSequence(id);
    });
    if (!released.ok() && !absl::IsNotFound(released)) {
      return released;
    }
    ledger_.Released(id);
    batch_.pop_front();
    return SaveLedger();
  }

  // What the indexer hands the step, before its clock starts: every layer's top-k of
  // every request ([layer][request][k]), distinct tokens as a real top-k's are (the
  // residency cache refuses a token twice in a row), -1 past a context shorter than k.
  void SelectTopK() {
    const uint64_t layer_cells = batch_.size() * o_.k;
    indices_.resize(o_.layers * layer_cells);
    for (uint32_t layer = 0; layer < o_.layers; ++layer) {
      for (size_t i = 0; i < batch_.size(); ++i) {
        // A partial Fisher-Yates shuffle of the context's tokens: the first k are a
        // uniform sample without repeats.
        const uint64_t tokens = batch_[i].tokens;
        tokens_.resize(tokens);
        std::iota(tokens_.begin(), tokens_.end(), 0);
        int32_t* row = indices_.data() + layer * layer_cells + i * o_.k;
        for (uint32_t p = 0; p < o_.k; ++p) {
          if (p >= tokens) {
            row[p] = -1;
            continue;
          }
          std::swap(tokens_[p], tokens_[p + rng_() % (tokens - p)]);
          row[p] = tokens_[p];
        }
      }
    }
  }

  // One decode step: every request's new token (every layer), then every layer's top-k
  // (SelectTopK's), on the CPU path (WriteStep, then FetchTopK per layer) or the GPU's
  // (the decode session's captured step). `wait_ms`: the part that waited for the fetch.
  absl::Status Step(uint64_t& entries, double& wait_ms) {
    ids_.clear();
    positions_.clear();
    const uint64_t row_bytes = uint64_t{o_.layers} * kLoadEntryBytes;
    new_entries_.resize(batch_.size() * row_bytes);
    for (size_t i = 0; i < batch_.size(); ++i) {
      ids_.push_back(batch_[i].id);
      positions_.push_back(batch_[i].tokens);
      for (uint32_t layer = 0; layer < o_.layers; ++layer) {
        FillEntry(kSeed, batch_[i].id, layer, batch_[i].tokens,
                  absl::MakeSpan(new_entries_).subspan(i * row_bytes + layer * kLoadEntryBytes, kLoadEntryBytes));
      }
    }
    const uint64_t layer_cells = batch_.size() * o_.k;
    if (gpu_ != nullptr) {
      if (absl::Status s = GpuStep(wait_ms); !s.ok()) return s;
    } else {
      if (absl::Status s = Retrying([&] { return client_->WriteStep(ids_, positions_, new_entries_); }); !s.ok()) {
        return s;
      }
      out_.resize(layer_cells * kLoadEntryBytes);
      const auto fetching = Clock::now();
      for (uint32_t layer = 0; layer < o_.layers; ++layer) {
        const auto layer_indices = absl::MakeConstSpan(indices_).subspan(layer * layer_cells, layer_cells);
        if (absl::Status s = Retrying([&] {
              return client_->FetchTopK(layer, ids_, layer_indices, absl::MakeSpan(out_));
            });
            !s.ok()) {
          return s;
        }
      }
      wait_ms = MillisSince(fetching);
    }
    for (size_t i = 0; i < batch_.size(); ++i) {
      if (left_step_.contains(batch_[i].id)) continue;  // its token was not written
      ++batch_[i].tokens;
      auto row = absl::MakeConstSpan(new_entries_).subspan(i * row_bytes, row_bytes);
      if (absl::Status s = ledger_.Committed(batch_[i].id, 1, row); !s.ok()) return s;
      entries += o_.layers * std::min<uint64_t>(o_.k, batch_[i].tokens - 1);  // no padding
    }
    return absl::OkStatus();
  }

  // The GPU path's step: the decode session's, every row in one captured graph. Rows
  // that left it for want of room (their reservation failed: the daemon away, the pool
  // full) are counted as failed calls and kept in left_step_, to join again after the
  // step; the others stepped. An error of the step as a whole (a CUDA failure, the
  // daemon refusing to fence this client's writes) stepped no row and ends the worker.
  absl::Status GpuStep(double& wait_ms) {
    step_rows_.clear();
    for (const Row& row : batch_) step_rows_.push_back(StepRow{row.id, row.tokens});
    left_step_.clear();
    const CallClock call;
    absl::Status stepped = gpu_->Step(step_rows_, new_entries_, indices_);
    if (!stepped.ok() && gpu_->LastStepFailures().empty()) return stepped;
    const std::optional<double> waited = gpu_->LastStepWaitSeconds();
    wait_ms = waited ? *waited * 1000 : MillisSince(call.begin);
    for (const StepFailure& f : gpu_->LastStepFailures()) {
      if (!f.left || !DecodeSession::MayJoinAgain(f.status)) return f.status;
      left_step_.insert(f.id);
    }
    if (!left_step_.empty()) CountFailure(call, left_step_.size());
    return absl::OkStatus();
  }

  // The rows that left the last step join the session again, where they were: their
  // sequences hold every token committed so far. Between steps; retried as a join is.
  absl::Status RejoinLeft() {
    if (left_step_.empty()) return absl::OkStatus();
    TimeInto timed(time_.prefill_s);
    for (const Row& row : batch_) {
      if (!left_step_.contains(row.id)) continue;
      if (absl::Status s = Retrying([&] { return gpu_->Join(row.id, row.tokens); }); !s.ok()) return s;
      ++rejoined_;
    }
    left_step_.clear();
    return absl::OkStatus();
  }

  // The last layer's delivery, two entries a request, against the pattern (after the
  // step's clock: the GPU path reads them back from HBM).
  absl::Status CheckDelivered(uint64_t& checked) {
    const uint64_t layer_cells = batch_.size() * o_.k;
    const int32_t* last = indices_.data() + (o_.layers - 1) * layer_cells;
    std::vector<std::byte> expected(kLoadEntryBytes), got(kLoadEntryBytes);
    for (size_t i = 0; i < batch_.size(); ++i) {
      if (left_step_.contains(batch_[i].id)) continue;  // nothing was delivered for it
      for (int c = 0; c < 2; ++c) {
        const uint32_t position = static_cast<uint32_t>(rng_() % std::min<uint64_t>(o_.k, batch_[i].tokens - 1));
        const size_t at = i * o_.k + position;
        absl::Span<const std::byte> delivered;
        if (gpu_ != nullptr) {
          if (absl::Status s = gpu_->ReadEntry(static_cast<uint32_t>(i), position, absl::MakeSpan(got)); !s.ok()) {
            return s;
          }
          delivered = got;
        } else {
          delivered = absl::MakeConstSpan(out_).subspan(at * kLoadEntryBytes, kLoadEntryBytes);
        }
        FillEntry(kSeed, batch_[i].id, o_.layers - 1, last[at], absl::MakeSpan(expected));
        if (std::memcmp(delivered.data(), expected.data(), kLoadEntryBytes) != 0) {
          return absl::DataLossError(absl::StrCat("worker ", o_.index, ": sequence ", batch_[i].id, " token ",
                                                  last[at], " differs from what was written"));
        }
        ++checked;
      }
    }
    return absl::OkStatus();
  }

  absl::Status SaveLedger() {
    TimeInto timed(time_.ledger_s);
    return ledger_.Save(LoadWorkerFile(o_.dir, o_.index, "ledger"));
  }
  void WriteProgress() {
    (void)WriteFileTextAtomically(LoadWorkerFile(o_.dir, o_.index, "progress"),
                        absl::StrFormat("%d %d %.1f\n", progress_.steps, progress_.errors, progress_.longest_error_ms));
  }
  bool StopRequested() const { return access(LoadStopFile(o_.dir).c_str(), F_OK) == 0; }
  int Fail(const absl::Status& s) {
    std::fprintf(stderr, "sparsepool_load worker %d: %s\n", o_.index, s.ToString().c_str());
    return 1;
  }

  const LoadWorkerOptions o_;
  uint64_t reserve_tokens_ = 0;  // the client's ClientOptions::reserve_tokens (Connect)
  std::mt19937_64 rng_;
  std::unique_ptr<Client> owned_client_;  // the CPU path's; the GPU path's session owns it
  Client* client_ = nullptr;
  std::unique_ptr<RequestStrategy> gpu_;  // --path=gpu: the decode session
  int generation_ = 0;  // clients replaced so far (--client_churn)
  std::vector<StepRow> step_rows_;
  absl::flat_hash_set<SequenceId> left_step_;  // GPU path: requests that left the last step
  uint64_t rejoined_ = 0;                       // GPU path: joins of requests that left a step
  std::vector<int32_t> tokens_;  // SelectTopK's scratch
  LoadLedger ledger_;
  LoadWorkerProgress progress_;
  LoadWorkerTime time_;
  std::deque<Row> batch_;
  std::vector<SequenceId> ids_;
  std::vector<uint64_t> positions_;
  std::vector<std::byte> prompt_;
  std::vector<std::byte> new_entries_;
  std::vector<int32_t> indices_;
  std::vector<std::byte> out_;
};

}  // namespace

std::string LoadWorkerDir(const std::string& dir, int worker) { return absl::StrCat(dir, "/worker-", worker); }

std::string LoadWorkerFile(const std::string& dir, int worker, const char* kind) {
  return absl::StrCat(LoadWorkerDir(dir, worker), "/", kind);
}

std::string LoadStopFile(const std::string& dir) { return dir + "/stop"; }

int RunLoadWorker(const LoadWorkerOptions& options) {
  struct sigaction on_continue {};
  on_continue.sa_handler = CountContinue;
  on_continue.sa_flags = SA_RESTART;
  sigemptyset(&on_continue.sa_mask);
  sigaction(SIGCONT, &on_continue, nullptr);
  return Worker(options).Run();
}

bool ReadLoadWorkerProgress(const std::string& path, LoadWorkerProgress* out) {
  std::ifstream in(path);
  return static_cast<bool>(in >> out->steps >> out->errors >> out->longest_error_ms);
}

LoadWorkerProgress TotalLoadProgress(const std::string& dir, int workers) {
  LoadWorkerProgress total;
  for (int w = 0; w < workers; ++w) {
    LoadWorkerProgress p;
    if (!ReadLoadWorkerProgress(LoadWorkerFile(dir, w, "progress"), &p)) continue;
    total.steps += p.steps;
    total.errors += p.errors;
    total.longest_error_ms = std::max(total.longest_error_ms, p.longest_error_ms);
  }
  return total;
}

absl::StatusOr<LoadWorkerResult> ReadLoadWorkerResult(const std::string& path) {
  std::ifstream in(path);
  LoadWorkerResult r;
  LoadWorkerTime& t = r.time;
  if (!(in >> r.entries >> r.checked >> r.elapsed_s >> r.progress.errors >> r.progress.longest_error_ms >>
        t.select_s >> t.step_s >> t.check_s >> t.ledger_s >> t.create_s >> t.prefill_s >> t.release_s >>
        t.other_s >> r.rejoined)) {
    return absl::DataLossError(absl::StrCat("no worker result in ", path));
  }
  for (double us, wait; in >> us >> wait;) {
    r.step_us.push_back(us);
    r.wait_us.push_back(wait);
  }
  r.progress.steps = r.step_us.size();
  return r;
}

void MergeLoadResult(const LoadWorkerResult& r, LoadWorkerResult& into) {
  into.entries += r.entries;
  into.checked += r.checked;
  into.rejoined += r.rejoined;
  into.progress.errors += r.progress.errors;
  into.progress.longest_error_ms = std::max(into.progress.longest_error_ms, r.progress.longest_error_ms);
  into.elapsed_s = std::max(into.elapsed_s, r.elapsed_s);
  into.step_us.insert(into.step_us.end(), r.step_us.begin(), r.step_us.end());
  into.wait_us.insert(into.wait_us.end(), r.wait_us.begin(), r.wait_us.end());
  LoadWorkerTime& t = into.time;
  t.select_s += r.time.select_s;
  t.step_s += r.time.step_s;
  t.check_s += r.time.check_s;
  t.ledger_s += r.time.ledger_s;
  t.create_s += r.time.create_s;
  t.prefill_s += r.time.prefill_s;
  t.release_s += r.time.release_s;
  t.other_s += r.time.other_s;
}

}  // namespace sparsepool::bench

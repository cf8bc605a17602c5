// sparsepool-load: many decode streams at once against one daemon (issue 14, first
// part). It starts --workers decode-worker processes, each with a client (and lease) of
// its own and --requests requests of its own, running decode steps as an engine would:
// append the new token of every request (every layer, one WriteStep), then fetch the
// top-k of every layer for the batch; every --churn steps the oldest request leaves
// (released) and a new one joins (created and its prompt written, outside the timed
// step). Two entries per row and step are checked against what was written. At the
// end: per-step latency per worker and over all (p50, p99, p99.9, max), steps and
// entries per second, bytes; a markdown table on stdout, results.md and results.csv in
// --out, a progress line on stderr while it runs.
//
//   sparsepool_load --address=HOST:PORT [--workers=8] [--seconds=10] [--requests=4]
//       [--context=8192] [--layers=4] [--k=2048] [--churn=16] [--transport=cxl|ucx]
//       [--out=DIR]
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_report.h"
#include "bench/entry_pattern.h"
#include "bench/flag.h"
#include "bench/median.h"
#include "bench/progress_line.h"
#include "client/sparsepool_client.h"
#include "common/units.h"

extern char** environ;

namespace sparsepool::bench {
namespace {

constexpr uint32_t kEntry = 656;
constexpr uint64_t kSeed = 0x10ad;

struct Options {
  std::string address = "127.0.0.1:7070";
  int workers = 8;
  double seconds = 10;
  int requests = 4;
  uint64_t context = 8192;
  uint32_t layers = 4;
  uint32_t k = 2048;
  int churn = 16;
  std::string transport = "cxl";
  std::string out = "sparsepool-load-out";
  int worker_index = -1;  // set in the worker processes
};

std::string WorkerFile(const Options& o, int worker, const char* kind) {
  return absl::StrCat(o.out, "/worker-", worker, ".", kind);
}

// ---- A worker: one decode stream of `requests` requests ----

class Worker {
 public:
  explicit Worker(const Options& o) : o_(o), rng_(kSeed + o.worker_index) {}

  int Run() {
    ClientOptions options;
    options.address = o_.address;
    options.transport = o_.transport;
    auto client = Client::Connect(options);
    if (!client.ok()) return Fail(client.status());
    client_ = *std::move(client);
    for (int r = 0; r < o_.requests; ++r) {
      if (absl::Status s = Join(); !s.ok()) return Fail(s);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o_.seconds);
    std::vector<double> step_us;
    uint64_t steps = 0, entries = 0, checked = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto begin = std::chrono::steady_clock::now();
      if (absl::Status s = Step(entries, checked); !s.ok()) return Fail(s);
      step_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin).count());
      if (++steps % o_.churn == 0) {
        if (absl::Status s = client_->ReleaseSequence(batch_.front().id); !s.ok()) return Fail(s);
        batch_.pop_front();
        if (absl::Status s = Join(); !s.ok()) return Fail(s);
      }
      if (steps % 16 == 0) WriteText(WorkerFile(o_, o_.worker_index, "progress"), absl::StrCat(steps, "\n"));
    }
    for (const Row& row : batch_) (void)client_->ReleaseSequence(row.id);
    std::string lines = absl::StrCat(entries, " ", checked, "\n");
    for (double us : step_us) absl::StrAppendFormat(&lines, "%.1f\n", us);
    WriteText(WorkerFile(o_, o_.worker_index, "result"), lines);
    return 0;
  }

 private:
  struct Row {
    SequenceId id;
    uint64_t tokens;
  };

  // A request joins: its prompt written (the prefill worker's part, not timed).
  absl::Status Join() {
    SequenceSpec spec;
    spec.layers = o_.layers;
    spec.entry_bytes = kEntry;
    spec.tokens = o_.context;
    auto id = client_->CreateSequence(spec);
    if (!id.ok()) return id.status();
    std::vector<std::byte> entries(o_.context * kEntry);
    for (uint32_t layer = 0; layer < o_.layers; ++layer) {
      for (uint64_t t = 0; t < o_.context; ++t) {
        FillEntry(kSeed, *id, layer, t, absl::MakeSpan(entries).subspan(t * kEntry, kEntry));
      }
      if (absl::Status s = client_->WriteEntries(*id, layer, 0, entries); !s.ok()) return s;
    }
    batch_.push_back(Row{*id, o_.context});
    return absl::OkStatus();
  }

  // One decode step: every request's new token (every layer), then every layer's top-k.
  absl::Status Step(uint64_t& entries, uint64_t& checked) {
    ids_.clear();
    positions_.clear();
    new_entries_.resize(batch_.size() * o_.layers * kEntry);
    for (size_t i = 0; i < batch_.size(); ++i) {
      ids_.push_back(batch_[i].id);
      positions_.push_back(batch_[i].tokens);
      for (uint32_t layer = 0; layer < o_.layers; ++layer) {
        FillEntry(kSeed, batch_[i].id, layer, batch_[i].tokens,
                  absl::MakeSpan(new_entries_).subspan((i * o_.layers + layer) * kEntry, kEntry));
      }
    }
    if (absl::Status s = client_->WriteStep(ids_, positions_, new_entries_); !s.ok()) return s;
    for (Row& row : batch_) ++row.tokens;
    indices_.resize(batch_.size() * o_.k);
    out_.resize(indices_.size() * kEntry);
    for (uint32_t layer = 0; layer < o_.layers; ++layer) {
      for (size_t i = 0; i < batch_.size(); ++i) {
        for (uint32_t p = 0; p < o_.k; ++p) indices_[i * o_.k + p] = static_cast<int32_t>(rng_() % batch_[i].tokens);
      }
      if (absl::Status s = client_->FetchTopK(layer, ids_, indices_, absl::MakeSpan(out_)); !s.ok()) return s;
      entries += indices_.size();
    }
    // The last layer's delivery, two entries a row, against the pattern.
    std::vector<std::byte> expected(kEntry);
    for (size_t i = 0; i < batch_.size(); ++i) {
      for (int c = 0; c < 2; ++c) {
        const size_t at = i * o_.k + rng_() % o_.k;
        FillEntry(kSeed, batch_[i].id, o_.layers - 1, indices_[at], absl::MakeSpan(expected));
        if (std::memcmp(out_.data() + at * kEntry, expected.data(), kEntry) != 0) {
          return absl::DataLossError(absl::StrCat("worker ", o_.worker_index, ": sequence ", batch_[i].id, " token ",
                                                  indices_[at], " differs from what was written"));
        }
        ++checked;
      }
    }
    return absl::OkStatus();
  }

  static void WriteText(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << text;
    std::rename(tmp.c_str(), path.c_str());
  }
  int Fail(const absl::Status& s) {
    std::fprintf(stderr, "sparsepool_load worker %d: %s\n", o_.worker_index, s.ToString().c_str());
    return 1;
  }

  const Options o_;
  std::mt19937_64 rng_;
  std::unique_ptr<Client> client_;
  std::deque<Row> batch_;
  std::vector<SequenceId> ids_;
  std::vector<uint64_t> positions_;
  std::vector<std::byte> new_entries_;
  std::vector<int32_t> indices_;
  std::vector<std::byte> out_;
};

// ---- The parent: starts the workers, shows progress, sums up ----

struct WorkerResult {
  std::vector<double> step_us;
  uint64_t entries = 0, checked = 0;
};

std::string Row(const std::string& name, const WorkerResult& r, double seconds, uint64_t entry_bytes) {
  return absl::StrFormat("| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f M | %s/s | %d |\n", name,
                         r.step_us.size(), Percentile(r.step_us, 0.5), Percentile(r.step_us, 0.99),
                         Percentile(r.step_us, 0.999), r.step_us.empty() ? 0 : *std::max_element(r.step_us.begin(), r.step_us.end()),
                         r.step_us.size() / seconds, r.entries / seconds / 1e6,
                         FormatBytes(static_cast<uint64_t>(r.entries * entry_bytes / seconds)), r.checked);
}

int RunParent(const Options& o, int argc, char** argv) {
  if (mkdir(o.out.c_str(), 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "sparsepool_load: cannot make %s\n", o.out.c_str());
    return 1;
  }
  std::vector<pid_t> pids;
  for (int w = 0; w < o.workers; ++w) {
    std::remove(WorkerFile(o, w, "progress").c_str());
    std::remove(WorkerFile(o, w, "result").c_str());
    std::vector<std::string> args(argv, argv + argc);
    args.push_back(absl::StrCat("--worker_index=", w));
    std::vector<char*> raw;
    for (std::string& a : args) raw.push_back(a.data());
    raw.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, raw.data(), environ) != 0) {
      std::fprintf(stderr, "sparsepool_load: cannot start worker %d\n", w);
      for (pid_t p : pids) kill(p, SIGKILL);
      return 1;
    }
    pids.push_back(pid);
  }
  ProgressLine progress;
  int running = o.workers, failed = 0;
  std::vector<bool> done(o.workers, false);
  while (running > 0) {
    for (int w = 0; w < o.workers; ++w) {
      if (done[w]) continue;
      int status = 0;
      if (waitpid(pids[w], &status, WNOHANG) == pids[w]) {
        done[w] = true;
        --running;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
      }
    }
    uint64_t steps = 0;
    for (int w = 0; w < o.workers; ++w) {
      std::ifstream in(WorkerFile(o, w, "progress"));
      uint64_t n = 0;
      if (in >> n) steps += n;
    }
    progress.Show("load", absl::StrCat(o.workers - running, "/", o.workers, " workers done, ", steps, " steps"));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (failed > 0) {
    progress.Done("load", absl::StrCat(failed, " worker(s) FAILED"));
    return 1;
  }
  const uint64_t entry_bytes = kEntry;
  WorkerResult all;
  std::vector<WorkerResult> results(o.workers);
  for (int w = 0; w < o.workers; ++w) {
    std::ifstream in(WorkerFile(o, w, "result"));
    in >> results[w].entries >> results[w].checked;
    for (double us; in >> us;) results[w].step_us.push_back(us);
    all.entries += results[w].entries;
    all.checked += results[w].checked;
    all.step_us.insert(all.step_us.end(), results[w].step_us.begin(), results[w].step_us.end());
  }
  progress.Done("load", absl::StrCat(all.step_us.size(), " steps, ", all.checked, " entries checked"));
  const std::string header = absl::StrFormat(
      "sparsepool-load: %d workers, each a client with %d requests of %d tokens (%d layers, top-%d of %d-byte "
      "entries, one request replaced every %d steps), %s transport, %.0f s",
      o.workers, o.requests, o.context, o.layers, o.k, kEntry, o.churn, o.transport, o.seconds);
  std::string table =
      "| worker | steps | step p50 (us) | p99 | p99.9 | max | steps/s | entries/s | fetched | entries checked |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n";
  std::string csv = "worker,steps,p50_us,p99_us,p999_us,max_us,steps_per_s,entries_per_s,checked\n";
  for (int w = 0; w < o.workers; ++w) {
    table += Row(absl::StrCat(w), results[w], o.seconds, entry_bytes);
  }
  table += Row("all", all, o.seconds, entry_bytes);
  for (int w = 0; w <= o.workers; ++w) {
    const WorkerResult& r = w < o.workers ? results[w] : all;
    absl::StrAppendFormat(&csv, "%s,%d,%.1f,%.1f,%.1f,%.1f,%.2f,%.0f,%d\n", w < o.workers ? absl::StrCat(w) : "all",
                          r.step_us.size(), Percentile(r.step_us, 0.5), Percentile(r.step_us, 0.99),
                          Percentile(r.step_us, 0.999),
                          r.step_us.empty() ? 0 : *std::max_element(r.step_us.begin(), r.step_us.end()),
                          r.step_us.size() / o.seconds, r.entries / o.seconds, r.checked);
  }
  std::printf("%s\n\n%s", header.c_str(), table.c_str());
  for (const auto& [file, text] : {std::pair<std::string, std::string>{"results.md", header + "\n\n" + table},
                                   {"results.csv", csv}}) {
    if (absl::Status s = WriteFile(o.out + "/" + file, text); !s.ok()) {
      std::fprintf(stderr, "sparsepool_load: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  return 0;
}

int Run(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const Flag f = SplitFlag(argv[i]);
    bool ok = true;
    if (f.key == "--address") o.address = f.value;
    else if (f.key == "--out") o.out = f.value;
    else if (f.key == "--transport") ok = (o.transport = f.value) == "cxl" || o.transport == "ucx";
    else if (f.key == "--workers") ok = absl::SimpleAtoi(f.value, &o.workers) && o.workers > 0 && o.workers <= 1024;
    else if (f.key == "--seconds") ok = absl::SimpleAtod(f.value, &o.seconds) && o.seconds > 0;
    else if (f.key == "--requests") ok = absl::SimpleAtoi(f.value, &o.requests) && o.requests > 0;
    else if (f.key == "--context") ok = absl::SimpleAtoi(f.value, &o.context) && o.context > 0;
    else if (f.key == "--layers") ok = absl::SimpleAtoi(f.value, &o.layers) && o.layers > 0;
    else if (f.key == "--k") ok = absl::SimpleAtoi(f.value, &o.k) && o.k > 0;
    else if (f.key == "--churn") ok = absl::SimpleAtoi(f.value, &o.churn) && o.churn > 0;
    else if (f.key == "--worker_index") ok = absl::SimpleAtoi(f.value, &o.worker_index) && o.worker_index >= 0;
    else ok = false;
    if (!ok) {
      std::fprintf(stderr,
                   "sparsepool_load: bad argument %s\nusage: sparsepool_load --address=HOST:PORT [--workers=8] "
                   "[--seconds=10] [--requests=4] [--context=8192] [--layers=4] [--k=2048] [--churn=16] "
                   "[--transport=cxl|ucx] [--out=DIR]\n",
                   argv[i]);
      return 2;
    }
  }
  if (o.worker_index >= 0) return Worker(o).Run();
  return RunParent(o, argc, argv);
}

}  // namespace
}  // namespace sparsepool::bench

int main(int argc, char** argv) { return sparsepool::bench::Run(argc, argv); }

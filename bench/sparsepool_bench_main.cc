// sparsepool-bench: the RDMA-versus-CXL comparison (issue 5). For each context length
// and batch size, decodes a batch of DeepSeek-V3.2-shaped requests against a running
// sparsepoold with each fetch strategy, and reports per-step fetch latency (p50, p99),
// bytes crossing the link, entries and decode steps per second, as a markdown table on
// stdout and results.csv, results.md and PNG plots in --out.
//
//   sparsepool_bench --address=HOST:PORT [--preset=quick|full] [--model=FILE]
//       [--contexts=8192,32768] [--batches=1,4] [--strategies=a,b,...] [--steps=N]
//       [--warmup=N] [--sampled_layers=N] [--stored_layers=N] [--overlap=0.8]
//       [--cache_capacity=4096] [--trace=FILE] [--seed=N] [--out=DIR] [--rdma_transport=ucx|verbs]
//       [--copy_threads=N (the cxl-cpu strategies' ClientOptions::copy_threads)]
//       [--nic_gbs=25 --nic_mreads=50 --nic_latency_us=3 (the NIC the rdma-* rows are
//        also modelled on, printed after the measured table and labelled as modelled)]
//
// The RDMA strategies need the daemon started with --ucx=true (UCX_TLS picks the
// wire), or --verbs=true with --rdma_transport=verbs; the GPU strategies need a CUDA
// device. Strategies whose transport or device is
// missing are skipped with the reason.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/bench_report.h"
#include "bench/bench_runner.h"
#include "bench/flag.h"
#include "bench/gpu_strategies.h"
#include "bench/host_strategies.h"
#include "bench/model_geometry.h"
#include "bench/prefix_pull.h"
#include "bench/progress_line.h"
#include "bench/trace_file.h"
#include "common/units.h"

namespace sparsepool::bench {
namespace {

// The baseline first (each cell's "vs first" column compares with it): the RDMA pool as
// dense-attention pools run it, the prefix pulled once at admission. rdma-full-prefix
// (the whole prefix again at every step and layer) is a degenerate case, run only when
// asked for.
constexpr const char* kAllStrategies[] = {"rdma-prefix-pull", "rdma-topk",    "cxl-cpu-topk",
                                          "cxl-cpu-topk-cache", "cxl-gpu-topk", "cxl-gpu-topk-cache",
                                          "hbm-only",         "rdma-full-prefix"};
constexpr const char* kDefaultStrategies[] = {"rdma-prefix-pull", "rdma-topk",          "cxl-cpu-topk",
                                              "cxl-cpu-topk-cache", "cxl-gpu-topk",       "cxl-gpu-topk-cache",
                                              "hbm-only"};

struct Options {
  std::string address = "127.0.0.1:7070";
  std::string model_file;
  std::string trace_file;
  std::string out = "sparsepool-bench-out";
  std::vector<uint64_t> contexts;
  std::vector<uint32_t> batches;
  std::vector<std::string> strategies{std::begin(kDefaultStrategies), std::end(kDefaultStrategies)};
  CellPlan plan;
  uint32_t cache_capacity = 4096;
  std::string rdma_transport = "ucx";  // or "verbs", for the rdma-* strategies
  int copy_threads = 1;              // for the CPU gather of the cxl-* strategies
  NicParams nic;                     // the NIC the rdma-* rows are also modelled on
};

// quick: the README's one-minute comparison; full: the whole sweep.
bool ApplyPreset(const std::string& name, Options& o) {
  if (name == "quick") {
    o.contexts = {8192, 32768};
    o.batches = {1, 4};
    o.plan.warmup_steps = 2;
    o.plan.steps = 8;
    o.plan.sampled_layers = 4;
    return true;
  }
  if (name == "full") {
    o.contexts = {8192, 16384, 32768, 65536, 131072};
    o.batches = {1, 4, 16};
    o.plan.warmup_steps = 2;
    o.plan.steps = 16;
    o.plan.sampled_layers = 8;
    return true;
  }
  return false;
}

int Fail(const absl::Status& status, int exit_code) {
  std::fprintf(stderr, "sparsepool_bench: %s\n", status.ToString().c_str());
  return exit_code;
}

int Usage(const std::string& arg) {
  std::fprintf(stderr,
               "sparsepool_bench: bad argument %s\n"
               "usage: sparsepool_bench --address=HOST:PORT [--preset=quick|full] [--model=FILE]\n"
               "  [--contexts=N,...] [--batches=N,...] [--strategies=NAME,...] [--steps=N] [--warmup=N]\n"
               "  [--sampled_layers=N (0: all)] [--stored_layers=N] [--overlap=F] [--cache_capacity=N]\n"
               "  [--trace=FILE] [--seed=N] [--out=DIR] [--rdma_transport=ucx|verbs] [--copy_threads=N]\n"
               "strategies: %s\n",
               arg.c_str(), absl::StrJoin(kAllStrategies, ", ").c_str());
  return 2;
}

absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeStrategy(const std::string& name, const Options& o) {
  ClientOptions client_options;
  client_options.address = o.address;
  client_options.transport = absl::StartsWith(name, "rdma-") ? o.rdma_transport : "cxl";
  client_options.copy_threads = o.copy_threads;
  auto client = Client::Connect(client_options);
  if (!client.ok()) return client.status();
  if (name == "rdma-prefix-pull") return MakePrefixPullFetch(name, *std::move(client));
  if (name == "rdma-full-prefix") return MakeClientFetch(name, *std::move(client), /*full_prefix=*/true);
  if (name == "rdma-topk" || name == "cxl-cpu-topk") return MakeClientFetch(name, *std::move(client), false);
  if (name == "cxl-cpu-topk-cache") return MakeHostCacheFetch(name, *std::move(client), o.cache_capacity);
  if (name == "cxl-gpu-topk") return MakeGpuFetch(name, *std::move(client));
  if (name == "cxl-gpu-topk-cache") return MakeGpuCacheFetch(name, *std::move(client), o.cache_capacity);
  if (name == "hbm-only") return MakeHbmOnlyFetch(name, *std::move(client));
  return absl::InvalidArgumentError(absl::StrCat("unknown strategy \"", name, "\""));
}


int Run(int argc, char** argv) {
  Options o;
  ApplyPreset("quick", o);
  for (int i = 1; i < argc; ++i) {  // the preset first, so that other flags override it
    const Flag flag = SplitFlag(argv[i]);
    if (flag.key == "--preset" && !ApplyPreset(flag.value, o)) return Usage(argv[i]);
  }
  for (int i = 1; i < argc; ++i) {
    const Flag flag = SplitFlag(argv[i]);
    const std::string& v = flag.value;
    bool ok = true;
    if (flag.key == "--preset") {
    } else if (flag.key == "--address") {
      o.address = v;
    } else if (flag.key == "--model") {
      o.model_file = v;
    } else if (flag.key == "--trace") {
      o.trace_file = v;
    } else if (flag.key == "--out") {
      ok = !v.empty();
      o.out = v;
    } else if (flag.key == "--contexts") {
      ok = bench::ParsePositiveList(v, o.contexts);
    } else if (flag.key == "--batches") {
      ok = bench::ParsePositiveList(v, o.batches);
    } else if (flag.key == "--strategies") {
      o.strategies = absl::StrSplit(v, ',');
    } else if (flag.key == "--steps") {
      ok = absl::SimpleAtoi(v, &o.plan.steps) && o.plan.steps > 0;
    } else if (flag.key == "--warmup") {
      ok = absl::SimpleAtoi(v, &o.plan.warmup_steps);
    } else if (flag.key == "--sampled_layers") {
      ok = absl::SimpleAtoi(v, &o.plan.sampled_layers);
    } else if (flag.key == "--stored_layers") {
      ok = absl::SimpleAtoi(v, &o.plan.stored_layers) && o.plan.stored_layers > 0;
    } else if (flag.key == "--overlap") {
      ok = absl::SimpleAtod(v, &o.plan.overlap) && o.plan.overlap >= 0 && o.plan.overlap <= 1;
    } else if (flag.key == "--cache_capacity") {
      ok = absl::SimpleAtoi(v, &o.cache_capacity) && o.cache_capacity > 0;
    } else if (flag.key == "--rdma_transport") {
      ok = v == "ucx" || v == "verbs";
      o.rdma_transport = v;
    } else if (flag.key == "--copy_threads") {
      ok = absl::SimpleAtoi(v, &o.copy_threads) && o.copy_threads >= 1 &&
           o.copy_threads <= kMaxCopyThreads;
    } else if (flag.key == "--seed") {
      ok = absl::SimpleAtoi(v, &o.plan.seed);
    } else if (flag.key == "--nic_gbs") {
      ok = absl::SimpleAtod(v, &o.nic.bytes_per_s) && o.nic.bytes_per_s > 0;
      o.nic.bytes_per_s *= 1e9;
    } else if (flag.key == "--nic_mreads") {
      ok = absl::SimpleAtod(v, &o.nic.messages_per_s) && o.nic.messages_per_s > 0;
      o.nic.messages_per_s *= 1e6;
    } else if (flag.key == "--nic_latency_us") {
      ok = absl::SimpleAtod(v, &o.nic.latency_s) && o.nic.latency_s >= 0;
      o.nic.latency_s *= 1e-6;
    } else {
      ok = false;
    }
    if (!ok) return Usage(argv[i]);
  }
  for (const std::string& name : o.strategies) {
    if (std::find(std::begin(kAllStrategies), std::end(kAllStrategies), name) == std::end(kAllStrategies)) {
      return Usage(absl::StrCat("--strategies: unknown strategy \"", name, "\""));
    }
  }
  if (!o.model_file.empty()) {
    auto model = ReadModelGeometry(o.model_file);
    if (!model.ok()) return Fail(model.status(), 2);
    o.plan.model = *model;
  }
  Trace trace;
  if (!o.trace_file.empty()) {
    auto read = ReadTraceFile(o.trace_file);
    if (!read.ok()) return Fail(read.status(), 2);
    trace = *std::move(read);
    if (trace.layers > o.plan.model.layers || trace.steps() < o.plan.warmup_steps + 1) {
      std::fprintf(stderr, "sparsepool_bench: trace %s has %u layers and %zu steps; the model has %u layers and the "
                   "run needs more than %u steps\n", o.trace_file.c_str(), trace.layers, trace.steps(),
                   o.plan.model.layers, o.plan.warmup_steps);
      return 2;
    }
    o.plan.trace = &trace;
    o.plan.steps = static_cast<uint32_t>(trace.steps()) - o.plan.warmup_steps;
    o.contexts = {trace.context[0]};
  }

  ClientOptions prefill_options;
  prefill_options.address = o.address;
  auto prefill = Client::Connect(prefill_options);
  if (!prefill.ok()) return Fail(prefill.status(), 1);

  const ModelGeometry& m = o.plan.model;
  const uint32_t fetched = o.plan.trace != nullptr ? o.plan.trace->layers
                           : o.plan.sampled_layers == 0 ? m.layers
                                                        : std::min(o.plan.sampled_layers, m.layers);
  const std::string header = absl::StrCat(
      "sparsepool-bench: ", m.name, " (", m.layers, " layers, ", m.entry_bytes, "-byte entries, top-",
      o.plan.trace != nullptr ? o.plan.trace->k : m.top_k, ", page ", m.page_tokens, "); ",
      o.plan.trace != nullptr ? absl::StrCat("trace ", o.trace_file)
                              : absl::StrCat("generated selections, overlap ", o.plan.overlap),
      "; ", o.plan.steps, " timed steps after ", o.plan.warmup_steps, " warm-up; ",
      fetched == m.layers ? std::string("every layer fetched")
                          : absl::StrCat(fetched, " of ", m.layers, " layers fetched per step, step figures scaled by ",
                                         absl::StrFormat("%.2f", double(m.layers) / fetched)),
      "; residency cache ", o.cache_capacity, " slots per request-layer; CPU gather on ",
      o.copy_threads, o.copy_threads == 1 ? " thread" : " threads");
  std::printf("%s\n", header.c_str());
  std::fflush(stdout);

  std::vector<std::unique_ptr<FetchStrategy>> strategies;
  for (const std::string& name : o.strategies) {
    auto strategy = MakeStrategy(name, o);
    if (!strategy.ok()) {
      std::fprintf(stderr, "skipping %s: %s\n", name.c_str(), std::string(strategy.status().message()).c_str());
      continue;
    }
    strategies.push_back(*std::move(strategy));
  }

  ProgressLine progress;
  std::vector<CellResult> results;
  std::vector<bool> skipped(strategies.size(), false);
  // One small untimed cell per strategy first: what a process does once (CUDA context,
  // registering the region with the GPU, UCX endpoints) stays out of the figures, which
  // are a warm worker's, TTFT included.
  for (size_t s = 0; s < strategies.size(); ++s) {
    CellPlan warm = o.plan;
    warm.context = std::min<uint64_t>(4096, *std::min_element(o.contexts.begin(), o.contexts.end()));
    warm.batch = 1;
    warm.warmup_steps = 1;
    warm.steps = 1;
    const std::string cell = absl::StrCat(strategies[s]->name(), " warm-up");
    auto result = RunCell(warm, **prefill, *strategies[s], [&](const std::string& what) { progress.Show(cell, what); });
    if (!result.ok()) {
      if (!absl::IsFailedPrecondition(result.status())) return Fail(result.status(), 1);
      skipped[s] = true;  // transport or device missing
      progress.Done(cell, absl::StrCat("skipped: ", result.status().message()));
    }
  }
  for (uint64_t context : o.contexts) {
    for (uint32_t batch : o.batches) {
      CellPlan plan = o.plan;
      plan.context = context;
      plan.batch = batch;
      for (size_t s = 0; s < strategies.size(); ++s) {
        if (skipped[s]) continue;
        FetchStrategy& strategy = *strategies[s];
        const std::string cell = absl::StrCat(context / 1024, "K x ", batch, " ", strategy.name());
        auto result = RunCell(plan, **prefill, strategy, [&](const std::string& what) { progress.Show(cell, what); });
        if (!result.ok()) {
          if (absl::IsFailedPrecondition(result.status())) {  // transport missing: not a failure of the bench
            skipped[s] = true;
            progress.Done(cell, absl::StrCat("skipped from here on: ", result.status().message()));
            continue;
          }
          progress.Done(cell, "FAILED");
          return Fail(result.status(), 1);
        }
        progress.Done(cell, absl::StrFormat("TTFT %.2f ms, %.2f ms per step, %.2f steps/s, %llu entries checked",
                                            result->ttft_s * 1e3, result->fetch_p50_s * 1e3, result->steps_per_s,
                                            static_cast<unsigned long long>(result->entries_checked)));
        results.push_back(*std::move(result));
      }
    }
  }
  if (results.empty()) {
    std::fprintf(stderr, "sparsepool_bench: no strategy could run\n");
    return 1;
  }
  std::printf("\n%s\n", ResultsMarkdown(results).c_str());
  const std::string modelled = ModelledNicMarkdown(results, m, o.nic);
  if (!modelled.empty()) std::printf("%s\n", modelled.c_str());
  const absl::Status report = WriteReport(results, header, o.out, modelled);
  if (!report.ok()) std::fprintf(stderr, "sparsepool_bench: %s\n", std::string(report.message()).c_str());
  std::printf("CSV, markdown and plots in %s/\n", o.out.c_str());
  return 0;
}

}  // namespace
}  // namespace sparsepool::bench

int main(int argc, char** argv) { return sparsepool::bench::Run(argc, argv); }

// sparsepool-bench: the RDMA-versus-CXL comparison (issue 5). For each context length
// and batch size, decodes a batch of DeepSeek-V3.2-shaped requests against a running
// sparsepoold with each fetch strategy, and reports per-step fetch latency (p50, p99),
// bytes crossing the link, entries and decode steps per second, as a markdown table on
// stdout and results.csv, results.md and PNG plots in --out.
//
//   sparsepool_bench [--address=127.0.0.1:7070] [--preset=quick|full] [--model=FILE]
//       [--contexts=8192,32768] [--batches=1,4] [--strategies=a,b,...] [--steps=N]
//       [--warmup=N] [--sampled_layers=N] [--stored_layers=N] [--overlap=0.8]
//       [--cache_capacity=4096] [--trace=FILE] [--seed=N] [--out=DIR] [--rdma_transport=ucx|verbs]
//       [--copy_threads=N (the cxl-cpu strategies' ClientOptions::copy_threads)]
//       [--nic_gbs=25 --nic_mreads=50 --nic_latency_us=3 (the NIC the rdma-* rows are
//        also modelled on, printed after the measured table and labelled as modelled)]
// (--help lists the flags with their defaults; --contexts, --batches, --steps, --warmup
// and --sampled_layers default to the preset's.)
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
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/flag.h"
#include "bench/bench_report.h"
#include "bench/bench_runner.h"
#include "bench/gpu_strategies.h"
#include "bench/host_strategies.h"
#include "bench/model_geometry.h"
#include "bench/prefix_pull.h"
#include "bench/progress_line.h"
#include "bench/trace_file.h"
#include "common/command_line.h"
#include "common/units.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT)");
ABSL_FLAG(std::string, preset, "quick",
          "the sweep: quick (contexts 8192,32768, batches 1,4, 2 warm-up + 8 timed steps, 4 sampled layers) or "
          "full (contexts 8192 to 131072, batches 1,4,16, 2 + 16 steps, 8 sampled layers); the flags below "
          "override its parts");
ABSL_FLAG(std::string, model, "", "model geometry file (bench/models/*.conf); empty: DeepSeek-V3.2");
ABSL_FLAG(std::string, trace, "",
          "top-k trace file to replay (docs/trace_format.md) instead of generated selections; sets the context "
          "and the timed steps from the trace");
ABSL_FLAG(std::string, out, "sparsepool-bench-out", "directory for results.csv, results.md and the PNG plots");
ABSL_FLAG(std::optional<std::vector<std::string>>, contexts, std::nullopt,
          "context lengths at the first step, tokens, comma-separated positive numbers (empty: the preset's)");
ABSL_FLAG(std::optional<std::vector<std::string>>, batches, std::nullopt,
          "batch sizes (requests decoding together), comma-separated positive numbers (empty: the preset's)");
ABSL_FLAG(std::vector<std::string>, strategies,
          (std::vector<std::string>{"rdma-prefix-pull", "rdma-topk", "cxl-cpu-topk", "cxl-cpu-topk-cache",
                                    "cxl-gpu-topk", "cxl-gpu-topk-cache", "hbm-only"}),
          "fetch strategies to run, comma-separated, of: rdma-prefix-pull, rdma-topk, cxl-cpu-topk, "
          "cxl-cpu-topk-cache, cxl-gpu-topk, cxl-gpu-topk-cache, hbm-only, rdma-full-prefix (the whole prefix "
          "at every step: only when named); the first is the baseline of the \"vs first\" columns");
ABSL_FLAG(std::optional<uint32_t>, steps, std::nullopt, "timed decode steps per cell, positive (empty: the preset's)");
ABSL_FLAG(std::optional<uint32_t>, warmup, std::nullopt,
          "decode steps run and checked but not timed before them (empty: the preset's)");
ABSL_FLAG(std::optional<uint32_t>, sampled_layers, std::nullopt,
          "layers fetched per step, spread over the model's, the step's figures scaled up; 0: every layer "
          "(empty: the preset's)");
ABSL_FLAG(uint32_t, stored_layers, 4,
          "layers held in the pool per request, positive (fetched layer l reads pool layer l % stored_layers)");
ABSL_FLAG(double, overlap, 0.8, "share of a layer's top-k kept from the previous step, 0 to 1 (generated selections)");
ABSL_FLAG(uint32_t, cache_capacity, 4096, "residency cache slots per request-layer (the *-cache strategies), positive");
ABSL_FLAG(std::string, rdma_transport, "ucx", "the rdma-* strategies' transport: ucx or verbs");
ABSL_FLAG(int, copy_threads, 1,
          "the cxl-cpu strategies' CPU gather threads (ClientOptions::copy_threads), 1 to 64");
ABSL_FLAG(uint64_t, seed, 1, "seed of the generated selections");
ABSL_FLAG(double, nic_gbs, 25, "modelled NIC for the rdma-* rows: bandwidth, GB/s, positive");
ABSL_FLAG(double, nic_mreads, 50, "modelled NIC: RDMA reads per second, millions, positive");
ABSL_FLAG(double, nic_latency_us, 3, "modelled NIC: one round trip, microseconds, 0 or more");

namespace sparsepool::bench {
namespace {

// The baseline first (each cell's "vs first" column compares with it): the RDMA pool as
// dense-attention pools run it, the prefix pulled once at admission. rdma-full-prefix
// (the whole prefix again at every step and layer) is a degenerate case, run only when
// asked for.
// (--strategies' default is every one but the last.)
constexpr const char* kAllStrategies[] = {"rdma-prefix-pull", "rdma-topk",    "cxl-cpu-topk",
                                          "cxl-cpu-topk-cache", "cxl-gpu-topk", "cxl-gpu-topk-cache",
                                          "hbm-only",         "rdma-full-prefix"};

// The flags' values (their defaults are the flags' and the preset's).
struct Options {
  std::string address;
  std::string model_file;
  std::string trace_file;
  std::string out;
  std::vector<uint64_t> contexts;
  std::vector<uint32_t> batches;
  std::vector<std::string> strategies;
  CellPlan plan;
  uint32_t cache_capacity = 0;
  std::string rdma_transport;  // "ucx" or "verbs", for the rdma-* strategies
  int copy_threads = 0;        // for the CPU gather of the cxl-* strategies
  NicParams nic;               // the NIC the rdma-* rows are also modelled on
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

// Reads the flags into `o`, the preset first so that the other flags override it; the
// exit status (2) when a value is refused, having said why.
std::optional<int> ReadOptions(Options& o) {
  const std::string preset = absl::GetFlag(FLAGS_preset);
  if (!ApplyPreset(preset, o)) return RefuseFlagValue("preset", preset, "quick or full");
  o.address = absl::GetFlag(FLAGS_address);
  o.model_file = absl::GetFlag(FLAGS_model);
  o.trace_file = absl::GetFlag(FLAGS_trace);
  o.out = absl::GetFlag(FLAGS_out);
  if (o.out.empty()) return RefuseFlagValue("out", o.out, "a directory is needed");
  if (const auto contexts = absl::GetFlag(FLAGS_contexts); contexts.has_value()) {
    if (!PositiveNumbers(*contexts, o.contexts)) {
      return RefuseFlagValue("contexts", absl::StrJoin(*contexts, ","), "positive numbers, comma-separated");
    }
  }
  if (const auto batches = absl::GetFlag(FLAGS_batches); batches.has_value()) {
    if (!PositiveNumbers(*batches, o.batches)) {
      return RefuseFlagValue("batches", absl::StrJoin(*batches, ","), "positive numbers, comma-separated");
    }
  }
  o.strategies = absl::GetFlag(FLAGS_strategies);
  for (const std::string& name : o.strategies) {
    if (std::find(std::begin(kAllStrategies), std::end(kAllStrategies), name) == std::end(kAllStrategies)) {
      return RefuseFlagValue("strategies", absl::StrJoin(o.strategies, ","),
                         absl::StrCat("unknown strategy \"", name, "\"; strategies: ",
                                      absl::StrJoin(kAllStrategies, ", ")));
    }
  }
  o.plan.steps = absl::GetFlag(FLAGS_steps).value_or(o.plan.steps);
  if (o.plan.steps == 0) return RefuseFlagValue("steps", "0", "must be positive");
  o.plan.warmup_steps = absl::GetFlag(FLAGS_warmup).value_or(o.plan.warmup_steps);
  o.plan.sampled_layers = absl::GetFlag(FLAGS_sampled_layers).value_or(o.plan.sampled_layers);
  o.plan.stored_layers = absl::GetFlag(FLAGS_stored_layers);
  if (o.plan.stored_layers == 0) return RefuseFlagValue("stored_layers", "0", "must be positive");
  o.plan.overlap = absl::GetFlag(FLAGS_overlap);
  if (!(o.plan.overlap >= 0 && o.plan.overlap <= 1)) {
    return RefuseFlagValue("overlap", absl::StrCat(o.plan.overlap), "0 to 1");
  }
  o.cache_capacity = absl::GetFlag(FLAGS_cache_capacity);
  if (o.cache_capacity == 0) return RefuseFlagValue("cache_capacity", "0", "must be positive");
  o.rdma_transport = absl::GetFlag(FLAGS_rdma_transport);
  if (o.rdma_transport != "ucx" && o.rdma_transport != "verbs") {
    return RefuseFlagValue("rdma_transport", o.rdma_transport, "ucx or verbs");
  }
  o.copy_threads = absl::GetFlag(FLAGS_copy_threads);
  if (o.copy_threads < 1 || o.copy_threads > kMaxCopyThreads) {
    return RefuseFlagValue("copy_threads", absl::StrCat(o.copy_threads), absl::StrCat("1 to ", kMaxCopyThreads));
  }
  o.plan.seed = absl::GetFlag(FLAGS_seed);
  const double nic_gbs = absl::GetFlag(FLAGS_nic_gbs);
  if (!(nic_gbs > 0)) return RefuseFlagValue("nic_gbs", absl::StrCat(nic_gbs), "must be positive");
  o.nic.bytes_per_s = nic_gbs * 1e9;
  const double nic_mreads = absl::GetFlag(FLAGS_nic_mreads);
  if (!(nic_mreads > 0)) return RefuseFlagValue("nic_mreads", absl::StrCat(nic_mreads), "must be positive");
  o.nic.messages_per_s = nic_mreads * 1e6;
  const double nic_latency_us = absl::GetFlag(FLAGS_nic_latency_us);
  if (!(nic_latency_us >= 0)) return RefuseFlagValue("nic_latency_us", absl::StrCat(nic_latency_us), "0 or more");
  o.nic.latency_s = nic_latency_us * 1e-6;
  return std::nullopt;
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
  ParseFlagsOnly(argc, argv,
                 "the RDMA-versus-CXL comparison (issue 5): decode steps per context, batch and fetch strategy "
                 "against a running daemon; a markdown table, CSV and plots\n\n"
                 "usage: sparsepool_bench [--flag=value...]");
  Options o;
  if (const std::optional<int> refused = ReadOptions(o); refused.has_value()) return *refused;
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

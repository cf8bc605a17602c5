// sparsepool-serve-bench: the request-level RDMA-versus-CXL comparison (issue 17).
// Requests arrive (Poisson), wait for a place in the decode batch, are admitted by each
// strategy in turn (bench/request_strategies.h: the RDMA prefix pull on the CPU or the
// GPU, top-k over RDMA, top-k over CXL on the CPU, the GPU decode session with and
// without the residency cache), decode their output and leave; per strategy it reports
// time to first token, time between tokens, tokens/s, bytes moved at admission and the
// largest local copy, as a markdown table on stdout and results.md, results.csv and
// timeline.csv (one line per request, for tools/plot_serve.py) in --out.
//
//   sparsepool_serve_bench [--address=127.0.0.1:7070] [--preset=quick|full] [--requests=N]
//       [--rate=PER_S] [--min_context=N] [--max_context=N] [--output_tokens=N]
//       [--concurrency=N] [--fetched_layers=N] [--stored_layers=N] [--overlap=0.8]
//       [--cache_slots=N] [--strategies=a,b] [--seed=N] [--rdma_transport=ucx|verbs]
//       [--out=DIR]
// (--help lists the flags with their defaults; --requests, --rate, --min_context,
// --max_context, --output_tokens and --concurrency default to the preset's.)
//
// The RDMA strategies need the daemon started with --ucx=true (or --verbs=true and
// --rdma_transport=verbs), the GPU strategies a CUDA device; without them they are
// skipped, saying why.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/bench_report.h"
#include "bench/progress_line.h"
#include "bench/request_run.h"
#include "bench/request_strategies.h"
#include "common/command_line.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT)");
ABSL_FLAG(std::string, preset, "quick",
          "the run: quick (12 requests at 8/s, prompts 4096-16384 tokens, 32 output tokens, 4 decoding at once; "
          "under a minute on 2 cores) or full (32 requests at 1/s, prompts 16384-131072 tokens, 256 output "
          "tokens, 8 at once; for a GPU host); the flags below override its parts");
ABSL_FLAG(std::optional<uint32_t>, requests, std::nullopt, "requests arriving, positive (empty: the preset's)");
ABSL_FLAG(std::optional<double>, rate, std::nullopt,
          "mean arrivals per second (Poisson), positive (empty: the preset's)");
ABSL_FLAG(std::optional<uint64_t>, min_context, std::nullopt,
          "shortest prompt, tokens, positive; prompts are drawn log-uniformly (empty: the preset's)");
ABSL_FLAG(std::optional<uint64_t>, max_context, std::nullopt, "longest prompt, tokens, positive (empty: the preset's)");
ABSL_FLAG(std::optional<uint32_t>, output_tokens, std::nullopt,
          "tokens decoded per request, positive (empty: the preset's)");
ABSL_FLAG(std::optional<uint32_t>, concurrency, std::nullopt,
          "requests decoding at once at most (the decode batch), positive (empty: the preset's)");
ABSL_FLAG(uint32_t, fetched_layers, 4, "layers of the modelled decode step, each one fetch, positive");
ABSL_FLAG(uint32_t, stored_layers, 4, "layers per request held in the pool (fetched layers reuse them), positive");
ABSL_FLAG(double, overlap, 0.8, "share of a layer's top-k kept from the previous step, 0 to 1");
ABSL_FLAG(uint32_t, cache_slots, 4096, "residency cache slots per (request, layer) for cxl-gpu-topk-cache, positive");
ABSL_FLAG(std::vector<std::string>, strategies,
          (std::vector<std::string>{"rdma-prefix-pull", "rdma-prefix-pull-gpu", "rdma-prefix-pull-pinned",
                                    "rdma-topk", "cxl-cpu-topk", "cxl-gpu-topk", "cxl-gpu-topk-cache"}),
          "request strategies to run, comma-separated, of the default's names");
ABSL_FLAG(uint64_t, seed, 1, "seed of the arrivals and selections, positive");
ABSL_FLAG(std::string, rdma_transport, "ucx", "the rdma-* strategies' transport: ucx or verbs");
ABSL_FLAG(std::string, out, "sparsepool-serve-bench-out",
          "directory for results.md, results.csv, timeline.csv and plots.gp");

namespace sparsepool::bench {
namespace {

constexpr const char* kStrategies[] = {"rdma-prefix-pull",   "rdma-prefix-pull-gpu", "rdma-prefix-pull-pinned",
                                       "rdma-topk",          "cxl-cpu-topk",         "cxl-gpu-topk",
                                       "cxl-gpu-topk-cache"};

// The flags' values (their defaults are the flags' and the preset's).
struct Options {
  std::string address;
  std::string out;
  std::vector<std::string> strategies;
  std::string rdma_transport;
  uint32_t cache_slots = 0;  // per (request, layer), for cxl-gpu-topk-cache
  RequestRunPlan plan;
};

// quick: under a minute on a 2-core machine; full: the shape, for a GPU host.
bool ApplyPreset(const std::string& name, Options& o) {
  ArrivalParams& a = o.plan.arrivals;
  if (name == "quick") {
    a.requests = 12;
    a.rate_per_s = 8;
    a.min_context = 4096;
    a.max_context = 16384;
    a.output_tokens = 32;
    o.plan.concurrency = 4;
    return true;
  }
  if (name == "full") {
    a.requests = 32;
    a.rate_per_s = 1;
    a.min_context = 16384;
    a.max_context = 131072;
    a.output_tokens = 256;
    o.plan.concurrency = 8;
    return true;
  }
  return false;
}

// Reads the flags into `o`, the preset first so that the other flags override it; the
// exit status (2) when a value is refused, having said why.
std::optional<int> ReadOptions(Options& o) {
  const std::string preset = absl::GetFlag(FLAGS_preset);
  if (!ApplyPreset(preset, o)) return RefuseFlagValue("preset", preset, "quick or full");
  ArrivalParams& a = o.plan.arrivals;
  o.address = absl::GetFlag(FLAGS_address);
  o.out = absl::GetFlag(FLAGS_out);
  o.rdma_transport = absl::GetFlag(FLAGS_rdma_transport);
  a.requests = absl::GetFlag(FLAGS_requests).value_or(a.requests);
  a.rate_per_s = absl::GetFlag(FLAGS_rate).value_or(a.rate_per_s);
  a.min_context = absl::GetFlag(FLAGS_min_context).value_or(a.min_context);
  a.max_context = absl::GetFlag(FLAGS_max_context).value_or(a.max_context);
  a.output_tokens = absl::GetFlag(FLAGS_output_tokens).value_or(a.output_tokens);
  a.seed = absl::GetFlag(FLAGS_seed);
  o.plan.concurrency = absl::GetFlag(FLAGS_concurrency).value_or(o.plan.concurrency);
  o.plan.fetched_layers = absl::GetFlag(FLAGS_fetched_layers);
  o.plan.stored_layers = absl::GetFlag(FLAGS_stored_layers);
  o.cache_slots = absl::GetFlag(FLAGS_cache_slots);
  o.plan.overlap = absl::GetFlag(FLAGS_overlap);
  const std::pair<const char*, double> positive[] = {
      {"requests", a.requests},
      {"rate", a.rate_per_s},
      {"min_context", double(a.min_context)},
      {"max_context", double(a.max_context)},
      {"output_tokens", a.output_tokens},
      {"seed", double(a.seed)},
      {"concurrency", o.plan.concurrency},
      {"fetched_layers", o.plan.fetched_layers},
      {"stored_layers", o.plan.stored_layers},
      {"cache_slots", o.cache_slots},
  };
  for (const auto& [flag, value] : positive) {
    if (!(value > 0)) return RefuseFlagValue(flag, absl::StrCat(value), "must be positive");
  }
  if (!(o.plan.overlap >= 0 && o.plan.overlap <= 1)) {
    return RefuseFlagValue("overlap", absl::StrCat(o.plan.overlap), "0 to 1");
  }
  o.strategies = absl::GetFlag(FLAGS_strategies);
  for (const std::string& name : o.strategies) {
    if (std::find(std::begin(kStrategies), std::end(kStrategies), name) == std::end(kStrategies)) {
      return RefuseFlagValue("strategies", absl::StrJoin(o.strategies, ","),
                         absl::StrCat("unknown strategy \"", name, "\"; strategies: ",
                                      absl::StrJoin(kStrategies, ",")));
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<RequestStrategy>> MakeStrategy(const std::string& name, const Options& o) {
  ClientOptions options;
  options.address = o.address;
  options.transport = absl::StartsWith(name, "rdma-") ? o.rdma_transport : "cxl";
  auto client = Client::Connect(options);
  if (!client.ok()) return client.status();
  RequestShape shape;
  shape.max_batch = o.plan.concurrency;
  shape.stored_layers = o.plan.stored_layers;
  shape.fetched_layers = o.plan.fetched_layers;
  shape.entry_bytes = o.plan.model.entry_bytes;
  shape.k = o.plan.model.top_k;
  shape.page_tokens = o.plan.model.page_tokens;
  shape.max_tokens = o.plan.arrivals.max_context + o.plan.arrivals.output_tokens;
  if (absl::StartsWith(name, "rdma-prefix-pull")) {
    auto pull_client = Client::Connect(options);  // the pulls' own endpoint
    if (!pull_client.ok()) return pull_client.status();
    if (name == "rdma-prefix-pull") return MakePrefixPullRequests(name, *std::move(client), *std::move(pull_client), shape);
    return MakeGpuPrefixPullRequests(name, *std::move(client), *std::move(pull_client), shape,
                                     name == "rdma-prefix-pull-gpu");
  }
  if (name == "cxl-gpu-topk") return MakeSessionRequests(name, *std::move(client), shape, 0);
  if (name == "cxl-gpu-topk-cache") return MakeSessionRequests(name, *std::move(client), shape, o.cache_slots);
  return MakeTopKRequests(name, *std::move(client), shape);
}

int Run(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "the request-level RDMA-versus-CXL comparison (issue 17): requests arriving, admitted and "
                 "decoded by each strategy against a running daemon; TTFT, TBT, tokens/s\n\n"
                 "usage: sparsepool_serve_bench [--flag=value...]");
  Options o;
  if (const std::optional<int> refused = ReadOptions(o); refused.has_value()) return *refused;
  const ArrivalParams& a = o.plan.arrivals;

  ClientOptions prefill_options;
  prefill_options.address = o.address;
  auto prefill = Client::Connect(prefill_options);
  if (!prefill.ok()) {
    std::fprintf(stderr, "sparsepool_serve_bench: %s\n", prefill.status().ToString().c_str());
    return 1;
  }
  const std::string header = absl::StrFormat(
      "sparsepool-serve-bench: %d requests arriving at %.2f/s (Poisson), prompts %d-%d tokens (log-uniform), "
      "%d output tokens each, at most %d decoding at once; a model of %d fetched layers (pool layers: %d), "
      "top-%d of %d-byte entries, selections overlapping %.0f%% step to step; seed %d",
      a.requests, a.rate_per_s, a.min_context, a.max_context, a.output_tokens, o.plan.concurrency,
      o.plan.fetched_layers, o.plan.stored_layers, o.plan.model.top_k, o.plan.model.entry_bytes,
      o.plan.overlap * 100, a.seed);
  std::printf("%s\n", header.c_str());
  std::fflush(stdout);

  ProgressLine progress;
  std::vector<RequestRunResult> results;
  for (const std::string& name : o.strategies) {
    auto strategy = MakeStrategy(name, o);
    if (!strategy.ok()) {
      progress.Done(name, absl::StrCat("skipped: ", strategy.status().message()));
      continue;
    }
    auto result = RunRequests(o.plan, **prefill, **strategy, [&](const std::string& what) { progress.Show(name, what); });
    if (!result.ok()) {
      if (absl::IsFailedPrecondition(result.status())) {  // transport missing
        progress.Done(name, absl::StrCat("skipped: ", result.status().message()));
        continue;
      }
      progress.Done(name, "FAILED");
      std::fprintf(stderr, "sparsepool_serve_bench: %s\n", result.status().ToString().c_str());
      return 1;
    }
    progress.Done(name, absl::StrFormat("TTFT p50 %s, TBT p50 %s, %.1f tokens/s, %llu entries checked",
                                        FormatSeconds(result->ttft_p50_s), FormatSeconds(result->tbt_p50_s),
                                        result->tokens_per_s,
                                        static_cast<unsigned long long>(result->entries_checked)));
    results.push_back(*std::move(result));
  }
  if (results.empty()) {
    std::fprintf(stderr, "sparsepool_serve_bench: no strategy could run\n");
    return 1;
  }
  const std::string markdown = RequestResultsMarkdown(results);
  std::printf("\n%s\n", markdown.c_str());
  if (mkdir(o.out.c_str(), 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "sparsepool_serve_bench: cannot make %s\n", o.out.c_str());
    return 1;
  }
  for (const auto& [file, text] : {std::pair<std::string, std::string>{"results.md", header + "\n\n" + markdown},
                                   {"results.csv", RequestResultsCsv(results)},
                                   {"timeline.csv", RequestTimelineCsv(results)},
                                   {"plots.gp", RequestGnuplotScript(results)}}) {
    if (absl::Status s = WriteFile(o.out + "/" + file, text); !s.ok()) {
      std::fprintf(stderr, "sparsepool_serve_bench: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  if (absl::Status s = RunGnuplot(o.out); !s.ok()) {
    std::printf("CSV and markdown in %s/ (no plots: %s)\n", o.out.c_str(), std::string(s.message()).c_str());
  } else {
    std::printf("CSV, markdown and plots in %s/\n", o.out.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace sparsepool::bench

int main(int argc, char** argv) { return sparsepool::bench::Run(argc, argv); }

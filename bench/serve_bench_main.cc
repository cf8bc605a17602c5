// sparsepool-serve-bench: the request-level RDMA-versus-CXL comparison (issue 17).
// Requests arrive (Poisson), wait for a place in the decode batch, are admitted by each
// strategy in turn (bench/request_strategies.h: the RDMA prefix pull on the CPU or the
// GPU, top-k over RDMA, top-k over CXL on the CPU, the GPU decode session with and
// without the residency cache), decode their output and leave; per strategy it reports
// time to first token, time between tokens, tokens/s, bytes moved at admission and the
// largest local copy, as a markdown table on stdout and results.md, results.csv and
// timeline.csv (one line per request, for tools/plot_serve.py) in --out.
//
//   sparsepool_serve_bench --address=HOST:PORT [--preset=quick|full] [--requests=N]
//       [--rate=PER_S] [--min_context=N] [--max_context=N] [--output_tokens=N]
//       [--concurrency=N] [--fetched_layers=N] [--stored_layers=N] [--overlap=0.8]
//       [--cache_slots=N] [--strategies=a,b] [--seed=N] [--rdma_transport=ucx|verbs]
//       [--out=DIR]
//
// The RDMA strategies need the daemon started with --ucx=true (or --verbs=true and
// --rdma_transport=verbs), the GPU strategies a CUDA device; without them they are
// skipped, saying why.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/bench_report.h"
#include "bench/flag.h"
#include "bench/progress_line.h"
#include "bench/request_run.h"
#include "bench/request_strategies.h"

namespace sparsepool::bench {
namespace {

constexpr const char* kStrategies[] = {"rdma-prefix-pull",   "rdma-prefix-pull-gpu", "rdma-prefix-pull-pinned",
                                       "rdma-topk",          "cxl-cpu-topk",         "cxl-gpu-topk",
                                       "cxl-gpu-topk-cache"};

struct Options {
  std::string address = "127.0.0.1:7070";
  std::string out = "sparsepool-serve-bench-out";
  std::vector<std::string> strategies{std::begin(kStrategies), std::end(kStrategies)};
  std::string rdma_transport = "ucx";
  uint32_t cache_slots = 4096;  // per (request, layer), for cxl-gpu-topk-cache
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

int Usage(const std::string& arg) {
  std::fprintf(stderr,
               "sparsepool_serve_bench: bad argument %s\n"
               "usage: sparsepool_serve_bench --address=HOST:PORT [--preset=quick|full] [--requests=N] "
               "[--rate=PER_S]\n"
               "    [--min_context=N] [--max_context=N] [--output_tokens=N] [--concurrency=N] "
               "[--fetched_layers=N]\n"
               "    [--stored_layers=N] [--overlap=F] [--cache_slots=N] [--strategies=%s] [--seed=N]\n"
               "    [--rdma_transport=ucx|verbs] [--out=DIR]\n",
               arg.c_str(), absl::StrJoin(kStrategies, ",").c_str());
  return 2;
}

template <typename T>
bool Number(const std::string& value, T& out) {
  if constexpr (std::is_floating_point_v<T>) {
    return absl::SimpleAtod(value, &out) && out > 0;
  } else {
    return absl::SimpleAtoi(value, &out) && out > 0;
  }
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
  Options o;
  ApplyPreset("quick", o);
  for (int i = 1; i < argc; ++i) {  // the preset first, so that other flags override it
    const Flag flag = SplitFlag(argv[i]);
    if (flag.key == "--preset" && !ApplyPreset(flag.value, o)) return Usage(argv[i]);
  }
  ArrivalParams& a = o.plan.arrivals;
  for (int i = 1; i < argc; ++i) {
    const Flag flag = SplitFlag(argv[i]);
    const std::string& v = flag.value;
    bool ok = true;
    if (flag.key == "--preset") continue;
    if (flag.key == "--address") o.address = v;
    else if (flag.key == "--out") o.out = v;
    else if (flag.key == "--rdma_transport") o.rdma_transport = v;
    else if (flag.key == "--requests") ok = Number(v, a.requests);
    else if (flag.key == "--rate") ok = Number(v, a.rate_per_s);
    else if (flag.key == "--min_context") ok = Number(v, a.min_context);
    else if (flag.key == "--max_context") ok = Number(v, a.max_context);
    else if (flag.key == "--output_tokens") ok = Number(v, a.output_tokens);
    else if (flag.key == "--seed") ok = Number(v, a.seed);
    else if (flag.key == "--concurrency") ok = Number(v, o.plan.concurrency);
    else if (flag.key == "--fetched_layers") ok = Number(v, o.plan.fetched_layers);
    else if (flag.key == "--stored_layers") ok = Number(v, o.plan.stored_layers);
    else if (flag.key == "--cache_slots") ok = Number(v, o.cache_slots);
    else if (flag.key == "--overlap") ok = absl::SimpleAtod(v, &o.plan.overlap) && o.plan.overlap >= 0 && o.plan.overlap <= 1;
    else if (flag.key == "--strategies") {
      o.strategies = absl::StrSplit(v, ',');
      for (const std::string& name : o.strategies) {
        ok = ok && std::find(std::begin(kStrategies), std::end(kStrategies), name) != std::end(kStrategies);
      }
    } else {
      ok = false;
    }
    if (!ok) return Usage(argv[i]);
  }

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

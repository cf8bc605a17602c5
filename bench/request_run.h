// The request-level comparison (issue 17): requests arrive (bench/arrivals.h), wait for
// one of `concurrency` places in the decode batch, are admitted by the strategy, decode
// their output one token a step alongside whoever else is in the batch, and leave.
// Real time, a real daemon, real transports. Per strategy: time to first token (from
// arrival: the wait for a place, admission, the first step), time between tokens (p50,
// p99), decoded tokens per second, bytes moved at admission and the largest local copy.
//
// Admissions run on their own thread, one at a time in the order places were given, as
// an engine's transfer engine runs beside its decode loop: a prefix pull never stalls
// the batch, but the pulls of requests that arrive together queue behind each other on
// the one wire, and they contend with the steps' own traffic. A place in the batch is
// taken from the start of a request's admission (its memory is reserved then); it joins
// the batch at the first step boundary after its admission ends.
//
// A step appends one token to every active request (its entry in every stored layer,
// through the strategy) and fetches `fetched_layers` layers of top-k for the whole
// batch; fetched layer l reads pool layer l % stored_layers. Selections come from the
// seeded trace generator, one trace per request. Entries are checked against what was
// written, `checked_per_row` per row and step.
//
// Prompts are written by the prefill client before the run starts (prefill is the same
// for every strategy and not timed). The step runs every fetched layer: figures are for
// a model of `fetched_layers` layers, not scaled.
#ifndef SPARSEPOOL_BENCH_REQUEST_RUN_H_
#define SPARSEPOOL_BENCH_REQUEST_RUN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/arrivals.h"
#include "bench/bench_runner.h"
#include "bench/model_geometry.h"
#include "bench/request_strategies.h"

namespace sparsepool::bench {

struct RequestRunPlan {
  ModelGeometry model;
  ArrivalParams arrivals;
  uint32_t concurrency = 8;     // requests decoding at once, at most
  uint32_t fetched_layers = 4;  // per step
  uint32_t stored_layers = 4;   // per request in the pool: every layer a step reads
  double overlap = 0.8;         // of a layer's top-k kept from the previous step
  uint32_t checked_per_row = 8;
};

struct RequestRunResult {
  std::string strategy;
  uint32_t completed = 0;
  uint64_t tokens = 0;          // decoded, all requests
  double wall_s = 0;            // first arrival to last token
  double ttft_p50_s = 0, ttft_p99_s = 0;
  double wait_p99_s = 0;        // arrival to a place in the batch
  // A place to the end of admission: the hand-off, and for a pull the wire, queueing
  // behind earlier pulls included.
  double admission_p50_s = 0, admission_p99_s = 0;
  double tbt_p50_s = 0, tbt_p99_s = 0;
  double tokens_per_s = 0;
  uint64_t admission_bytes = 0;
  uint64_t peak_local_bytes = 0;
  uint64_t entries_checked = 0;
  // Per request, in arrival order: for plots (tools/plot_serve.py).
  struct PerRequest {
    double arrival_s = 0, placed_s = 0, admitted_s = 0, first_token_s = 0, done_s = 0;
    uint64_t context = 0;
    uint32_t output_tokens = 0;
  };
  std::vector<PerRequest> requests;
};

absl::StatusOr<RequestRunResult> RunRequests(const RequestRunPlan& plan, Client& prefill, RequestStrategy& strategy,
                                             const Progress& progress);

std::string RequestResultsMarkdown(const std::vector<RequestRunResult>& results);
std::string RequestResultsCsv(const std::vector<RequestRunResult>& results);
// One line per request and strategy: arrival, place, admission, first and last token.
std::string RequestTimelineCsv(const std::vector<RequestRunResult>& results);
// The gnuplot script that draws TTFT by arrival, the TTFT distribution and each
// request's mean TBT by prompt length from timeline.csv in the same directory.
std::string RequestGnuplotScript(const std::vector<RequestRunResult>& results);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_REQUEST_RUN_H_

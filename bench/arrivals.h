// Requests arriving at a decode service, for the request-level comparison: Poisson
// arrivals at a given rate, each with a prompt length drawn log-uniformly from a range
// (long contexts as often as short ones, per octave) and an output length. Seeded: the
// same parameters give the same requests.
#ifndef SPARSEPOOL_BENCH_ARRIVALS_H_
#define SPARSEPOOL_BENCH_ARRIVALS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace sparsepool::bench {

struct ArrivalParams {
  uint32_t requests = 16;
  double rate_per_s = 2.0;        // mean arrivals per second
  uint64_t min_context = 16384;   // prompt tokens, drawn log-uniformly in [min, max]
  uint64_t max_context = 131072;
  uint32_t output_tokens = 1024;  // decoded per request
  uint32_t page_tokens = 64;      // prompt lengths are rounded down to whole pages
  uint64_t seed = 1;
};

struct Arrival {
  double at_s = 0;  // since the run began
  uint64_t context = 0;
  uint32_t output_tokens = 0;
};

// InvalidArgument for an empty or inverted range, a rate that is not positive, or no
// requests.
absl::StatusOr<std::vector<Arrival>> GenerateArrivals(const ArrivalParams& params);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_ARRIVALS_H_

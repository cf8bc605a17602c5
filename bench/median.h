// The statistics the benchmarks report over repeated timings: the median, and
// percentiles (p50, p99) where tails matter.
#ifndef SPARSEPOOL_BENCH_MEDIAN_H_
#define SPARSEPOOL_BENCH_MEDIAN_H_

#include <algorithm>
#include <cmath>
#include <vector>

namespace sparsepool::bench {

// Nearest-rank percentile, q in [0, 1]. REQUIRES: !samples.empty()
inline double Percentile(std::vector<double> samples, double q) {
  std::sort(samples.begin(), samples.end());
  const double rank = std::ceil(q * samples.size());
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return samples[std::min(index, samples.size() - 1)];
}

// REQUIRES: !samples.empty()
inline double Median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_MEDIAN_H_

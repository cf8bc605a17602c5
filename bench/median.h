// The statistics the benchmarks report over repeated timings: the median, and
// percentiles (p50, p99) where tails matter.
#ifndef SPARSEPOOL_BENCH_MEDIAN_H_
#define SPARSEPOOL_BENCH_MEDIAN_H_

#include <algorithm>
#include <cmath>
#include <vector>

namespace sparsepool::bench {

// Nearest-rank percentile of samples already sorted, q in [0, 1]: for several
// percentiles of one set, sort once. REQUIRES: !sorted.empty()
inline double PercentileOfSorted(const std::vector<double>& sorted, double q) {
  const double rank = std::ceil(q * sorted.size());
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

// Nearest-rank percentile, q in [0, 1]. REQUIRES: !samples.empty()
inline double Percentile(std::vector<double> samples, double q) {
  std::sort(samples.begin(), samples.end());
  return PercentileOfSorted(samples, q);
}

// REQUIRES: !samples.empty()
inline double Median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_MEDIAN_H_

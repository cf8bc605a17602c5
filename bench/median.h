// The statistic every benchmark here reports: the median of repeated timings.
#ifndef SPARSEPOOL_BENCH_MEDIAN_H_
#define SPARSEPOOL_BENCH_MEDIAN_H_

#include <algorithm>
#include <vector>

namespace sparsepool::bench {

// REQUIRES: !samples.empty()
inline double Median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_MEDIAN_H_

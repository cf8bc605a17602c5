// The soak's leak check: the daemon's footprint (anonymous memory, open descriptors)
// sampled while the load runs, compared between a sample taken once the run has warmed
// up (a quarter of the way in) and the last one. A daemon that leaks per request, per
// lease or per connection grows with the hours; one that does not stays flat once its
// caches and thread pools have filled.
#ifndef SPARSEPOOL_BENCH_LOAD_SOAK_H_
#define SPARSEPOOL_BENCH_LOAD_SOAK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/load_processes.h"

namespace sparsepool::bench {

class SoakMonitor {
 public:
  // Growth allowed between the warmed-up sample and the last: descriptors (connections
  // being replaced), and anonymous memory (allocator slack).
  static constexpr uint64_t kFdSlack = 16;
  static constexpr double kRssGrowth = 1.25;
  static constexpr uint64_t kRssSlackBytes = uint64_t{16} << 20;

  void Add(double at_s, uint64_t steps, const ProcessFootprint& footprint);
  // OK, or FailedPrecondition saying what grew and by how much; FailedPrecondition too
  // when there are too few samples to tell.
  absl::Status Verdict() const;
  // A markdown paragraph and table (warmed-up, last, largest), and every sample as CSV.
  std::string Markdown() const;
  std::string Csv() const;

 private:
  struct Sample {
    double at_s;
    uint64_t steps;
    ProcessFootprint footprint;
  };
  const Sample* WarmedUp() const;

  std::vector<Sample> samples_;
};

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LOAD_SOAK_H_

// sparsepool-load's plots: the step-time distribution of every group (the whole run,
// each tenant, the first workers) and, for a soak, the daemon's footprint over time.
// Drawn by gnuplot from CSV files the load tool writes beside results.md.
#ifndef SPARSEPOOL_BENCH_LOAD_PLOTS_H_
#define SPARSEPOOL_BENCH_LOAD_PLOTS_H_

#include <string>
#include <vector>

namespace sparsepool::bench {

struct StepGroup {
  std::string name;              // "all", "tenant acme", "worker 3"
  std::vector<double> step_us;  // every completed step's time
};

// quantiles.csv: "group,share,step_us", the step time below which each share of the
// group's steps fell, from the median to the largest.
std::string StepQuantilesCsv(const std::vector<StepGroup>& groups);

// plots.gp: step_cdf.png from quantiles.csv; footprint.png from soak.csv when `soak`.
std::string LoadGnuplotScript(const std::vector<StepGroup>& groups, bool soak);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LOAD_PLOTS_H_

#include "bench/load_plots.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/median.h"

namespace sparsepool::bench {

std::string StepQuantilesCsv(const std::vector<StepGroup>& groups) {
  std::string csv = "group,share,step_us\n";
  for (const StepGroup& g : groups) {
    if (g.step_us.empty()) continue;
    std::vector<double> sorted = g.step_us;
    std::sort(sorted.begin(), sorted.end());
    // Shares spaced evenly in log(1 - share): the tail gets as many points as the body.
    for (int i = 0; i <= 60; ++i) {
      const double share = 1 - 0.5 * std::pow(10.0, -4.0 * i / 60);
      absl::StrAppendFormat(&csv, "%s,%.6f,%.1f\n", g.name, share, PercentileOfSorted(sorted, share));
    }
    absl::StrAppendFormat(&csv, "%s,1.000000,%.1f\n", g.name, sorted.back());
  }
  return csv;
}

std::string LoadGnuplotScript(const std::vector<StepGroup>& groups, bool soak) {
  std::string out =
      "# Draws sparsepool-load's plots: gnuplot plots.gp\n"
      "set terminal pngcairo size 900,560 font ',11'\n"
      "set datafile separator ','\n"
      "set key outside right top\n"
      "set grid\n"
      "set output 'step_cdf.png'\n"
      "set title 'decode step time: share of steps within'\n"
      "set xlabel 'step (ms)'\nset ylabel 'share of steps'\nset logscale x\nset yrange [0.5:1]\n"
      "plot ";
  for (size_t i = 0; i < groups.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ", \\\n     ", "'quantiles.csv' skip 1 using (strcol(1) eq '",
                    groups[i].name, "' ? $3 / 1000 : NaN):2 with steps lw 2 title '", groups[i].name, "'");
  }
  absl::StrAppend(&out, "\nunset logscale\nset yrange [*:*]\n");
  if (soak) {
    absl::StrAppend(&out,
                    "set output 'footprint.png'\n"
                    "set title 'the daemon under the soak'\n"
                    "set xlabel 'time (s)'\nset ylabel 'anonymous memory (MiB)'\nset y2label 'open descriptors'\n"
                    "set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\n"
                    "plot 'soak.csv' skip 1 using 1:($3 / 1048576) with lines lw 2 title 'anonymous memory', \\\n"
                    "     'soak.csv' skip 1 using 1:4 axes x1y2 with steps lw 2 title 'open descriptors'\n");
  }
  return out;
}

}  // namespace sparsepool::bench

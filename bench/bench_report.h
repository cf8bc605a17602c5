// sparsepool-bench's outputs: a CSV of every cell, a markdown table, and PNG plots drawn
// by gnuplot from the CSV (the gnuplot script is written next to them, so the plots can
// be redrawn or restyled by hand).
#ifndef SPARSEPOOL_BENCH_BENCH_REPORT_H_
#define SPARSEPOOL_BENCH_BENCH_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/bench_runner.h"
#include "bench/model_geometry.h"

namespace sparsepool::bench {

// "12.34 ms" below a second, "1.23 s" above.
std::string FormatSeconds(double s);
// Writes `text` to `path`, replacing it.
absl::Status WriteFile(const std::string& path, const std::string& text);

std::string ResultsCsv(const std::vector<CellResult>& results);
// One row per cell, with each strategy's decode steps/s relative to the first strategy
// measured in the same (context, batch) cell, the baseline.
std::string ResultsMarkdown(const std::vector<CellResult>& results);
// A NIC the RDMA rows are modelled on, beside what loopback UCX measured (which
// emulates RMA with messages, so its figures are not a NIC's).
struct NicParams {
  double bytes_per_s = 25e9;     // one 200 Gb/s port
  double messages_per_s = 50e6;  // RDMA reads per second
  double latency_s = 3e-6;       // one round trip
};
// The rdma-* rows as they would run on `nic`: each layer's reads as one batch (a round
// trip, then bytes / bandwidth + reads / read rate). Reads: one per selected entry for
// top-k (no coalescing: an upper bound), one per page for a pull or a full prefix.
// Labelled as modelled; empty when there is no rdma-* row.
std::string ModelledNicMarkdown(const std::vector<CellResult>& results, const ModelGeometry& model,
                                const NicParams& nic);

// The gnuplot script that draws dir/*.png from dir/results.csv.
std::string GnuplotScript(const std::vector<CellResult>& results);

// Writes results.csv, results.md and plots.gp into `dir` (created if missing) and runs
// gnuplot on plots.gp. FailedPrecondition, after writing the rest, when gnuplot is
// missing or fails.
// `appendix` goes at the end of results.md.
absl::Status WriteReport(const std::vector<CellResult>& results, const std::string& header, const std::string& dir,
                         const std::string& appendix = "");
// Runs gnuplot on dir/plots.gp (its errors in dir/gnuplot.log). FailedPrecondition when
// gnuplot is missing or fails.
absl::Status RunGnuplot(const std::string& dir);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_BENCH_REPORT_H_

#include "bench/load_time_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/median.h"

namespace sparsepool::bench {
namespace {

// The p50 and p99 of `samples` (zeros for none).
std::pair<double, double> MedianAndP99(std::vector<double> samples) {
  if (samples.empty()) return {0, 0};
  std::sort(samples.begin(), samples.end());
  return {PercentileOfSorted(samples, 0.5), PercentileOfSorted(samples, 0.99)};
}

}  // namespace

std::string LoadTimeTable(const std::vector<std::pair<std::string, const LoadWorkerResult*>>& groups) {
  std::string table =
      "| group | steps | ms a step: select | step | check | ledger | create | prefill | release | other | "
      "step's fetch wait p50 (us) | p99 | step's rest p50 (us) | p99 |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& [name, r] : groups) {
    const double steps = static_cast<double>(std::max<size_t>(r->step_us.size(), 1));
    const auto ms = [steps](double seconds) { return absl::StrFormat("%.2f", seconds * 1000 / steps); };
    std::vector<double> rest_us(r->step_us.size());
    for (size_t i = 0; i < rest_us.size() && i < r->wait_us.size(); ++i) rest_us[i] = r->step_us[i] - r->wait_us[i];
    const auto [wait_p50, wait_p99] = MedianAndP99(r->wait_us);
    const auto [rest_p50, rest_p99] = MedianAndP99(rest_us);
    const LoadWorkerTime& t = r->time;
    absl::StrAppend(&table, "| ", name, " | ", r->step_us.size(), " | ", ms(t.select_s), " | ", ms(t.step_s), " | ",
                    ms(t.check_s), " | ", ms(t.ledger_s), " | ", ms(t.create_s), " | ", ms(t.prefill_s), " | ",
                    ms(t.release_s), " | ", ms(t.other_s),
                    absl::StrFormat(" | %.0f | %.0f | %.0f | %.0f |\n", wait_p50, wait_p99, rest_p50, rest_p99));
  }
  return table;
}

}  // namespace sparsepool::bench

#include "bench/load_soak.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/units.h"

namespace sparsepool::bench {

void SoakMonitor::Add(double at_s, uint64_t steps, const ProcessFootprint& footprint) {
  samples_.push_back(Sample{at_s, steps, footprint});
}

const SoakMonitor::Sample* SoakMonitor::WarmedUp() const {
  if (samples_.size() < 4) return nullptr;
  const double quarter = samples_.back().at_s / 4;
  for (const Sample& s : samples_) {
    if (s.at_s >= quarter) return &s;
  }
  return nullptr;
}

absl::Status SoakMonitor::Verdict() const {
  const Sample* base = WarmedUp();
  if (base == nullptr || base == &samples_.back()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the soak has ", samples_.size(), " footprint sample(s): too few to tell a leak"));
  }
  const ProcessFootprint& first = base->footprint;
  const ProcessFootprint& last = samples_.back().footprint;
  std::string grew;
  if (last.open_fds > first.open_fds + kFdSlack) {
    absl::StrAppend(&grew, "open descriptors grew from ", first.open_fds, " to ", last.open_fds, "; ");
  }
  if (last.rss_anon_bytes > first.rss_anon_bytes * kRssGrowth + kRssSlackBytes) {
    absl::StrAppend(&grew, "anonymous memory grew from ", FormatBytes(first.rss_anon_bytes), " to ",
                    FormatBytes(last.rss_anon_bytes), "; ");
  }
  if (grew.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("the daemon's footprint is not flat between ",
                                                    absl::StrFormat("%.0f s and %.0f s", base->at_s,
                                                                    samples_.back().at_s),
                                                    ": ", grew.substr(0, grew.size() - 2)));
}

std::string SoakMonitor::Markdown() const {
  const Sample* base = WarmedUp();
  if (base == nullptr) return "The daemon's footprint: too few samples.\n";
  uint64_t most_rss = 0, most_fds = 0;
  for (const Sample& s : samples_) {
    most_rss = std::max(most_rss, s.footprint.rss_anon_bytes);
    most_fds = std::max(most_fds, s.footprint.open_fds);
  }
  const Sample& last = samples_.back();
  const absl::Status verdict = Verdict();
  std::string text = absl::StrFormat(
      "The daemon's footprint, sampled every second (%d samples), the warmed-up sample (a quarter of the way in) "
      "against the last: %s\n\n| sample | at (s) | steps so far | anonymous memory | open descriptors |\n"
      "|---|---|---|---|---|\n",
      samples_.size(), verdict.ok() ? "flat" : std::string(verdict.message()));
  absl::StrAppendFormat(&text, "| warmed up | %.0f | %d | %s | %d |\n", base->at_s, base->steps,
                        FormatBytes(base->footprint.rss_anon_bytes), base->footprint.open_fds);
  absl::StrAppendFormat(&text, "| last | %.0f | %d | %s | %d |\n", last.at_s, last.steps,
                        FormatBytes(last.footprint.rss_anon_bytes), last.footprint.open_fds);
  absl::StrAppendFormat(&text, "| largest | | | %s | %d |\n", FormatBytes(most_rss), most_fds);
  return text;
}

std::string SoakMonitor::Csv() const {
  std::string csv = "at_s,steps,rss_anon_bytes,open_fds\n";
  for (const Sample& s : samples_) {
    absl::StrAppendFormat(&csv, "%.1f,%d,%d,%d\n", s.at_s, s.steps, s.footprint.rss_anon_bytes, s.footprint.open_fds);
  }
  return csv;
}

}  // namespace sparsepool::bench

#include "bench/arrivals.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace sparsepool::bench {

absl::StatusOr<std::vector<Arrival>> GenerateArrivals(const ArrivalParams& p) {
  if (p.requests == 0 || !(p.rate_per_s > 0) || p.output_tokens == 0 || p.page_tokens == 0 ||
      p.min_context < p.page_tokens || p.max_context < p.min_context) {
    return absl::InvalidArgumentError(absl::StrCat(
        "arrivals need requests, a positive rate, outputs, and a context range within [page, max]: got ",
        p.requests, " requests at ", p.rate_per_s, "/s, contexts ", p.min_context, "-", p.max_context,
        ", outputs of ", p.output_tokens, ", pages of ", p.page_tokens));
  }
  std::mt19937_64 rng(p.seed);
  std::exponential_distribution<double> gap(p.rate_per_s);
  std::uniform_real_distribution<double> octave(std::log2(double(p.min_context)), std::log2(double(p.max_context)));
  std::vector<Arrival> out;
  double at = 0;
  for (uint32_t i = 0; i < p.requests; ++i) {
    at += gap(rng);
    const uint64_t drawn = static_cast<uint64_t>(std::exp2(octave(rng)));
    const uint64_t clamped = std::clamp<uint64_t>(drawn, p.min_context, p.max_context);
    out.push_back(Arrival{at, std::max<uint64_t>(p.page_tokens, clamped / p.page_tokens * p.page_tokens),
                          p.output_tokens});
  }
  return out;
}

}  // namespace sparsepool::bench

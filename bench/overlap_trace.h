// Indexer-like top-k selections for consecutive decode steps of one sequence-layer:
// attention sinks and a recent window every step, the rest kept from the previous step
// so that `overlap` of each step's top-k was in the previous one, and replacements
// drawn by a fixed, skewed importance over the context, so that some tokens recur
// after dropping out. The context may grow between steps (a decode step appends a
// token): Next(tokens) selects from the first `tokens` only, and the window follows
// the end. bench/trace_file.h builds whole multi-layer traces from it.
#ifndef SPARSEPOOL_BENCH_OVERLAP_TRACE_H_
#define SPARSEPOOL_BENCH_OVERLAP_TRACE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace sparsepool::bench {

class OverlapTrace {
 public:
  OverlapTrace(uint32_t tokens, uint32_t k, double overlap, uint64_t seed, uint32_t sinks = 4,
               uint32_t window = 128, double skew = 0.9)
      : tokens_(tokens), k_(k), overlap_(overlap), sinks_(sinks), window_(window), rng_(seed),
        chosen_(tokens, false) {
    // Importance: a random permutation of the tokens weighted 1 / (rank + 1)^skew.
    order_.resize(tokens);
    std::iota(order_.begin(), order_.end(), 0);
    std::shuffle(order_.begin(), order_.end(), rng_);
    cdf_.resize(tokens);
    double total = 0;
    for (uint32_t r = 0; r < tokens; ++r) cdf_[r] = total += 1.0 / std::pow(r + 1.0, skew);
    for (double& c : cdf_) c /= total;
  }

  // The next step's k selected tokens (distinct), over all `tokens` of the constructor.
  const std::vector<int32_t>& Next() { return Next(tokens_); }

  // The same over a context of `tokens` (at most the constructor's): the window ends at
  // tokens - 1, and tokens past it are never chosen.
  const std::vector<int32_t>& Next(uint32_t tokens) {
    tokens = std::min(tokens, tokens_);
    const uint32_t fixed = std::min<uint32_t>(k_, sinks_ + window_);
    std::vector<int32_t> next;
    next.reserve(k_);
    std::fill(chosen_.begin(), chosen_.end(), false);
    auto take = [&](uint32_t t) {
      if (next.size() < k_ && !chosen_[t]) {
        chosen_[t] = true;
        next.push_back(static_cast<int32_t>(t));
      }
    };
    for (uint32_t s = 0; s < sinks_ && s < tokens; ++s) take(s);
    for (uint32_t w = 0; w < window_ && w < tokens; ++w) take(tokens - 1 - w);
    if (!current_.empty()) {
      // Keep each earlier pick with the probability that makes `overlap` of k repeat.
      const double keep = std::clamp((overlap_ * k_ - fixed) / double(k_ - fixed), 0.0, 1.0);
      std::bernoulli_distribution kept(keep);
      for (size_t i = fixed; i < current_.size(); ++i) {
        if (kept(rng_)) take(static_cast<uint32_t>(current_[i]));
      }
    }
    std::uniform_real_distribution<double> u(0, 1);
    while (next.size() < std::min<uint32_t>(k_, tokens)) {
      const uint32_t rank = static_cast<uint32_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u(rng_)) - cdf_.begin());
      const uint32_t token = order_[std::min(rank, tokens_ - 1)];
      if (token < tokens) take(token);  // a token not yet appended: draw again
    }
    current_ = std::move(next);
    return current_;
  }

 private:
  uint32_t tokens_;
  uint32_t k_;
  double overlap_;
  uint32_t sinks_;
  uint32_t window_;
  std::mt19937_64 rng_;
  std::vector<bool> chosen_;
  std::vector<uint32_t> order_;
  std::vector<double> cdf_;
  std::vector<int32_t> current_;
};

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_OVERLAP_TRACE_H_

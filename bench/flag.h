// The benchmarks' list flags (std::vector<std::string>: Abseil splits --flag=a,b,c on
// commas) read as numbers.
#ifndef SPARSEPOOL_BENCH_FLAG_H_
#define SPARSEPOOL_BENCH_FLAG_H_

#include <string>
#include <vector>

#include "absl/strings/numbers.h"

namespace sparsepool::bench {

// True when every part is a positive number (and there is one); `out` holds them.
template <typename T>
bool PositiveNumbers(const std::vector<std::string>& parts, std::vector<T>& out) {
  out.clear();
  for (const std::string& part : parts) {
    T n = 0;
    if (!absl::SimpleAtoi(part, &n) || n <= 0) return false;
    out.push_back(n);
  }
  return !out.empty();
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_FLAG_H_

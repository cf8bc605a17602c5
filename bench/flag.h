// "--key=value" command-line arguments of the benchmarks and the demo, split once.
#ifndef SPARSEPOOL_BENCH_FLAG_H_
#define SPARSEPOOL_BENCH_FLAG_H_

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace sparsepool::bench {

struct Flag {
  std::string key;    // "--key"
  std::string value;  // "" when the argument has no '='
};

inline Flag SplitFlag(const std::string& arg) {
  const size_t eq = arg.find('=');
  return {arg.substr(0, eq), eq == std::string::npos ? "" : arg.substr(eq + 1)};
}

// Parses "N,N,...": true when every part is a positive number (and there is one).
template <typename T>
bool ParsePositiveList(const std::string& value, std::vector<T>& out) {
  out.clear();
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    T n = 0;
    if (!absl::SimpleAtoi(part, &n) || n <= 0) return false;
    out.push_back(n);
  }
  return !out.empty();
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_FLAG_H_

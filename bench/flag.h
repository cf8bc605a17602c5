// "--key=value" command-line arguments of the benchmarks and the demo, split once.
#ifndef SPARSEPOOL_BENCH_FLAG_H_
#define SPARSEPOOL_BENCH_FLAG_H_

#include <string>

namespace sparsepool::bench {

struct Flag {
  std::string key;    // "--key"
  std::string value;  // "" when the argument has no '='
};

inline Flag SplitFlag(const std::string& arg) {
  const size_t eq = arg.find('=');
  return {arg.substr(0, eq), eq == std::string::npos ? "" : arg.substr(eq + 1)};
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_FLAG_H_

// The benchmarks' progress on stderr: one status line rewritten in place on a terminal,
// and a plain line per finished cell (on a terminal or not).
#ifndef SPARSEPOOL_BENCH_PROGRESS_LINE_H_
#define SPARSEPOOL_BENCH_PROGRESS_LINE_H_

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace sparsepool::bench {

class ProgressLine {
 public:
  ProgressLine() : tty_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}
  void Show(const std::string& cell, const std::string& what) {
    if (!tty_) return;
    std::fprintf(stderr, "\r\033[K[%3.0fs] %s: %s", Elapsed(), cell.c_str(), what.c_str());
    std::fflush(stderr);
  }
  void Done(const std::string& cell, const std::string& outcome) {
    std::fprintf(stderr, tty_ ? "\r\033[K[%3.0fs] %s: %s\n" : "[%3.0fs] %s: %s\n", Elapsed(), cell.c_str(),
                 outcome.c_str());
  }

 private:
  double Elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  bool tty_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_PROGRESS_LINE_H_

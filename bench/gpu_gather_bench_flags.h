// sparsepool_gpu_gather_bench's command line, parsed in plain C++ (nvcc compiles the
// benchmark, and Abseil's flag headers stay out of .cu files): the options as a plain
// struct.
#ifndef SPARSEPOOL_BENCH_GPU_GATHER_BENCH_FLAGS_H_
#define SPARSEPOOL_BENCH_GPU_GATHER_BENCH_FLAGS_H_

#include <cstdint>
#include <vector>

namespace sparsepool::bench {

// The flags' values (the defaults are the flags', bench/gpu_gather_bench_flags.cc).
struct GpuGatherBenchOptions {
  uint64_t big_gib = 0;           // --big_gib: the big pools' size, GiB; 0: no big pool
  int reps = 0;                   // --reps: timed repetitions per gather
  std::vector<uint64_t> extents;  // --extents: only the extent layouts over big_gib, extent sizes in pages
  int churn_ops = 0;              // --churn: only the gather after this many allocator operations
};

// Parses argv (--help and its variants exit 0, an unknown flag or a value of the wrong
// type exits 1, a value the benchmark refuses exits 2, all having said why).
GpuGatherBenchOptions ParseGpuGatherBenchCommandLine(int argc, char** argv);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_GPU_GATHER_BENCH_FLAGS_H_

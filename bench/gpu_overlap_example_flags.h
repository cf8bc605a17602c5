// sparsepool_gpu_overlap_example's command line, parsed in plain C++ (nvcc compiles the
// example, and Abseil's flag headers stay out of .cu files). It takes no flag: --help
// says what it does and exits 0 without touching the GPU.
#ifndef SPARSEPOOL_BENCH_GPU_OVERLAP_EXAMPLE_FLAGS_H_
#define SPARSEPOOL_BENCH_GPU_OVERLAP_EXAMPLE_FLAGS_H_

namespace sparsepool::bench {

// Parses argv: --help (and its variants) exits 0, an unknown flag exits 1, a positional
// argument exits 2, each having said why.
void ParseGpuOverlapExampleCommandLine(int argc, char** argv);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_GPU_OVERLAP_EXAMPLE_FLAGS_H_

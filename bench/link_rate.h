// The link's rate as the GPU benchmarks measure it: pinned host-to-device cudaMemcpy of
// 1 GiB, timed with events, the median of `reps` after two warm-ups. Every rate a GPU
// benchmark reports is put against this figure, measured in the same run.
#ifndef SPARSEPOOL_BENCH_LINK_RATE_H_
#define SPARSEPOOL_BENCH_LINK_RATE_H_

#include <cuda_runtime_api.h>

#include <cstring>
#include <vector>

#include "bench/median.h"
#include "kernels/cuda_check.h"

namespace sparsepool::bench {

// GB/s. Ends the program on a CUDA error (SPARSEPOOL_CHECK_CUDA).
inline double PinnedHostToDeviceGBs(cudaStream_t stream = nullptr, int reps = 10) {
  const size_t bytes = size_t{1} << 30;
  void* host = nullptr;
  void* device = nullptr;
  SPARSEPOOL_CHECK_CUDA(cudaMallocHost(&host, bytes));
  SPARSEPOOL_CHECK_CUDA(cudaMalloc(&device, bytes));
  std::memset(host, 0x5A, bytes);
  cudaEvent_t start, stop;
  SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&start));
  SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<double> rates;
  for (int rep = -2; rep < reps; ++rep) {
    SPARSEPOOL_CHECK_CUDA(cudaEventRecord(start, stream));
    SPARSEPOOL_CHECK_CUDA(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream));
    SPARSEPOOL_CHECK_CUDA(cudaEventRecord(stop, stream));
    SPARSEPOOL_CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    if (rep >= 0) rates.push_back(bytes / (ms * 1e-3) / 1e9);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(device);
  cudaFreeHost(host);
  return Median(rates);
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LINK_RATE_H_

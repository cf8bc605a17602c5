// For benchmarks and examples, which have no caller to return an error to: a CUDA call
// that fails ends the program with the call, file, line and CUDA's message.
#ifndef SPARSEPOOL_KERNELS_CUDA_CHECK_H_
#define SPARSEPOOL_KERNELS_CUDA_CHECK_H_

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>

#define SPARSEPOOL_CHECK_CUDA(call)                                                   \
  do {                                                                               \
    const cudaError_t error_ = (call);                                               \
    if (error_ != cudaSuccess) {                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call,             \
                   cudaGetErrorString(error_));                                      \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)

#endif  // SPARSEPOOL_KERNELS_CUDA_CHECK_H_

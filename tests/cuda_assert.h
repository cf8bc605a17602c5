// ASSERT for CUDA calls in GPU tests: fails the test with the call and CUDA's message.
#ifndef SPARSEPOOL_TESTS_CUDA_ASSERT_H_
#define SPARSEPOOL_TESTS_CUDA_ASSERT_H_

#include <cuda_runtime_api.h>

#include "gtest/gtest.h"

#define CUDA_OK(call)                                                              \
  do {                                                                             \
    const cudaError_t error_ = (call);                                             \
    ASSERT_EQ(error_, cudaSuccess) << #call << ": " << cudaGetErrorString(error_); \
  } while (0)

#endif  // SPARSEPOOL_TESTS_CUDA_ASSERT_H_

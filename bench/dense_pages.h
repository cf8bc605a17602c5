// Copies kept as one dense page each (a pulled prefix, a cache laid down in HBM): the
// device array of their region offsets the gather kernel's page tables point into,
// copy i at i * page_bytes.
#ifndef SPARSEPOOL_BENCH_DENSE_PAGES_H_
#define SPARSEPOOL_BENCH_DENSE_PAGES_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cuda_buffer.h"

namespace sparsepool::bench {

inline absl::StatusOr<kernels::CudaBuffer<uint64_t>> DensePageOffsets(uint64_t pages, uint64_t page_bytes) {
  std::vector<uint64_t> offsets(pages);
  for (uint64_t i = 0; i < pages; ++i) offsets[i] = i * page_bytes;
  auto device = kernels::CudaBuffer<uint64_t>::Allocate(pages, kernels::CudaMemory::kDevice);
  if (!device.ok()) return device.status();
  if (absl::Status s = kernels::CudaToStatus(
          cudaMemcpy(device->data(), offsets.data(), device->bytes(), cudaMemcpyHostToDevice), "page offsets");
      !s.ok()) {
    return s;
  }
  return device;
}

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_DENSE_PAGES_H_

// A pool region as a GPU worker has it, for GPU tests: a shared mapping filled with
// random bytes and registered for the GPU. RAII; needs a CUDA device.
#ifndef SPARSEPOOL_TESTS_GPU_REGION_H_
#define SPARSEPOOL_TESTS_GPU_REGION_H_

#include <cuda_runtime.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <random>

namespace sparsepool::testing {

class GpuRegion {
 public:
  GpuRegion(uint64_t bytes, uint64_t seed) : bytes_(bytes) {
    void* mapped = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) return;
    host_ = static_cast<std::byte*>(mapped);
    std::mt19937_64 rng(seed);
    for (uint64_t i = 0; i < bytes / 8; ++i) reinterpret_cast<uint64_t*>(host_)[i] = rng();
    void* device = nullptr;
    if (cudaHostRegister(host_, bytes, cudaHostRegisterMapped) != cudaSuccess ||
        cudaHostGetDevicePointer(&device, host_, 0) != cudaSuccess) {
      return;
    }
    registered_ = true;
    device_ = static_cast<const std::byte*>(device);
  }
  ~GpuRegion() {
    if (registered_) cudaHostUnregister(host_);
    if (host_ != nullptr) munmap(host_, bytes_);
  }
  GpuRegion(const GpuRegion&) = delete;
  GpuRegion& operator=(const GpuRegion&) = delete;

  bool ok() const { return device_ != nullptr; }
  std::byte* host() const { return host_; }
  const std::byte* device() const { return device_; }
  uint64_t bytes() const { return bytes_; }

 private:
  uint64_t bytes_;
  std::byte* host_ = nullptr;
  const std::byte* device_ = nullptr;
  bool registered_ = false;
};

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_GPU_REGION_H_

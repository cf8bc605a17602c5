// Owned CUDA allocations (RAII): device memory, and pinned host memory that copies to
// and from the GPU asynchronously. Move-only; freed when they go out of scope.
#ifndef SPARSEPOOL_KERNELS_CUDA_BUFFER_H_
#define SPARSEPOOL_KERNELS_CUDA_BUFFER_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace sparsepool::kernels {

enum class CudaMemory { kDevice, kPinnedHost };

template <typename T>
class CudaBuffer {
 public:
  static absl::StatusOr<CudaBuffer> Allocate(size_t count, CudaMemory memory) {
    CudaBuffer buffer;
    buffer.memory_ = memory;
    buffer.count_ = count;
    if (count == 0) return buffer;
    void* pointer = nullptr;
    const cudaError_t e = memory == CudaMemory::kDevice ? cudaMalloc(&pointer, count * sizeof(T))
                                                        : cudaMallocHost(&pointer, count * sizeof(T));
    if (e != cudaSuccess) {
      return absl::ResourceExhaustedError(absl::StrCat("allocating ", count * sizeof(T), " bytes of ",
                                                       memory == CudaMemory::kDevice ? "GPU" : "pinned host",
                                                       " memory: ", cudaGetErrorString(e)));
    }
    buffer.data_ = static_cast<T*>(pointer);
    return buffer;
  }

  CudaBuffer() = default;
  CudaBuffer(CudaBuffer&& other) noexcept { *this = std::move(other); }
  CudaBuffer& operator=(CudaBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    std::swap(memory_, other.memory_);
    return *this;
  }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  ~CudaBuffer() {
    if (data_ == nullptr) return;
    if (memory_ == CudaMemory::kDevice) {
      cudaFree(data_);
    } else {
      cudaFreeHost(data_);
    }
  }

  T* data() const { return data_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
  CudaMemory memory_ = CudaMemory::kDevice;
};

// A CUDA status as absl::Status, naming what was being done.
inline absl::Status CudaToStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(e)));
}

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_CUDA_BUFFER_H_

#include "kernels/cuda_pointer.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"

namespace sparsepool::kernels {

absl::Status RequireCudaDevice(absl::string_view who) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) return absl::OkStatus();
  cudaGetLastError();  // clear the sticky "no device" error
  return absl::FailedPreconditionError(absl::StrCat("no CUDA device: ", who, " needs one"));
}

absl::Status CheckGpuPointer(const void* pointer, const char* name) {
  if (pointer == nullptr) return absl::InvalidArgumentError(absl::StrCat(name, " is null"));
  cudaPointerAttributes attributes;
  const cudaError_t error = cudaPointerGetAttributes(&attributes, pointer);
  if (error != cudaSuccess) {
    cudaGetLastError();  // clear it: it is ours to report, not the next call's
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is not memory CUDA knows: ", cudaGetErrorString(error)));
  }
  if (attributes.type == cudaMemoryTypeUnregistered) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, " is plain host memory; register it (cudaHostRegister) or use device memory"));
  }
  if (attributes.type == cudaMemoryTypeHost && attributes.devicePointer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is pinned host memory not mapped for the GPU"));
  }
  return absl::OkStatus();
}

absl::Status CheckStream(cudaStream_t stream) {
  if (stream == nullptr) return absl::OkStatus();
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) == cudaSuccess && capture != cudaStreamCaptureStatusNone) {
    return absl::OkStatus();
  }
  const cudaError_t query = cudaStreamQuery(stream);
  if (query != cudaSuccess && query != cudaErrorNotReady) {
    cudaGetLastError();
    return absl::InvalidArgumentError(absl::StrCat("stream is not usable: ", cudaGetErrorString(query)));
  }
  return absl::OkStatus();
}

}  // namespace sparsepool::kernels

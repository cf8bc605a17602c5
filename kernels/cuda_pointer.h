// Launcher argument checks: is a pointer one the GPU can dereference?
#ifndef SPARSEPOOL_KERNELS_CUDA_POINTER_H_
#define SPARSEPOOL_KERNELS_CUDA_POINTER_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sparsepool::kernels {

// OK for device memory, managed memory, and host memory registered or allocated with
// CUDA and mapped for the GPU; InvalidArgument naming `name` otherwise (null included).
absl::Status CheckGpuPointer(const void* pointer, const char* name);

// OK when this process sees a CUDA device; FailedPrecondition "no CUDA device: WHO
// needs one" otherwise (the error CUDA left behind cleared). `who`: what asks, for the
// message ("a decode session").
absl::Status RequireCudaDevice(absl::string_view who);

// OK for a stream that can take work. A stream being captured into a CUDA graph is
// not queried (a query would end the capture with an error): it is usable by definition.
absl::Status CheckStream(cudaStream_t stream);

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_CUDA_POINTER_H_

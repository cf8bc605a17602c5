// Launch helpers for session_kernels.cu (no checks: client/decode_session.cc owns every
// pointer it passes). Free of Abseil so that nvcc compiles it as it is.
#ifndef SPARSEPOOL_KERNELS_SESSION_KERNELS_H_
#define SPARSEPOOL_KERNELS_SESSION_KERNELS_H_

#include <cuda_runtime_api.h>

#include "kernels/session_types.h"

namespace sparsepool::kernels {

// The most rows a decode session's batch holds (one block checks them all at a step's end).
inline constexpr uint32_t kMaxSessionBatch = 1024;

cudaError_t LaunchBeginStep(const SessionStepArgs& args, cudaStream_t stream);
cudaError_t LaunchEndStep(const SessionStepArgs& args, cudaStream_t stream);

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_SESSION_KERNELS_H_

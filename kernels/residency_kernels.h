// Launch helper for residency_kernels.cu; the checks live in residency_cache.cc.
#ifndef SPARSEPOOL_KERNELS_RESIDENCY_KERNELS_H_
#define SPARSEPOOL_KERNELS_RESIDENCY_KERNELS_H_

#include <cuda_runtime_api.h>

#include "kernels/residency_types.h"

namespace sparsepool::kernels {

cudaError_t LaunchResidencyStep(const ResidencyLaunch& launch, cudaStream_t stream);

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_RESIDENCY_KERNELS_H_

// Launch helper for residency_kernels.cu; the checks live in residency_cache.cc.
#ifndef SPARSEPOOL_KERNELS_RESIDENCY_KERNELS_H_
#define SPARSEPOOL_KERNELS_RESIDENCY_KERNELS_H_

#include <cuda_runtime_api.h>

#include "kernels/residency_types.h"

namespace sparsepool::kernels {

// The step's two kernels: the lookup (slots assigned, misses listed) and the fill (the
// misses' entries copied in). Step launches both.
cudaError_t LaunchResidencyLookup(const ResidencyLaunch& launch, cudaStream_t stream);
cudaError_t LaunchResidencyFill(const ResidencyLaunch& launch, cudaStream_t stream);
cudaError_t LaunchResidencyStep(const ResidencyLaunch& launch, cudaStream_t stream);
// Empties instances [first, first + count) in one kernel.
cudaError_t LaunchResidencyReset(const ResidencyState& state, uint32_t first, uint32_t count, cudaStream_t stream);

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_RESIDENCY_KERNELS_H_

// The strategies that land entries in GPU memory straight from the mapped pool region
// (CXL or host memory, registered with CUDA), through bench/gpu_fetcher.h:
//   cxl-gpu-topk         one gather kernel per layer into an HBM decode buffer
//   cxl-gpu-topk-cache   the GPU residency cache: lookup kernel, misses gathered into
//                        their HBM slots, hits never cross the link
// Indices are copied to the GPU before each layer's fetch, inside the timing (an
// engine's indexer would leave them there: [rows][k] int32, 8 KiB a row).
#ifndef SPARSEPOOL_BENCH_GPU_STRATEGIES_H_
#define SPARSEPOOL_BENCH_GPU_STRATEGIES_H_

#include <memory>

#include "absl/status/statusor.h"
#include "bench/fetch_strategy.h"

namespace sparsepool::bench {

// FailedPrecondition when this process sees no CUDA device. `client` uses transport
// "cxl" (the GPU reads the mapped region).
absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeGpuFetch(std::string name, std::unique_ptr<Client> client);
absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeGpuCacheFetch(std::string name, std::unique_ptr<Client> client,
                                                                 uint32_t cache_capacity);
// hbm-only (bench/hbm_strategy.cc): no pool on the decode path; the batch's whole cache
// laid down in HBM by prefill (untimed), each layer's top-k gathered from it by the
// same kernel. ResourceExhausted when the batch's cache does not fit in HBM.
absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeHbmOnlyFetch(std::string name, std::unique_ptr<Client> client);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_GPU_STRATEGIES_H_

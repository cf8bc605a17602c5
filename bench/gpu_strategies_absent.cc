// sparsepool-bench's GPU strategies in a build without the CUDA toolkit: each says why
// it cannot run, and the bench skips it as it skips them on a host without a GPU.
#include "bench/gpu_strategies.h"
#include "common/built_without_cuda.h"

namespace sparsepool::bench {

absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeGpuFetch(std::string name, std::unique_ptr<Client>) {
  return BuiltWithoutCuda(name);
}
absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeGpuCacheFetch(std::string name, std::unique_ptr<Client>,
                                                                 uint32_t) {
  return BuiltWithoutCuda(name);
}
absl::StatusOr<std::unique_ptr<FetchStrategy>> MakeHbmOnlyFetch(std::string name, std::unique_ptr<Client>) {
  return BuiltWithoutCuda(name);
}

}  // namespace sparsepool::bench

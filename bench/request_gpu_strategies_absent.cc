// The request-level run's GPU strategies in a build without the CUDA toolkit: each says
// why it cannot run, and sparsepool_serve_bench skips it.
#include "bench/request_strategies.h"
#include "common/built_without_cuda.h"

namespace sparsepool::bench {

absl::StatusOr<std::unique_ptr<RequestStrategy>> MakeSessionRequests(std::string name, std::unique_ptr<Client>,
                                                                     const RequestShape&, uint32_t) {
  return BuiltWithoutCuda(name);
}

absl::StatusOr<std::unique_ptr<RequestStrategy>> MakeGpuPrefixPullRequests(std::string name, std::unique_ptr<Client>,
                                                                           std::unique_ptr<Client>,
                                                                           const RequestShape&, bool) {
  return BuiltWithoutCuda(name);
}

}  // namespace sparsepool::bench

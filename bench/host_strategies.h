// The strategies that land entries in host memory, through the client library:
//   rdma-full-prefix     UCX gets of each row's whole prefix (dense-attention pools)
//   rdma-topk            UCX gets of the selected entries only
//   cxl-cpu-topk         loads from the mapped region (CXL / host memory), CPU copies
//   cxl-cpu-topk-cache   the residency cache's algorithm (kernels/residency_model.h, the
//                        CPU twin of the HBM cache) decides hits; only misses are loaded,
//                        into the cache's slots. Without a GPU, it shows the bytes the
//                        cache saves on the link; the GPU strategies time the real cache.
#ifndef SPARSEPOOL_BENCH_HOST_STRATEGIES_H_
#define SPARSEPOOL_BENCH_HOST_STRATEGIES_H_

#include <memory>

#include "bench/fetch_strategy.h"

namespace sparsepool::bench {

// `client` must use the transport the strategy names (ClientOptions::transport);
// full_prefix fetches every row's whole prefix (bench/prefix_fetch.h). cache_capacity:
// slots per (sequence, layer) for the cache strategy.
std::unique_ptr<FetchStrategy> MakeClientFetch(std::string name, std::unique_ptr<Client> client,
                                               bool full_prefix);
std::unique_ptr<FetchStrategy> MakeHostCacheFetch(std::string name, std::unique_ptr<Client> client,
                                                  uint32_t cache_capacity);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_HOST_STRATEGIES_H_

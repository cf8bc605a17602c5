// Whether this host can map a cluster node's region itself (a CXL device on its switch,
// or host memory on the same machine): the region's path opens here and its header
// carries the region's uuid. Such nodes are reached by load and store, the others over
// RDMA.
#ifndef SPARSEPOOL_CLIENT_REGION_PROBE_H_
#define SPARSEPOOL_CLIENT_REGION_PROBE_H_

#include <string>

namespace sparsepool::internal {

bool CanMapRegion(const std::string& path, const std::string& uuid);

}  // namespace sparsepool::internal

#endif  // SPARSEPOOL_CLIENT_REGION_PROBE_H_

// Sequence ids name their node. In a pool cluster (cluster/), node n (1..kMaxNodeId,
// claimed in etcd so that no two nodes share it) issues ids in
// [n << kNodeIdShift, (n + 1) << kNodeIdShift): any client routes a call on a sequence to
// its node from the id alone, so sequences keep working while etcd is unreachable, and a
// decode worker on another host adopts a sequence by its id. A daemon on its own is
// node 0 and issues ids from 1 up, as before clusters existed.
#ifndef SPARSEPOOL_COMMON_NODE_IDS_H_
#define SPARSEPOOL_COMMON_NODE_IDS_H_

#include <cstdint>

#include "common/region_format.h"

namespace sparsepool {

inline constexpr int kNodeIdShift = 48;
// Ids stay below region_format::kMaxSequenceId (2^62).
inline constexpr uint32_t kMaxNodeId = (1u << (62 - kNodeIdShift)) - 1;

inline uint32_t NodeOfSequence(uint64_t id) { return static_cast<uint32_t>(id >> kNodeIdShift); }
inline uint64_t FirstIdOfNode(uint32_t node) { return node == 0 ? 1 : uint64_t{node} << kNodeIdShift; }
// One past the last id the node may issue.
inline uint64_t EndIdOfNode(uint32_t node) {
  return node == 0 ? region_format::kMaxSequenceId : (uint64_t{node} + 1) << kNodeIdShift;
}

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_NODE_IDS_H_

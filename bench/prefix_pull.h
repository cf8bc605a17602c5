// The RDMA baseline as pools built for dense attention run it (Mooncake, LMCache):
// when a request is admitted its whole prefix, every layer, is pulled from the pool
// into the decode worker's local memory, once; decode steps then gather their top-k
// from that copy and touch no remote memory. What it pays is admission time (the
// pull; pulls of one batch share the wire), local memory (a copy of every request's
// whole cache), and nothing per step but the tokens appended since the pull.
//
// Here the local copy is host memory (an engine would use HBM while it fits, pinned
// host memory beyond); the pull goes through the strategy's client (UCX, or verbs).
// The entries a step appends are copied into the local copy from the pool with the
// append (Appended): a stand-in for the engine writing its new entries there itself,
// so they count as no link bytes and their time goes to the append, not the fetch.
#ifndef SPARSEPOOL_BENCH_PREFIX_PULL_H_
#define SPARSEPOOL_BENCH_PREFIX_PULL_H_

#include <memory>
#include <string>

#include "bench/fetch_strategy.h"

namespace sparsepool::bench {

std::unique_ptr<FetchStrategy> MakePrefixPullFetch(std::string name, std::unique_ptr<Client> client);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_PREFIX_PULL_H_

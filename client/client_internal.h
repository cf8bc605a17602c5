// What the client's own GPU path, its C ABI and the benchmarks need of a Client beyond
// its public surface (client/sparsepool_client.h): the layouts the data path computes
// addresses from, and the fence its writes hold. Not for engines.
#ifndef SPARSEPOOL_CLIENT_CLIENT_INTERNAL_H_
#define SPARSEPOOL_CLIENT_CLIENT_INTERNAL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "client/sparsepool_client.h"
#include "common/layout.h"
#include "common/rate_pacer.h"
#include "common/release_fence.h"

namespace sparsepool::internal {

// Each answers FailedPrecondition for a Client that Client::Connect did not make.
// The sequence's current layout, asked of the daemon (and cached for the data path).
absl::StatusOr<SequenceLayout> Layout(Client& client, SequenceId id);
// The layout the data path uses: the cached one (asked of the daemon when absent),
// shared and immutable.
absl::StatusOr<std::shared_ptr<const SequenceLayout>> CachedLayout(Client& client, SequenceId id);
// The fence the client's writes hold (common/release_fence.h); the GPU path's writes
// hold it too. Null when its keepalive_interval is zero (writes not fenced).
absl::StatusOr<ReleaseFence*> Fence(Client& client);

// The pacer options.fetch_bytes_per_second asks for (shared through
// options.fetch_pacer_file when it names one); null when the rate is 0.
absl::StatusOr<std::shared_ptr<RatePacer>> FetchPacerFor(const ClientOptions& options);
// A client of the one daemon at options.address (options.etcd empty) whose fetches
// wait on `fetch_pacer` (null: unpaced), which a cluster client shares between its
// node connections so that its fetches over all nodes keep to one rate.
absl::StatusOr<std::unique_ptr<Client>> ConnectNode(const ClientOptions& options,
                                                    std::shared_ptr<RatePacer> fetch_pacer);

}  // namespace sparsepool::internal

#endif  // SPARSEPOOL_CLIENT_CLIENT_INTERNAL_H_

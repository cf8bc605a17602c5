// The RDMA data plane over UCX: for each layer and step, one batch of gets for the
// selected entries (adjacent tokens of a page coalesced into one get) with one wait for
// the batch; puts for writes. The daemon publishes, through GetLayout, its worker
// address, each region's packed remote key and base address (service/ucx_publisher.h).
// A daemon that vanishes mid-batch gives Unavailable within the timeout; its endpoint
// is dropped so that a restarted daemon is reached afresh.
//
// Thread-safe: calls are serialised on the one UCX worker.
#ifndef SPARSEPOOL_TRANSPORT_RDMA_UCX_DATA_PLANE_H_
#define SPARSEPOOL_TRANSPORT_RDMA_UCX_DATA_PLANE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "transport/data_plane.h"
#include "transport/rdma/ucx_context.h"

namespace sparsepool {

class UcxDataPlane final : public DataPlane {
 public:
  static absl::StatusOr<std::unique_ptr<UcxDataPlane>> Create(absl::Duration timeout);
  const char* name() const override { return "ucx"; }

  // Gets issued so far; with coalescing fewer than the entries fetched.
  uint64_t gets_issued() const;
  // Turns coalescing of adjacent entries off (the one-get-per-entry baseline).
  void set_coalesce(bool coalesce);

 protected:
  absl::Status GatherValidated(const GatherBatch& batch) override;
  absl::Status WriteValidated(const WriteRange& range) override;

 private:
  explicit UcxDataPlane(absl::Duration timeout) : timeout_(timeout) {}

  // The endpoint to a region's daemon and the region's key, made on first use.
  struct Peer {
    ucp_ep_h ep;
    ucp_rkey_h rkey;
  };
  absl::StatusOr<Peer> PeerFor(const RegionRef& region) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads each row's record (one get each) and checks that its sequence is still live.
  absl::Status CheckLive(absl::Span<const SequenceLayout* const> rows, absl::Span<const Peer> peers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for the batch; on failure forgets the peers (their endpoints may be dead).
  absl::Status Finish(std::vector<void*>& requests, const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  std::unique_ptr<UcxContext> ucx_ ABSL_GUARDED_BY(mu_);
  // Endpoints by daemon worker address; keys by worker address and packed key.
  absl::flat_hash_map<std::string, std::unique_ptr<UcxEndpoint>> endpoints_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<UcxRkey>> rkeys_ ABSL_GUARDED_BY(mu_);
  uint64_t gets_ ABSL_GUARDED_BY(mu_) = 0;
  bool coalesce_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_UCX_DATA_PLANE_H_

// The daemon's side of the libibverbs data plane (--verbs=true): registers every region
// with the RDMA device for remote READ and WRITE, adds each region's remote key and base
// address to the layouts it serves (Annotate), and answers ConnectVerbs by creating an
// RC queue pair for the client and connecting it to the client's. The daemon's CPU never
// touches the data path afterwards: the NIC serves the reads.
//
// A client that connects again (after a failure, or a restart) replaces its queue pair.
// Not run on RDMA hardware yet (this project's machines have no RDMA device; Create says
// so with FailedPrecondition).
#ifndef SPARSEPOOL_SERVICE_VERBS_ACCEPTOR_H_
#define SPARSEPOOL_SERVICE_VERBS_ACCEPTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/layout.h"
#include "service/ucx_publisher.h"
#include "transport/rdma/verbs_data_plane.h"
#include "transport/rdma/verbs_queue_pair.h"

namespace sparsepool {

class VerbsAcceptor {
 public:
  // `regions` in region-index order; they must outlive the acceptor.
  static absl::StatusOr<std::unique_ptr<VerbsAcceptor>> Create(const VerbsOptions& options,
                                                               const std::vector<PublishedRegion>& regions);

  // Adds the remote key and base address of region `ref.index`.
  void Annotate(RegionRef& ref) const;
  // Connects a queue pair of ours to the client's; returns ours.
  absl::StatusOr<VerbsPeerInfo> Accept(const std::string& client_id, const VerbsPeerInfo& client);
  // Destroys the client's queue pair (its lease expired; it reconnects if it returns).
  void Forget(const std::string& client_id);

 private:
  explicit VerbsAcceptor(const VerbsOptions& options) : options_(options) {}

  const VerbsOptions options_;
  std::unique_ptr<VerbsDevice> device_;
  ProtectionDomain pd_;
  std::vector<PublishedRegion> regions_;
  std::vector<MemoryRegistration> registrations_;  // by region index
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<RcQueuePair>> clients_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_VERBS_ACCEPTOR_H_

// The daemon's side of the libibverbs data plane (--verbs=true): registers every region
// with the RDMA device for remote READ and WRITE, adds each region's remote key and base
// address to the layouts it serves (Annotate), and answers ConnectVerbs by creating an
// RC queue pair for the client and connecting it to the client's. The daemon's CPU never
// touches the data path afterwards: the NIC serves the reads.
//
// Each domain of regions (service/region_access.h) has a protection domain of its own,
// holding its own registrations of its regions, and a client's queue pair is made in
// the protection domain of its tenant's regions: the NIC refuses a READ or WRITE whose
// remote key belongs to another protection domain, so a tenant's queue pairs reach
// only its regions whatever key it tries.
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
  // `regions` in region-index order; they must outlive the acceptor. `domains`: the
  // region indices of each domain (RegionAccess::domains()).
  static absl::StatusOr<std::unique_ptr<VerbsAcceptor>> Create(const VerbsOptions& options,
                                                               const std::vector<PublishedRegion>& regions,
                                                               const std::vector<std::vector<uint32_t>>& domains);

  // Adds the remote key (of domain `domain`'s registration) and base address of region
  // `ref.index`; nothing when that domain does not hold the region.
  void Annotate(RegionRef& ref, size_t domain) const;
  // Connects a queue pair of ours, in domain `domain`'s protection domain, to the
  // client's; returns ours.
  absl::StatusOr<VerbsPeerInfo> Accept(const std::string& client_id, size_t domain, const VerbsPeerInfo& client);
  // Destroys the client's queue pair (its lease expired; it reconnects if it returns).
  void Forget(const std::string& client_id);

 private:
  explicit VerbsAcceptor(const VerbsOptions& options) : options_(options) {}

  const VerbsOptions options_;
  std::unique_ptr<VerbsDevice> device_;
  std::vector<PublishedRegion> regions_;
  struct Domain {
    ProtectionDomain pd;
    absl::flat_hash_map<uint32_t, MemoryRegistration> registrations;  // by region index
  };
  std::vector<Domain> domains_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<RcQueuePair>> clients_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_VERBS_ACCEPTOR_H_

// Publishes the daemon's regions over UCX for the RDMA data plane, one UCX worker per
// data-plane domain (service/region_access.h), each in a child process that maps only
// that domain's regions (service/ucx_domain_server.h). The worker cannot live in the
// daemon: UCX's tcp and sm transports emulate RMA in software and check no remote key,
// so a peer could read and write any address of the worker's process (other tenants'
// regions, the TLS key, the metadata). The gRPC service adds what a client needs to
// every layout (Annotate): the worker address, remote key and base address in the
// child of the domain the caller belongs to.
//
// Owns the children: destroying the publisher stops them (their stdin pipe closed,
// then SIGKILL after a grace), and they die with the daemon.
#ifndef SPARSEPOOL_SERVICE_UCX_PUBLISHER_H_
#define SPARSEPOOL_SERVICE_UCX_PUBLISHER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/layout.h"
#include "common/scoped_fd.h"
#include "transport/cxl/region_spec.h"

namespace sparsepool {

// A region's memory in the daemon (the libibverbs acceptor registers it in place).
struct PublishedRegion {
  std::byte* base;
  uint64_t bytes;
};

// What a domain's worker process needs to map a region again.
struct UcxDomainRegion {
  uint32_t index;  // the region's index in the daemon
  RegionKind kind;
  std::string path;
  uint64_t bytes;
};

class UcxPublisher {
 public:
  // Starts one worker process per domain, running `executable` (the daemon passes
  // "/proc/self/exe"; its main must hand kUcxDomainServerFlag to RunUcxDomainServer),
  // and waits up to 30 s for each to map and register its regions. The error of a
  // worker that fails names its domain's regions and says why.
  // REQUIRES: the calling thread outlives the publisher: the children are killed when
  // it exits (PR_SET_PDEATHSIG follows the thread that started them).
  static absl::StatusOr<std::unique_ptr<UcxPublisher>> Create(
      const std::vector<std::vector<UcxDomainRegion>>& domains, const std::string& executable);
  ~UcxPublisher();
  UcxPublisher(const UcxPublisher&) = delete;
  UcxPublisher& operator=(const UcxPublisher&) = delete;

  // Adds the worker address, remote key and base address of region `ref.index` in
  // domain `domain`'s worker; nothing when that domain does not hold the region.
  // Thread-safe.
  void Annotate(RegionRef& ref, size_t domain) const;

  // The worker processes, by domain.
  std::vector<pid_t> child_pids() const;
  // Unavailable, naming the domain, when a worker process has ended (it is not reaped).
  absl::Status Check() const;

 private:
  struct Registration {
    std::string rkey;
    uint64_t base;  // the region's address in the worker process
  };
  struct Domain {
    std::string name;  // "the UCX worker process of domain D (region ...)", for errors
    pid_t pid = -1;
    bool reaped = false;
    ScopedFd to_child;  // its stdin: closing it tells the child to exit
    std::string worker_address;
    absl::flat_hash_map<uint32_t, Registration> regions;  // by region index
  };

  UcxPublisher() = default;
  // Reads `domain`'s handshake from `from_child` until `ready`, an error or `deadline`.
  absl::Status ReadHandshake(Domain& domain, const std::vector<UcxDomainRegion>& regions, int from_child,
                             absl::Time deadline);
  // Reaps the child if it ends by `deadline`; its wait status when this call reaped it.
  std::optional<int> ReapBy(Domain& domain, absl::Time deadline);

  std::vector<Domain> domains_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_UCX_PUBLISHER_H_

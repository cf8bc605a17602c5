// Publishes the daemon's regions over UCX for the RDMA data plane: registers each
// region with UCP, packs its remote key, and runs the worker's progress thread (the
// tcp and sm transports emulate RMA and need the target side to make progress). The
// gRPC service adds what a client needs to every layout (Annotate).
#ifndef SPARSEPOOL_SERVICE_UCX_PUBLISHER_H_
#define SPARSEPOOL_SERVICE_UCX_PUBLISHER_H_

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/layout.h"
#include "transport/rdma/ucx_context.h"

namespace sparsepool {

struct PublishedRegion {
  std::byte* base;
  uint64_t bytes;
};

class UcxPublisher {
 public:
  // `regions` in region-index order; they must outlive the publisher.
  static absl::StatusOr<std::unique_ptr<UcxPublisher>> Create(const std::vector<PublishedRegion>& regions);
  ~UcxPublisher();
  UcxPublisher(const UcxPublisher&) = delete;
  UcxPublisher& operator=(const UcxPublisher&) = delete;

  // Adds the worker address, remote key and base address of region `ref.index`.
  void Annotate(RegionRef& ref) const;

 private:
  UcxPublisher() = default;
  void Progress();

  std::unique_ptr<UcxContext> ucx_;
  std::vector<std::unique_ptr<UcxMemory>> memory_;
  std::vector<PublishedRegion> regions_;
  std::atomic<bool> stop_{false};
  std::thread progress_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_UCX_PUBLISHER_H_

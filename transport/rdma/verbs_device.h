// Opening an RDMA device with libibverbs. On a machine without one (this project's CI,
// the development VMs) it fails with a clear FailedPrecondition, which is how the verbs
// backend is declined there. RAII: the device context closes on destruction.
#ifndef SPARSEPOOL_TRANSPORT_RDMA_VERBS_DEVICE_H_
#define SPARSEPOOL_TRANSPORT_RDMA_VERBS_DEVICE_H_

#include <infiniband/verbs.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace sparsepool {

class VerbsDevice {
 public:
  // The named device, or the first one when `name` is empty.
  static absl::StatusOr<std::unique_ptr<VerbsDevice>> Open(const std::string& name);
  ~VerbsDevice();
  VerbsDevice(const VerbsDevice&) = delete;
  VerbsDevice& operator=(const VerbsDevice&) = delete;

  ibv_context* context() const { return context_; }
  const std::string& name() const { return name_; }

 private:
  VerbsDevice(ibv_context* context, std::string name) : context_(context), name_(std::move(name)) {}
  ibv_context* context_;
  std::string name_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_VERBS_DEVICE_H_

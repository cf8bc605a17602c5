// The RDMA data plane over libibverbs: one RC queue pair to the daemon, connected
// through the control plane (ConnectVerbs exchanges QP number, PSN, GID, LID, MTU; the
// region's remote key and base address come with every layout). A top-k batch becomes
// RDMA READs planned like the UCX gets (adjacent tokens of a page coalesced), posted in
// chains of one doorbell each with one completion per chain, into a staging buffer that
// this plane registered once (and grows), then copied into the caller's buffer; writes
// are staged the same way and go as RDMA WRITEs. (Registering callers' buffers and
// caching the registrations would skip the copy, but a freed and reallocated buffer at
// the same address would keep the old pinned pages: reads would land out of sight.)
//
// Failure: a failed completion or a batch past its deadline moves the queue pair to
// the error state and destroys it before any buffer registration goes, so no late
// read can land in memory the caller reuses; the next call connects afresh (a
// restarted daemon is reached again). Unavailable in both cases.
//
// Not run on RDMA hardware yet: this project's machines have no RDMA device, where
// Create says so (FailedPrecondition). Thread-safe: calls are serialised.
#ifndef SPARSEPOOL_TRANSPORT_RDMA_VERBS_DATA_PLANE_H_
#define SPARSEPOOL_TRANSPORT_RDMA_VERBS_DATA_PLANE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "transport/data_plane.h"
#include "transport/rdma/verbs_device.h"
#include "transport/rdma/verbs_queue_pair.h"

namespace sparsepool {

struct VerbsOptions {
  std::string device;  // empty: the first device libibverbs lists
  uint8_t port = 1;
  uint8_t gid_index = 0;  // RoCE v2 deployments often use 3; see `show_gids`
  uint32_t queue_depth = 256;
  absl::Duration timeout = absl::Seconds(10);
};

// Sends our endpoint to the daemon and returns its (the client wraps ConnectVerbs).
using VerbsConnector = std::function<absl::StatusOr<VerbsPeerInfo>(const VerbsPeerInfo& local)>;

class VerbsDataPlane final : public DataPlane {
 public:
  // FailedPrecondition when this host has no RDMA device.
  static absl::StatusOr<std::unique_ptr<VerbsDataPlane>> Create(const VerbsOptions& options,
                                                                VerbsConnector connector);
  ~VerbsDataPlane() override;
  const char* name() const override { return "verbs"; }

 protected:
  absl::Status GatherValidated(const GatherBatch& batch) override;
  absl::Status WriteValidated(const WriteRange& range) override;

 private:
  VerbsDataPlane(const VerbsOptions& options, VerbsConnector connector) : options_(options), connector_(connector) {}

  absl::Status EnsureConnected() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The staging buffer, registered, at least `bytes` long.
  absl::StatusOr<std::byte*> Staging(size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Posts the transfers in doorbell groups, two groups in flight, and waits for all.
  absl::Status Transfer(absl::Span<const ReadRequest> transfers, ibv_wr_opcode opcode, const std::byte* local,
                        ibv_mr* mr, absl::FunctionRef<uint32_t(uint32_t)> rkey_of_row, const char* what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads each row's record into the end of the staging buffer and checks that its
  // sequence is still live. REQUIRES: staging holds rows x kRecordCopiesBytes.
  absl::Status CheckLive(absl::Span<const SequenceLayout* const> rows) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a failure: error state, queue pair destroyed, then the staging registration.
  void Disconnect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const VerbsOptions options_;
  const VerbsConnector connector_;
  absl::Mutex mu_;
  std::unique_ptr<VerbsDevice> device_ ABSL_GUARDED_BY(mu_);
  ProtectionDomain pd_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<RcQueuePair> qp_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<std::byte[]> staging_ ABSL_GUARDED_BY(mu_);
  size_t staging_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  MemoryRegistration staging_mr_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_VERBS_DATA_PLANE_H_

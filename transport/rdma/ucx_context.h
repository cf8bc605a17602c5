// RAII wrappers over the UCX (UCP) objects both sides of the RDMA data plane use: a
// context and worker, memory mapped for remote access with its packed remote key, an
// endpoint to a peer worker, and an unpacked remote key. UCX_TLS in the environment
// chooses the wire, as UCX documents: rc or dc on an RDMA cluster, tcp or sm here.
//
// Not thread-safe: one worker per owner, whose calls the owner serialises.
#ifndef SPARSEPOOL_TRANSPORT_RDMA_UCX_CONTEXT_H_
#define SPARSEPOOL_TRANSPORT_RDMA_UCX_CONTEXT_H_

#include <ucp/api/ucp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sparsepool {

absl::Status UcsError(const std::string& what, ucs_status_t status);

class UcxContext {
 public:
  static absl::StatusOr<std::unique_ptr<UcxContext>> Create();
  ~UcxContext();
  UcxContext(const UcxContext&) = delete;
  UcxContext& operator=(const UcxContext&) = delete;

  ucp_context_h context() const { return context_; }
  ucp_worker_h worker() const { return worker_; }
  // The worker's address, for a peer to create an endpoint to it.
  const std::string& worker_address() const { return address_; }

  // Makes progress until every request completes or `timeout` passes. On timeout it
  // frees what is left and returns DeadlineExceeded: the caller must then never
  // progress this worker again (abandon it), or late completions would land in buffers
  // it has reused. Requests may be null (completed at once).
  absl::Status Wait(std::vector<void*>& requests, absl::Duration timeout, const std::string& what);
  // Progresses once; returns whether anything happened.
  bool Progress() { return ucp_worker_progress(worker_) != 0; }

 private:
  UcxContext() = default;
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  std::string address_;
};

// Memory registered for remote reads and writes, and its packed remote key.
class UcxMemory {
 public:
  static absl::StatusOr<std::unique_ptr<UcxMemory>> Map(ucp_context_h context, void* address, size_t length);
  ~UcxMemory();
  const std::string& packed_rkey() const { return rkey_; }

 private:
  UcxMemory(ucp_context_h context, ucp_mem_h memh) : context_(context), memh_(memh) {}
  ucp_context_h context_;
  ucp_mem_h memh_;
  std::string rkey_;
};

class UcxEndpoint {
 public:
  // An endpoint to the worker whose address is `address`. Errors on it (the peer
  // vanished) are reported by the requests that use it.
  static absl::StatusOr<std::unique_ptr<UcxEndpoint>> Connect(UcxContext* context, const std::string& address);
  ~UcxEndpoint();
  ucp_ep_h ep() const { return ep_; }
  bool failed() const { return failed_; }

 private:
  UcxEndpoint() = default;
  static void OnError(void* self, ucp_ep_h ep, ucs_status_t status);
  UcxContext* context_ = nullptr;
  ucp_ep_h ep_ = nullptr;
  bool failed_ = false;
};

class UcxRkey {
 public:
  static absl::StatusOr<std::unique_ptr<UcxRkey>> Unpack(ucp_ep_h ep, const std::string& packed);
  ~UcxRkey();
  ucp_rkey_h rkey() const { return rkey_; }

 private:
  explicit UcxRkey(ucp_rkey_h rkey) : rkey_(rkey) {}
  ucp_rkey_h rkey_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_RDMA_UCX_CONTEXT_H_

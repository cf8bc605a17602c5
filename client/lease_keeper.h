// The client's lease loop, and its half of release fencing (common/release_fence.h):
// one KeepAlive in flight at a time, held by the daemon until it has a newer release
// epoch than the client acknowledged (a long poll of at most `interval`). When one
// comes, the loop waits for the client's writes begun before it and acknowledges it in
// the next KeepAlive, so released memory waits a round trip or two, not an interval.
// Every call renews the lease. Fencing is per connection (each keeper is a fence
// session of its own; service/lease_table.h).
#ifndef SPARSEPOOL_CLIENT_LEASE_KEEPER_H_
#define SPARSEPOOL_CLIENT_LEASE_KEEPER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/release_fence.h"
#include "grpcpp/client_context.h"
#include "proto/sparsepool.grpc.pb.h"

namespace sparsepool {

class LeaseKeeper {
 public:
  // Registers the client as fenced with one KeepAlive answered at once (before the
  // client can write anything), then starts the loop. `stub` and `fence` must outlive
  // the keeper.
  // `token` goes with every KeepAlive (a daemon that serves tenants needs it).
  static absl::StatusOr<std::unique_ptr<LeaseKeeper>> Start(v1::PoolService::Stub* stub, std::string client_id,
                                                            std::string address, std::string token, ReleaseFence* fence,
                                                            absl::Duration interval, absl::Duration rpc_timeout);
  // Cancels the call in flight, joins the loop, and tells the daemon the client is
  // closing (when none of its writes is in flight), so that releases stop waiting for
  // its acknowledgements at once instead of until its lease runs out.
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

 private:
  LeaseKeeper(v1::PoolService::Stub* stub, std::string client_id, std::string address, std::string token,
              ReleaseFence* fence,
              absl::Duration interval, absl::Duration rpc_timeout);
  // One KeepAlive acknowledging what the fence allows; feeds the answer to the fence.
  absl::Status KeepAlive(absl::Duration wait);
  void Run();

  v1::PoolService::Stub* const stub_;
  const std::string client_id_;
  const std::string address_;
  const std::string token_;
  // This connection's fence session (random, never 0): the daemon fences each
  // connection apart, so a closing connection of this client id never speaks for
  // another one's writes in flight.
  const uint64_t session_;
  ReleaseFence* const fence_;
  const absl::Duration interval_;
  const absl::Duration rpc_timeout_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* in_flight_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_LEASE_KEEPER_H_

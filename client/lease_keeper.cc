#include "client/lease_keeper.h"

#include <algorithm>
#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"

namespace sparsepool {

LeaseKeeper::LeaseKeeper(v1::PoolService::Stub* stub, std::string client_id, std::string address, std::string token,
                         ReleaseFence* fence, absl::Duration interval, absl::Duration rpc_timeout)
    : stub_(stub), client_id_(std::move(client_id)), address_(std::move(address)), token_(std::move(token)),
      session_(absl::Uniform<uint64_t>(absl::IntervalClosed, absl::BitGen(), 1, UINT64_MAX)), fence_(fence),
      interval_(interval), rpc_timeout_(rpc_timeout) {}

absl::StatusOr<std::unique_ptr<LeaseKeeper>> LeaseKeeper::Start(v1::PoolService::Stub* stub, std::string client_id,
                                                                std::string address, std::string token,
                                                                ReleaseFence* fence, absl::Duration interval,
                                                                absl::Duration rpc_timeout) {
  std::unique_ptr<LeaseKeeper> keeper(new LeaseKeeper(stub, std::move(client_id), std::move(address),
                                                      std::move(token), fence, interval, rpc_timeout));
  if (absl::Status registered = keeper->KeepAlive(absl::ZeroDuration()); !registered.ok()) return registered;
  keeper->thread_ = std::thread([k = keeper.get()] { k->Run(); });
  return keeper;
}

LeaseKeeper::~LeaseKeeper() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (in_flight_ != nullptr) in_flight_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
  if (fence_->in_flight() != 0) return;  // a write still landing: let the lease run out instead
  v1::KeepAliveRequest request;
  request.set_client_id(client_id_);
  request.set_fence(true);
  request.set_closing(true);
  request.set_fence_session(session_);
  v1::KeepAliveResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + std::min(rpc_timeout_, absl::Seconds(1))));
  AddToken(context, token_);
  (void)stub_->KeepAlive(&context, request, &response);  // best effort: the lease times out otherwise
}

absl::Status LeaseKeeper::KeepAlive(absl::Duration wait) {
  v1::KeepAliveRequest request;
  request.set_client_id(client_id_);
  request.set_fence(true);
  request.set_fence_session(session_);
  const ReleaseEpoch acknowledged = fence_->Acknowledgeable();
  request.set_incarnation(acknowledged.incarnation);
  request.set_acknowledged_epoch(acknowledged.epoch);
  request.set_wait_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(wait)));
  v1::KeepAliveResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + wait + rpc_timeout_));
  context.set_wait_for_ready(true);
  AddToken(context, token_);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("the client is closing");
    in_flight_ = &context;
  }
  const grpc::Status status = stub_->KeepAlive(&context, request, &response);
  {
    absl::MutexLock lock(&mu_);
    in_flight_ = nullptr;
  }
  if (!status.ok()) {
    absl::Status failed = FromGrpcStatus(status, absl::StrCat("KeepAlive to ", address_));
    // The daemon's refusal of this connection's session (not a daemon out of reach, nor
    // a transport error, which decide nothing): it does not fence this connection now.
    if (absl::IsResourceExhausted(failed) || absl::IsPermissionDenied(failed) || absl::IsUnauthenticated(failed) ||
        absl::IsFailedPrecondition(failed)) {
      fence_->Refuse(failed);
    }
    return failed;
  }
  fence_->Admit();
  fence_->Observe(ReleaseEpoch{response.incarnation(), response.release_epoch()});
  return absl::OkStatus();
}

void LeaseKeeper::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (!KeepAlive(interval_).ok()) {
      // The daemon is away (the next request reports it); try again after a pause.
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), std::min(interval_, absl::Seconds(1)));
      continue;
    }
    // A newer epoch: acknowledge it as soon as the writes begun before it are done
    // (each is bounded by its own deadline), in the next call.
    fence_->AwaitDrained(interval_);
  }
}

}  // namespace sparsepool

// The gRPC face of the pool: translates PoolService requests into Pool calls and
// absl::Status errors into gRPC statuses of the same code and message.
#ifndef SPARSEPOOL_SERVICE_POOL_SERVICE_H_
#define SPARSEPOOL_SERVICE_POOL_SERVICE_H_

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "proto/sparsepool.grpc.pb.h"
#include "service/delayed_calls.h"
#include "service/fair_work_queue.h"
#include "service/pool.h"
#include "service/release_watch.h"
#include "service/tenants.h"
#include "service/ucx_publisher.h"
#include "service/verbs_acceptor.h"

namespace sparsepool {

inline constexpr char kVersion[] = "0.2.0";

// Requests waiting for memory at once, at most; beyond, they are answered at once. One
// tenant's requests take at most a quarter of them.
inline constexpr size_t kMaxWaitingCalls = 4096;
inline constexpr size_t kMaxWaitingCallsPerTenant = kMaxWaitingCalls / 4;
// A waiting request is answered at least this long before its deadline.
inline constexpr absl::Duration kWaitingAnswerMargin = absl::Milliseconds(100);

// Handlers run inline on gRPC's own threads (the callback API): every one is a short
// critical section in the pool, and skipping the sync server's thread hand-offs
// roughly doubles the requests served per core. None may sleep there: a Create or
// Extend that must wait for memory in its reuse grace is answered later from
// `delayed` (the pool is asked again when the grace ends), or at once with the pool's
// ResourceExhausted when the call's deadline comes first.
class PoolServiceImpl final : public v1::PoolService::CallbackService {
 public:
  // `pool`, `clock`, `delayed`, `ucx`, `verbs` and `tenants` must outlive the service;
  // `delayed` (null: requests never wait), `ucx` and `verbs` (null: no RDMA publishing
  // of that kind) and `tenants` may be null. With `tenants`, every call but Health must
  // carry a token of the file ("authorization: Bearer TOKEN"; UNAUTHENTICATED
  // otherwise) and acts as its tenant or operator (PERMISSION_DENIED beyond that);
  // without, the daemon serves whoever reaches it, as one trusted host's would.
  PoolServiceImpl(Pool* pool, const Clock* clock, DelayedCalls* delayed,
                  const UcxPublisher* ucx = nullptr, VerbsAcceptor* verbs = nullptr,
                  const TenantDirectory* tenants = nullptr, FairWorkQueue* slow_work = nullptr);

  grpc::ServerUnaryReactor* CreateSequence(grpc::CallbackServerContext* context,
                                      const v1::CreateSequenceRequest* request,
                                      v1::CreateSequenceResponse* response) override {
    auto who = Authenticate(*context);
    if (!who.ok()) return Finish(context, ToGrpcStatus(who.status()));
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    RunSlow(FairnessKey(*who, request->client_id()), FairWorkQueue::Class::kBulk, *who, context, reactor,
            [this, who = *who, context, request, response](absl::Time* retry_at) {
      grpc::Status created = HandleCreateSequence(who, *request, response, retry_at);
      // A create that waited for memory may complete after its caller gave up: the
      // sequence it would never hear of is released again, not left to its lease.
      if (created.ok() && context->IsCancelled()) return UndoCreate(who, *request, *response);
      return created;
    });
    return reactor;
  }
  grpc::ServerUnaryReactor* ExtendSequence(grpc::CallbackServerContext* context,
                                      const v1::ExtendSequenceRequest* request,
                                      v1::ExtendSequenceResponse* response) override {
    auto who = Authenticate(*context);
    if (!who.ok()) return Finish(context, ToGrpcStatus(who.status()));
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    // A growth a step waits for is urgent; one the client makes ahead of need is not.
    RunSlow(FairnessKey(*who, request->client_id()),
            request->ahead() ? FairWorkQueue::Class::kBulk : FairWorkQueue::Class::kUrgent, *who, context, reactor,
            [this, who = *who, request, response](absl::Time* retry_at) {
      return HandleExtendSequence(who, *request, response, retry_at);
    });
    return reactor;
  }
  grpc::ServerUnaryReactor* GetLayout(grpc::CallbackServerContext* context,
                                      const v1::GetLayoutRequest* request,
                                      v1::GetLayoutResponse* response) override {
    return Finish(context, Authenticated(*context, [&](const Tenant* who) { return HandleGetLayout(who, *request, response); }));
  }
  grpc::ServerUnaryReactor* ReleaseSequence(grpc::CallbackServerContext* context,
                                      const v1::ReleaseSequenceRequest* request,
                                      v1::ReleaseSequenceResponse* response) override {
    return Finish(context, Authenticated(*context, [&](const Tenant* who) { return HandleReleaseSequence(who, *request, response); }));
  }
  grpc::ServerUnaryReactor* AdoptSequence(grpc::CallbackServerContext* context,
                                      const v1::AdoptSequenceRequest* request,
                                      v1::AdoptSequenceResponse* response) override {
    return Finish(context, Authenticated(*context, [&](const Tenant* who) { return HandleAdoptSequence(who, *request, response); }));
  }
  grpc::ServerUnaryReactor* ListSequences(grpc::CallbackServerContext* context,
                                      const v1::ListSequencesRequest* request,
                                      v1::ListSequencesResponse* response) override {
    return Finish(context, Authenticated(*context, [&](const Tenant* who) { return HandleListSequences(who, *request, response); }));
  }
  grpc::ServerUnaryReactor* KeepAlive(grpc::CallbackServerContext* context,
                                      const v1::KeepAliveRequest* request,
                                      v1::KeepAliveResponse* response) override {
    auto who = Authenticate(*context);
    if (!who.ok()) return Finish(context, ToGrpcStatus(who.status()));
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    AnswerKeepAlive(*who, context, reactor, *request, response);
    return reactor;
  }
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* context,
                                      const v1::StatsRequest* request,
                                      v1::StatsResponse* response) override {
    return Finish(context, Authenticated(*context, [&](const Tenant* who) { return HandleStats(who, *request, response); }));
  }
  grpc::ServerUnaryReactor* Health(grpc::CallbackServerContext* context,
                                      const v1::HealthRequest* request,
                                      v1::HealthResponse* response) override {
    return Finish(context, HandleHealth(*request, response));
  }
  grpc::ServerUnaryReactor* ConnectVerbs(grpc::CallbackServerContext* context,
                                      const v1::ConnectVerbsRequest* request,
                                      v1::ConnectVerbsResponse* response) override {
    return Finish(context, Authenticated(*context, [&](const Tenant* who) { return HandleConnectVerbs(who, *request, response); }));
  }

 public:
  // The handlers: each RPC's whole work, without gRPC's reactor (the waiting and long
  // polls stay above them). Public so that tests and the libFuzzer target call them as
  // gRPC would. Each acts as `who` (null: a daemon without tenants).
  grpc::Status HandleCreateSequence(const Tenant* who, const v1::CreateSequenceRequest& request,
                                    v1::CreateSequenceResponse* response, absl::Time* retry_at);
  grpc::Status HandleExtendSequence(const Tenant* who, const v1::ExtendSequenceRequest& request,
                                    v1::ExtendSequenceResponse* response, absl::Time* retry_at);
  grpc::Status HandleGetLayout(const Tenant* who, const v1::GetLayoutRequest& request,
                               v1::GetLayoutResponse* response);
  // Releases the sequence a cancelled CreateSequence made; CANCELLED saying so.
  grpc::Status UndoCreate(const Tenant* who, const v1::CreateSequenceRequest& request,
                          const v1::CreateSequenceResponse& response);
  grpc::Status HandleReleaseSequence(const Tenant* who, const v1::ReleaseSequenceRequest& request,
                                     v1::ReleaseSequenceResponse* response);
  grpc::Status HandleAdoptSequence(const Tenant* who, const v1::AdoptSequenceRequest& request,
                                   v1::AdoptSequenceResponse* response);
  grpc::Status HandleListSequences(const Tenant* who, const v1::ListSequencesRequest& request,
                                   v1::ListSequencesResponse* response);
  // `reuse_unblocked` is set when the acknowledgement let waiting memory be reused.
  grpc::Status HandleKeepAlive(const Tenant* who, const v1::KeepAliveRequest& request,
                               v1::KeepAliveResponse* response, bool* reuse_unblocked);
  grpc::Status HandleStats(const Tenant* who, const v1::StatsRequest& request, v1::StatsResponse* response);
  grpc::Status HandleHealth(const v1::HealthRequest& request, v1::HealthResponse* response);
  grpc::Status HandleConnectVerbs(const Tenant* who, const v1::ConnectVerbsRequest& request,
                                  v1::ConnectVerbsResponse* response);

  // Called after releases the service did not see (lease expiries): answers the
  // KeepAlives waiting for a new release epoch, and asks the pool again for the
  // requests waiting for memory (an expired fenced lease no longer holds it back).
  void ReleasesChanged();
  // Answers every waiting KeepAlive at once; before the server shuts down.
  void StopWatching() { watch_.Stop(); }

 private:
  static grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                          const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }
  // The tenants-file entry whose token the call carries; null on a daemon without
  // tenants. UNAUTHENTICATED for a call without a token the file knows.
  absl::StatusOr<const Tenant*> Authenticate(const grpc::CallbackServerContext& context) const;
  // `handle(who)` for an authenticated call; the authentication's error otherwise.
  template <typename Handle>
  grpc::Status Authenticated(const grpc::CallbackServerContext& context, Handle handle) const {
    auto who = Authenticate(context);
    if (!who.ok()) return ToGrpcStatus(who.status());
    return handle(*who);
  }
  // Runs `attempt`; answers with its status, unless it set retry_at (the pool will
  // have room then) before the call's deadline: then asks again at that time, from
  // delayed_ through RunSlow (`key` is whose turn it takes). The request and response stay valid until the reactor finishes. `who`'s
  // waiting calls count against its tenant's share.
  using Attempt = std::function<grpc::Status(absl::Time* retry_at)>;
  void AnswerOrWait(std::string key, FairWorkQueue::Class work_class, const Tenant* who,
                    grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor, Attempt attempt);
  // AnswerOrWait in `key`'s turn on slow_work_'s threads (inline without it); a call
  // cancelled while it was queued is answered without its attempt, a full queue's
  // refusal is the answer. Creates (bulk) and growths (urgent) come here: they may
  // zero pages.
  // `retry`: the call was admitted before and waited for memory; the queue's bounds do
  // not refuse it again.
  void RunSlow(std::string key, FairWorkQueue::Class work_class, const Tenant* who,
               grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor, Attempt attempt,
               bool retry = false);
  // Whose turn a slow call takes: the tenant's, or without tenants the client's.
  static std::string FairnessKey(const Tenant* who, const std::string& client_id) {
    return who != nullptr ? who->name : client_id;
  }
  // Takes a waiting slot of `who`'s tenant; false when its share is used up.
  bool TakeWaitingSlot(const Tenant* who);
  void ReturnWaitingSlot(const Tenant* who);

  // Answers at once, or, for a long poll with no newer epoch than the client has
  // acknowledged, when there is one (watch_) or its wait ends.
  void AnswerKeepAlive(const Tenant* who, grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                       const v1::KeepAliveRequest& request, v1::KeepAliveResponse* response);
  // A pool call's layout as the reply (with the RDMA access fields added when the
  // daemon publishes over UCX or serves libibverbs), or its error.
  grpc::Status Reply(absl::StatusOr<SequenceLayout> layout, v1::SequenceLayout* out) const;

  Pool* const pool_;
  const Clock* const clock_;
  DelayedCalls* const delayed_;
  const UcxPublisher* const ucx_;
  VerbsAcceptor* const verbs_;
  const TenantDirectory* const tenants_;
  FairWorkQueue* const slow_work_;
  const absl::Time started_;
  absl::Mutex waiting_mu_;
  absl::flat_hash_map<const Tenant*, size_t> waiting_by_tenant_ ABSL_GUARDED_BY(waiting_mu_);
  ReleaseWatch watch_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_POOL_SERVICE_H_

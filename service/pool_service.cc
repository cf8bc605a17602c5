#include "service/pool_service.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/grpc_status.h"
#include "common/layout_proto.h"
#include "transport/rdma/verbs_endpoint_proto.h"

namespace sparsepool {
namespace {

// The pool's view of a request from `who` naming `client_id`.
Caller CallerOf(const Tenant* who, absl::string_view client_id) {
  if (who == nullptr) return Caller(client_id);
  Caller caller(client_id, who->name, /*scoped=*/!who->is_operator);
  caller.max_bytes = who->max_bytes;
  caller.max_sequences = who->max_sequences;
  caller.max_clients = who->max_clients;
  return caller;
}

// Operators inspect and release; creating, growing, adopting and holding leases is
// tenants' work.
grpc::Status TenantsOnly(const Tenant* who, absl::string_view call) {
  if (who == nullptr || !who->is_operator) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      absl::StrCat("operator ", who->name, " may not call ", call,
                                   ": operators list, inspect and release; tenants create and hold sequences"));
}

}  // namespace

PoolServiceImpl::PoolServiceImpl(Pool* pool, const Clock* clock, DelayedCalls* delayed,
                                 const UcxPublisher* ucx, VerbsAcceptor* verbs, const TenantDirectory* tenants,
                                 FairWorkQueue* slow_work)
    : pool_(pool), clock_(clock), delayed_(delayed), ucx_(ucx), verbs_(verbs), tenants_(tenants),
      slow_work_(slow_work), started_(clock->Now()) {}

absl::StatusOr<const Tenant*> PoolServiceImpl::Authenticate(const grpc::CallbackServerContext& context) const {
  if (tenants_ == nullptr) return nullptr;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "this daemon serves tenants: every call needs a token (authorization: Bearer TOKEN)");
  }
  absl::string_view value(it->second.data(), it->second.size());
  if (!absl::ConsumePrefix(&value, "Bearer ")) {
    return absl::UnauthenticatedError("the authorization metadata must read \"Bearer TOKEN\"");
  }
  return tenants_->Authenticate(value);
}

bool PoolServiceImpl::TakeWaitingSlot(const Tenant* who) {
  if (who == nullptr) return true;
  absl::MutexLock lock(&waiting_mu_);
  size_t& waiting = waiting_by_tenant_[who];
  if (waiting >= kMaxWaitingCallsPerTenant) return false;
  ++waiting;
  return true;
}

void PoolServiceImpl::ReturnWaitingSlot(const Tenant* who) {
  if (who == nullptr) return;
  absl::MutexLock lock(&waiting_mu_);
  --waiting_by_tenant_[who];
}

void PoolServiceImpl::RunSlow(std::string key, FairWorkQueue::Class work_class, const Tenant* who,
                              grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                              Attempt attempt, bool retry) {
  if (slow_work_ == nullptr) {
    AnswerOrWait(std::move(key), work_class, who, context, reactor, std::move(attempt));
    return;
  }
  const std::string turn = key;
  absl::Status queued = slow_work_->Submit(
      turn, work_class,
      [this, key = std::move(key), work_class, who, context, reactor, attempt = std::move(attempt)](bool stopping) {
        if (stopping) {
          reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "the daemon is shutting down; this request was queued and was not carried out"));
          return;
        }
        // A client that gave up while the call was queued must not get a sequence it
        // will never hear of.
        if (context->IsCancelled()) {
          reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled while it was queued"));
          return;
        }
        AnswerOrWait(key, work_class, who, context, reactor, attempt);
      },
      retry ? FairWorkQueue::Admission::kAdmitted : FairWorkQueue::Admission::kBounded);
  if (!queued.ok()) reactor->Finish(ToGrpcStatus(queued));
}

void PoolServiceImpl::AnswerOrWait(std::string key, FairWorkQueue::Class work_class, const Tenant* who,
                                   grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                                   Attempt attempt) {
  absl::Time retry_at = absl::InfinitePast();
  grpc::Status status = attempt(&retry_at);
  // The pool's answer must reach the client before its deadline: a retry that would
  // run in the last moments of the call is not made, the refusal goes back now (else
  // the client would see DeadlineExceeded, not why the pool refused).
  const absl::Time deadline = absl::FromChrono(context->deadline()) - kWaitingAnswerMargin;
  // Past kMaxWaitingCalls (or the tenant's share of them) the pool's answer goes back at
  // once: waiting requests are bounded like everything else a client can make the
  // daemon hold.
  if (status.ok() || delayed_ == nullptr || retry_at == absl::InfinitePast() ||
      retry_at >= deadline || delayed_->waiting() >= kMaxWaitingCalls || !TakeWaitingSlot(who)) {
    reactor->Finish(status);
    return;
  }
  delayed_->RunAt(retry_at, [this, key = std::move(key), work_class, who, context, reactor,
                             attempt = std::move(attempt)](bool stopping) mutable {
    ReturnWaitingSlot(who);
    if (stopping) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   "the daemon is shutting down; this request was waiting for memory "
                                   "in its reuse grace and was not carried out"));
      return;
    }
    // A client that gave up must not get a sequence it will never hear of.
    if (context->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled while it waited"));
      return;
    }
    // Asked again in its tenant's turn, like any other slow call.
    RunSlow(std::move(key), work_class, who, context, reactor, std::move(attempt), /*retry=*/true);
  });
}

grpc::Status PoolServiceImpl::Reply(absl::StatusOr<SequenceLayout> layout, v1::SequenceLayout* out) const {
  if (!layout.ok()) return ToGrpcStatus(layout.status());
  // The RDMA access fields, when the daemon publishes over UCX or serves libibverbs: the
  // registrations of the domain of the sequence's tenant (the caller's own, unless an
  // operator asks), which reach only that tenant's regions.
  // A striped sequence's regions all serve its tenant: one domain holds them all.
  const std::optional<size_t> domain = pool_->access().DomainFor(layout->tenant, layout->region.index);
  if (domain.has_value()) {
    std::vector<RegionRef*> regions = {&layout->region};
    for (RegionRef& stripe : layout->stripe_regions) regions.push_back(&stripe);
    for (RegionRef* region : regions) {
      if (ucx_ != nullptr) ucx_->Annotate(*region, *domain);
      if (verbs_ != nullptr) verbs_->Annotate(*region, *domain);
    }
  }
  LayoutToProto(*layout, out);
  return grpc::Status::OK;
}

grpc::Status PoolServiceImpl::HandleConnectVerbs(const Tenant* who, const v1::ConnectVerbsRequest& request,
                                                 v1::ConnectVerbsResponse* response) {
  if (grpc::Status allowed = TenantsOnly(who, "ConnectVerbs"); !allowed.ok()) return allowed;
  if (verbs_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this daemon does not serve libibverbs: start sparsepoold with --verbs=true on a host "
                        "with an RDMA device, or use transport \"ucx\" or \"cxl\"");
  }
  if (request.client_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ConnectVerbs needs a client_id");
  }
  // A queue pair belongs to a lease (and goes when it expires): the id is checked and
  // the lease table's bound bounds the queue pairs too.
  // (and the lease must be the caller's tenant's).
  if (auto lease = pool_->KeepAlive(CallerOf(who, request.client_id())); !lease.ok()) {
    return ToGrpcStatus(lease.status());
  }
  auto client = EndpointFromProto(request.endpoint());
  if (!client.ok()) return ToGrpcStatus(client.status());
  // The queue pair joins the protection domain of the caller's regions.
  const std::optional<size_t> domain = pool_->access().DomainOf(who != nullptr ? who->name : "");
  if (!domain) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "no region of this daemon serves the caller's tenant, so there is nothing to connect to");
  }
  auto ours = verbs_->Accept(request.client_id(), *domain, *client);
  if (!ours.ok()) return ToGrpcStatus(ours.status());
  EndpointToProto(*ours, response->mutable_endpoint());
  return grpc::Status::OK;
}

grpc::Status PoolServiceImpl::HandleCreateSequence(const Tenant* who, const v1::CreateSequenceRequest& request,
                                                   v1::CreateSequenceResponse* response,
                                                   absl::Time* retry_at) {
  if (grpc::Status allowed = TenantsOnly(who, "CreateSequence"); !allowed.ok()) return allowed;
  CreateParams params;
  params.client_id = request.client_id();
  params.tenant = request.tenant();
  if (who != nullptr) {
    // The tenant is the caller's; a request may name it, never another.
    if (!request.tenant().empty() && request.tenant() != who->name) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("tenant ", who->name, " may not create sequences of tenant ", request.tenant()));
    }
    params.tenant = who->name;
    params.tenant_scoped = true;
    params.max_bytes = who->max_bytes;
    params.max_sequences = who->max_sequences;
    params.max_clients = who->max_clients;
  }
  params.layers = request.layers();
  params.entry_bytes = request.entry_bytes();
  params.entry_alignment = request.entry_alignment();
  params.page_tokens = request.page_tokens();
  params.tokens = request.tokens();
  if (request.has_placement_key()) params.placement_key = request.placement_key();
  params.stripes = request.stripes();
  return Reply(pool_->Create(params, retry_at), response->mutable_layout());
}

grpc::Status PoolServiceImpl::HandleExtendSequence(const Tenant* who, const v1::ExtendSequenceRequest& request,
                                                   v1::ExtendSequenceResponse* response,
                                                   absl::Time* retry_at) {
  if (grpc::Status allowed = TenantsOnly(who, "ExtendSequence"); !allowed.ok()) return allowed;
  return Reply(pool_->Extend(CallerOf(who, request.client_id()), request.sequence_id(), request.tokens(), retry_at),
               response->mutable_layout());
}

grpc::Status PoolServiceImpl::HandleGetLayout(const Tenant* who, const v1::GetLayoutRequest& request,
                                              v1::GetLayoutResponse* response) {
  return Reply(pool_->GetLayout(CallerOf(who, request.client_id()), request.sequence_id()),
               response->mutable_layout());
}

grpc::Status PoolServiceImpl::UndoCreate(const Tenant* who, const v1::CreateSequenceRequest& request,
                                         const v1::CreateSequenceResponse& response) {
  const uint64_t id = response.layout().sequence_id();
  const absl::Status released = pool_->Release(CallerOf(who, request.client_id()), id);
  return grpc::Status(grpc::StatusCode::CANCELLED,
                      absl::StrCat("the call was cancelled while its sequence was being made; sequence ", id,
                                   released.ok() ? " was released again" : " could not be released: ",
                                   released.ok() ? "" : released.ToString()));
}

grpc::Status PoolServiceImpl::HandleReleaseSequence(const Tenant* who, const v1::ReleaseSequenceRequest& request,
                                                    v1::ReleaseSequenceResponse* response) {
  absl::Status released = pool_->Release(CallerOf(who, request.client_id()), request.sequence_id());
  if (released.ok()) watch_.Notify(pool_->release_epoch().epoch);
  return ToGrpcStatus(released);
}

void PoolServiceImpl::ReleasesChanged() {
  watch_.Notify(pool_->release_epoch().epoch);
  if (delayed_ != nullptr) delayed_->RunWaitingNow();
}

grpc::Status PoolServiceImpl::HandleAdoptSequence(const Tenant* who, const v1::AdoptSequenceRequest& request,
                                                  v1::AdoptSequenceResponse* response) {
  if (grpc::Status allowed = TenantsOnly(who, "AdoptSequence"); !allowed.ok()) return allowed;
  return Reply(pool_->Adopt(CallerOf(who, request.client_id()), request.sequence_id()), response->mutable_layout());
}

grpc::Status PoolServiceImpl::HandleListSequences(const Tenant* who, const v1::ListSequencesRequest& request,
                                                  v1::ListSequencesResponse* response) {
  absl::string_view tenant = request.tenant();
  if (who != nullptr && !who->is_operator) {
    // A tenant sees its own sequences only.
    if (!tenant.empty() && tenant != who->name) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("tenant ", who->name, " may not list the sequences of tenant ", tenant));
    }
    tenant = who->name;
  }
  for (const SequenceSummary& s : pool_->List(tenant)) {
    v1::SequenceSummary* out = response->add_sequences();
    out->set_sequence_id(s.id);
    out->set_tenant(s.tenant);
    out->set_owner(s.owner);
    out->set_layers(s.layers);
    out->set_entry_bytes(s.entry_bytes);
    out->set_tokens(s.tokens);
    out->set_bytes(s.bytes);
    out->set_region(s.region);
    out->set_stripes(s.stripes);
  }
  return grpc::Status::OK;
}

grpc::Status PoolServiceImpl::HandleKeepAlive(const Tenant* who, const v1::KeepAliveRequest& request,
                                              v1::KeepAliveResponse* response, bool* reuse_unblocked) {
  if (grpc::Status allowed = TenantsOnly(who, "KeepAlive"); !allowed.ok()) return allowed;
  Pool::FenceReport fence;
  fence.acknowledged = ReleaseEpoch{request.incarnation(), request.acknowledged_epoch()};
  fence.closing = request.closing();
  fence.session = request.fence_session();
  auto result = pool_->KeepAlive(CallerOf(who, request.client_id()), request.fence() ? &fence : nullptr);
  if (!result.ok()) return ToGrpcStatus(result.status());
  response->set_lease_timeout_ms(absl::ToInt64Milliseconds(pool_->lease_timeout()));
  response->set_sequences(static_cast<uint32_t>(result->sequences));
  response->set_incarnation(result->current.incarnation);
  response->set_release_epoch(result->current.epoch);
  *reuse_unblocked = result->reuse_unblocked;
  return grpc::Status::OK;
}

void PoolServiceImpl::AnswerKeepAlive(const Tenant* who, grpc::CallbackServerContext* context,
                                      grpc::ServerUnaryReactor* reactor, const v1::KeepAliveRequest& request,
                                      v1::KeepAliveResponse* response) {
  bool reuse_unblocked = false;
  grpc::Status status = HandleKeepAlive(who, request, response, &reuse_unblocked);
  // Requests waiting for memory this acknowledgement freed are asked again now.
  if (reuse_unblocked && delayed_ != nullptr) delayed_->RunWaitingNow();
  const bool nothing_newer = response->incarnation() == request.incarnation() &&
                             response->release_epoch() <= request.acknowledged_epoch();
  if (!status.ok() || request.wait_ms() == 0 || !nothing_newer) {
    reactor->Finish(status);
    return;
  }
  // Answer a little before the caller's own deadline, and hold no call longer than a
  // third of a lease: the answer renews nothing, the next call does, so two thirds of
  // a lease are left for that answer and the next call to cross a link that drops for
  // a moment (TCP's retransmission backs off: 0.2 s, 0.4 s, 0.8 s, ... after a loss).
  const absl::Duration wait = std::min(absl::Milliseconds(request.wait_ms()), pool_->lease_timeout() / 3);
  const absl::Time deadline =
      std::min(absl::Now() + wait, absl::FromChrono(context->deadline()) - absl::Milliseconds(100));
  watch_.Wait(response->release_epoch(), deadline, [this, reactor, response](bool) {
    const ReleaseEpoch now = pool_->release_epoch();
    response->set_incarnation(now.incarnation);
    response->set_release_epoch(now.epoch);
    reactor->Finish(grpc::Status::OK);
  });
}

grpc::Status PoolServiceImpl::HandleStats(const Tenant* who, const v1::StatsRequest&, v1::StatsResponse* response) {
  if (who != nullptr && !who->is_operator) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("tenant ", who->name, " may not call Stats: it shows every tenant's usage; ",
                                     "an operator may"));
  }
  const PoolStats stats = pool_->Stats();
  for (const RegionUsage& usage : stats.regions) {
    v1::RegionStats* out = response->add_regions();
    RegionToProto(usage.region, out->mutable_region());
    out->set_capacity_bytes(usage.capacity_bytes);
    out->set_used_bytes(usage.used_bytes);
    out->set_reclaimable_bytes(usage.reclaimable_bytes);
    out->set_free_bytes(usage.free_bytes);
  }
  response->set_capacity_bytes(stats.capacity_bytes);
  response->set_used_bytes(stats.used_bytes);
  response->set_reclaimable_bytes(stats.reclaimable_bytes);
  response->set_free_bytes(stats.free_bytes);
  response->set_live_sequences(stats.live_sequences);
  response->set_reclaimable_sequences(stats.reclaimable_sequences);
  response->set_leases(stats.leases);
  response->set_sequences_created(stats.sequences_created);
  response->set_sequences_evicted(stats.sequences_evicted);
  response->set_leases_expired(stats.leases_expired);
  response->set_sequences_recovered(stats.sequences_recovered);
  return grpc::Status::OK;
}

grpc::Status PoolServiceImpl::HandleHealth(const v1::HealthRequest&, v1::HealthResponse* response) {
  response->set_serving(true);
  response->set_version(kVersion);
  response->set_uptime_ms(absl::ToInt64Milliseconds(clock_->Now() - started_));
  response->set_regions(static_cast<uint32_t>(pool_->region_count()));
  response->set_incarnation(pool_->incarnation());
  return grpc::Status::OK;
}

}  // namespace sparsepool

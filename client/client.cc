// The Client behind sparsepool_client.h: a gRPC stub for the control plane, a layout
// cache, a data plane for the bytes, and a background lease renewal.
#include <unistd.h>

#include <algorithm>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/client_internal.h"
#include "client/client_metrics.h"
#include "client/cluster_client.h"
#include "client/layout_cache.h"
#include "client/lease_keeper.h"
#include "client/remote_data_planes.h"
#include "client/sparsepool_client.h"
#include "common/channel_security.h"
#include "common/grpc_status.h"
#include "common/layout_proto.h"
#include "common/rate_pacer.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "proto/sparsepool.grpc.pb.h"
#include "transport/cxl/cxl_data_plane.h"

namespace sparsepool {
namespace {

std::string MakeClientId() {
  char host[64] = {};
  gethostname(host, sizeof(host) - 1);
  std::random_device random;
  // Fits the daemon's 63-byte limit whatever the host name.
  return absl::StrFormat("%.32s:%d:%08x", host, getpid(), random());
}

absl::StatusOr<std::unique_ptr<DataPlane>> MakeDataPlane(const ClientOptions& options, const std::string& client_id,
                                                         std::shared_ptr<grpc::Channel> channel) {
  if (options.transport == "cxl") {
    if (options.copy_threads < 1 || options.copy_threads > kMaxCopyThreads) {
      return absl::InvalidArgumentError(absl::StrCat("copy_threads is ", options.copy_threads,
                                                     "; it must be 1 to ", kMaxCopyThreads));
    }
    return std::unique_ptr<DataPlane>(new CxlDataPlane(options.copy_threads));
  }
  return client_detail::MakeRemoteDataPlane(options, client_id, std::move(channel));
}

class ClientImpl final : public Client {
 public:
  ClientImpl(ClientOptions options, std::string client_id, std::shared_ptr<grpc::Channel> channel,
             std::unique_ptr<DataPlane> data_plane, std::shared_ptr<RatePacer> fetch_pacer)
      : options_(std::move(options)), client_id_(std::move(client_id)),
        stub_(v1::PoolService::NewStub(channel)), data_plane_(std::move(data_plane)),
        fetch_pacer_(std::move(fetch_pacer)) {}

  // Started after construction so the thread never sees a half-built client. The
  // client's writes are fenced from the first (the registration is answered before
  // this returns); without a lease loop they are not, and only the daemon's reuse
  // grace keeps a write racing a release out of reused pages.
  absl::Status StartKeepAlive() {
    if (options_.keepalive_interval <= absl::ZeroDuration()) return absl::OkStatus();
    auto keeper = LeaseKeeper::Start(stub_.get(), client_id_, options_.address, options_.token, &fence_,
                                     options_.keepalive_interval, options_.rpc_timeout);
    if (!keeper.ok()) return keeper.status();
    keepalive_ = *std::move(keeper);
    data_plane_->set_release_fence(&fence_);
    return absl::OkStatus();
  }

  ReleaseFence* release_fence() { return keepalive_ != nullptr ? &fence_ : nullptr; }

  ~ClientImpl() override {
    keepalive_.reset();
    {
      // Growth ahead is the client's own business: it does not hold up closing (a
      // daemon out of reach would, for its deadline). Cancelled outside the lock, which
      // the calls' callbacks take.
      std::vector<std::shared_ptr<AsyncCall<v1::ExtendSequenceRequest, v1::ExtendSequenceResponse>>> calls;
      {
        absl::MutexLock lock(&growing_mu_);
        for (auto& [id, call] : growing_) calls.push_back(call);
      }
      for (auto& call : calls) call->context.TryCancel();
    }
    // Asynchronous calls' callbacks use this client: wait for the last one.
    absl::MutexLock lock(&async_mu_);
    async_mu_.Await(absl::Condition(+[](int* n) { return *n == 0; }, &async_in_flight_));
  }

  const std::string& client_id() const override { return client_id_; }

  absl::StatusOr<SequenceId> CreateSequence(const SequenceSpec& spec) override {
    v1::CreateSequenceResponse response;
    absl::Status status =
        Call("CreateSequence", &v1::PoolService::Stub::CreateSequence, CreateRequest(spec), &response);
    if (!status.ok()) return status;
    return CacheCreated(response);
  }

  void CreateSequenceAsync(const SequenceSpec& spec,
                           std::function<void(absl::StatusOr<SequenceId>)> done) override {
    auto call = std::make_shared<AsyncCall<v1::CreateSequenceRequest, v1::CreateSequenceResponse>>();
    call->request = CreateRequest(spec);
    StartAsync(call, &v1::PoolService::Stub::async_interface::CreateSequence, "CreateSequence",
               [this, call, done = std::move(done)](absl::Status status) {
                 if (!status.ok()) return done(status);
                 done(CacheCreated(call->response));
               });
  }

  void ReleaseSequenceAsync(SequenceId id, std::function<void(absl::Status)> done) override {
    layouts_.Erase(id);
    ForgetGrowth(id);
    auto call = std::make_shared<AsyncCall<v1::ReleaseSequenceRequest, v1::ReleaseSequenceResponse>>();
    call->request.set_client_id(client_id_);
    call->request.set_sequence_id(id);
    StartAsync(call, &v1::PoolService::Stub::async_interface::ReleaseSequence, "ReleaseSequence",
               [call, done = std::move(done)](absl::Status status) { done(status); });
  }

  absl::Status ExtendSequence(SequenceId id, uint64_t total_tokens) override {
    return ExtendBy(id, total_tokens, absl::InfiniteFuture());
  }

  absl::Status ReleaseSequence(SequenceId id) override {
    layouts_.Erase(id);
    ForgetGrowth(id);
    v1::ReleaseSequenceRequest request;
    request.set_client_id(client_id_);
    request.set_sequence_id(id);
    v1::ReleaseSequenceResponse response;
    return Call("ReleaseSequence", &v1::PoolService::Stub::ReleaseSequence, request, &response);
  }

  absl::Status AdoptSequence(SequenceId id) override {
    v1::AdoptSequenceRequest request;
    request.set_client_id(client_id_);
    request.set_sequence_id(id);
    v1::AdoptSequenceResponse response;
    absl::Status status = Call("AdoptSequence", &v1::PoolService::Stub::AdoptSequence, request, &response);
    if (!status.ok()) return Forget(id, status);
    return CacheLayout(response.layout()).status();
  }

  absl::StatusOr<SequenceLayout> Layout(SequenceId id) {
    auto layout = Refresh(id);
    if (!layout.ok()) return layout.status();
    return **layout;
  }

  absl::StatusOr<std::shared_ptr<const SequenceLayout>> CachedLayout(SequenceId id) { return Cached(id); }

  absl::StatusOr<SequenceInfo> Info(SequenceId id) override {
    auto layout = Refresh(id);
    if (!layout.ok()) return layout.status();
    SequenceInfo info;
    info.layers = (*layout)->layers;
    info.entry_bytes = (*layout)->entry_bytes;
    info.entry_stride = (*layout)->entry_stride;
    info.page_tokens = (*layout)->page_tokens;
    info.tokens = (*layout)->tokens;
    info.tenant = (*layout)->tenant;
    return info;
  }

  absl::Status WriteStep(absl::Span<const SequenceId> batch, absl::Span<const uint64_t> positions,
                         absl::Span<const std::byte> entries) override {
    if (positions.size() != batch.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(positions.size(), " positions for a batch of ", batch.size(), " sequences"));
    }
    if (batch.empty()) {
      if (entries.empty()) return absl::OkStatus();
      return absl::InvalidArgumentError(absl::StrCat(entries.size(), " bytes of entries for an empty batch"));
    }
    // Everything is checked before any room is reserved or any entry written. The RPCs
    // this call may make (layouts, growth) share one deadline.
    const absl::Time deadline = absl::Now() + options_.rpc_timeout;
    std::vector<LayoutCache::Entry> layouts(batch.size());
    for (size_t row = 0; row < batch.size(); ++row) {
      if (positions[row] >= kMaxSequenceTokens) {
        return absl::InvalidArgumentError(absl::StrCat("position ", positions[row], " of sequence ", batch[row],
                                                       " (batch row ", row, ") is past the limit of ",
                                                       kMaxSequenceTokens, " tokens (token indices are int32)"));
      }
      auto layout = Cached(batch[row], deadline);
      if (!layout.ok()) return layout.status();
      layouts[row] = *std::move(layout);
    }
    const uint32_t layers = layouts[0]->layers;
    const uint32_t entry_bytes = layouts[0]->entry_bytes;
    for (size_t row = 0; row < batch.size(); ++row) {
      if (layouts[row]->layers != layers || layouts[row]->entry_bytes != entry_bytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sequence ", batch[row], " (batch row ", row, ") has ", layouts[row]->layers, " layers of ",
            layouts[row]->entry_bytes, "-byte entries; row 0 has ", layers, " of ", entry_bytes));
      }
    }
    const uint64_t row_bytes = uint64_t{layers} * entry_bytes;
    if (entries.size() != batch.size() * row_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("entries of ", entries.size(), " bytes, expected ",
                                                     batch.size() * row_bytes, " (", batch.size(), " rows x ", layers,
                                                     " layers x ", entry_bytes, " bytes)"));
    }
    for (size_t row = 0; row < batch.size(); ++row) {
      if (positions[row] < layouts[row]->tokens) continue;
      {
        absl::MutexLock lock(&metrics_mu_);
        ++metrics_.step_growth_waits;
      }
      auto grown = MakeRoom(batch[row], row, positions[row], deadline);
      if (!grown.ok()) return grown.status();
      layouts[row] = *std::move(grown);
    }
    uint64_t written = 0;  // counted once for the step: a lock per entry would cost the step
    for (size_t row = 0; row < batch.size(); ++row) {
      for (uint32_t layer = 0; layer < layers; ++layer) {
        WriteRange range;
        range.sequence = layouts[row].get();
        range.layer = layer;
        range.first_token = positions[row];
        range.entries = entries.subspan(row * row_bytes + uint64_t{layer} * entry_bytes, entry_bytes);
        if (absl::Status s = data_plane_->Write(range); !s.ok()) {
          RecordWrites(written + 1, written * entry_bytes, s);
          return ForgetAfterDataPlane(batch[row], s);
        }
        ++written;
      }
    }
    RecordWrites(written, written * entry_bytes, absl::OkStatus());
    for (size_t row = 0; row < batch.size(); ++row) GrowAhead(batch[row], positions[row], *layouts[row]);
    return absl::OkStatus();
  }

  absl::Duration PaceFetch(uint64_t bytes) override {
    if (fetch_pacer_ == nullptr) return absl::ZeroDuration();
    const absl::Duration waited = fetch_pacer_->Acquire(bytes);
    if (waited > absl::ZeroDuration()) {
      absl::MutexLock lock(&metrics_mu_);
      metrics_.fetch_paced_seconds += absl::ToDoubleSeconds(waited);
    }
    return waited;
  }

  absl::Status WriteEntries(SequenceId id, uint32_t layer, uint64_t first_token,
                            absl::Span<const std::byte> entries) override {
    auto layout = Cached(id);
    if (!layout.ok()) return layout.status();
    const uint32_t entry_bytes = (*layout)->entry_bytes;
    const uint64_t end = first_token + entries.size() / entry_bytes;
    if (end > (*layout)->tokens) {
      // Another client (a prefill worker) may have grown it since we cached it.
      layout = RefreshGrown(id);
      if (!layout.ok()) return layout.status();
    }
    WriteRange range;
    range.sequence = layout->get();
    range.layer = layer;
    range.first_token = first_token;
    range.entries = entries;
    absl::Status written = data_plane_->Write(range);
    RecordWrites(1, written.ok() ? entries.size() : 0, written);
    return ForgetAfterDataPlane(id, written);
  }

  absl::Status FetchTopK(uint32_t layer, absl::Span<const SequenceId> batch,
                         absl::Span<const int32_t> indices, absl::Span<std::byte> out) override {
    if (batch.empty()) {
      return indices.empty() ? absl::OkStatus()
                             : absl::InvalidArgumentError(absl::StrCat(
                                   indices.size(), " indices given for an empty batch"));
    }
    if (indices.size() % batch.size() != 0) {
      return absl::InvalidArgumentError(absl::StrCat(indices.size(), " indices do not split into ",
                                                     batch.size(), " rows of k each"));
    }
    const size_t k = indices.size() / batch.size();
    std::vector<LayoutCache::Entry> held(batch.size());
    std::vector<const SequenceLayout*> rows(batch.size());
    for (size_t row = 0; row < batch.size(); ++row) {
      auto layout = Cached(batch[row]);
      if (!layout.ok()) return layout.status();
      const auto selected = indices.subspan(row * k, k);
      const int32_t highest = selected.empty() ? -1 : *std::max_element(selected.begin(), selected.end());
      if (highest >= 0 && static_cast<uint64_t>(highest) >= (*layout)->tokens) {
        layout = RefreshGrown(batch[row]);
        if (!layout.ok()) return layout.status();
      }
      held[row] = *layout;
      rows[row] = held[row].get();
    }
    GatherBatch gather;
    gather.layer = layer;
    gather.sequences = rows;
    gather.indices = indices;
    gather.out = out;
    // What the call delivers: padding (-1) is not read.
    const uint64_t selected = std::count_if(indices.begin(), indices.end(), [](int32_t i) { return i >= 0; });
    PaceFetch(selected * rows[0]->entry_bytes);
    const absl::Time start = absl::Now();
    absl::Status fetched = data_plane_->Gather(gather);
    RecordFetch(layer, selected, rows[0]->entry_bytes, absl::Now() - start, fetched);
    for (SequenceId id : batch) fetched = ForgetAfterDataPlane(id, fetched);
    return fetched;
  }

  ClientMetrics Metrics() const override {
    absl::MutexLock lock(&metrics_mu_);
    return metrics_;
  }

 private:
  v1::CreateSequenceRequest CreateRequest(const SequenceSpec& spec) const {
    v1::CreateSequenceRequest request;
    request.set_client_id(client_id_);
    request.set_tenant(spec.tenant);
    request.set_layers(spec.layers);
    request.set_entry_bytes(spec.entry_bytes);
    request.set_entry_alignment(spec.entry_alignment);
    request.set_page_tokens(spec.page_tokens);
    request.set_tokens(spec.tokens);
    if (spec.placement_key.has_value()) request.set_placement_key(*spec.placement_key);
    request.set_stripes(spec.stripes);
    return request;
  }

  absl::StatusOr<SequenceId> CacheCreated(const v1::CreateSequenceResponse& response) {
    auto layout = CacheLayout(response.layout());
    if (!layout.ok()) return layout.status();
    return (*layout)->sequence_id;
  }

  // Every layout the daemon sends is checked (LayoutFromProto) and cached.
  absl::StatusOr<LayoutCache::Entry> CacheLayout(const v1::SequenceLayout& proto) {
    auto layout = LayoutFromProto(proto);
    if (!layout.ok()) return layout.status();
    return layouts_.Put(*std::move(layout));
  }

  // What an asynchronous call keeps alive until its callback has run.
  template <typename Request, typename Response>
  struct AsyncCall {
    grpc::ClientContext context;
    Request request;
    Response response;
  };

  template <typename Request, typename Response>
  using AsyncMethod = void (v1::PoolService::Stub::async_interface::*)(grpc::ClientContext*, const Request*,
                                                                       Response*, std::function<void(grpc::Status)>);

  // Starts a callback-API call with the client's deadline; `finish` gets its status
  // (named like the blocking calls' errors). The destructor waits for it.
  template <typename Request, typename Response>
  void StartAsync(const std::shared_ptr<AsyncCall<Request, Response>>& call, AsyncMethod<Request, Response> method,
                  const char* name, std::function<void(absl::Status)> finish) {
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
    call->context.set_wait_for_ready(true);  // as CallWithDeadline: ride out a restart
    AddToken(call->context, options_.token);
    {
      absl::MutexLock lock(&async_mu_);
      ++async_in_flight_;
    }
    (stub_->async()->*method)(&call->context, &call->request, &call->response,
                              [this, name, finish = std::move(finish)](grpc::Status status) mutable {
                                finish(FromGrpcStatus(status, absl::StrCat(name, " to ", options_.address)));
                                // `finish` holds the last reference to the call's
                                // ClientContext. gRPC destroys this callback only after
                                // it returns, when the destructor may already have seen
                                // the count reach zero and torn down the channel:
                                // destroy the context now, while the client is whole
                                // (gRPC's own reference to the call keeps it valid).
                                finish = nullptr;
                                absl::MutexLock lock(&async_mu_);
                                --async_in_flight_;
                              });
  }

  template <typename Request, typename Response>
  using Method = grpc::Status (v1::PoolService::Stub::*)(grpc::ClientContext*, const Request&,
                                                         Response*);

  // One RPC within rpc_timeout, and within `deadline` when a call of ours makes several
  // (WriteStep making room): the caller's call as a whole keeps to rpc_timeout.
  template <typename Request, typename Response>
  absl::Status Call(const char* name, Method<Request, Response> method, const Request& request,
                    Response* response, absl::Time deadline = absl::InfiniteFuture()) {
    const absl::Duration timeout = std::min(options_.rpc_timeout, deadline - absl::Now());
    if (timeout <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(name, " to ", options_.address, " not sent: the call's ",
                                                      absl::FormatDuration(options_.rpc_timeout),
                                                      " deadline (rpc_timeout) has passed"));
    }
    return CallWithDeadline(*stub_, method, name, options_.address, timeout, options_.token, request, response);
  }

  absl::Status ExtendBy(SequenceId id, uint64_t total_tokens, absl::Time deadline) {
    v1::ExtendSequenceRequest request;
    request.set_client_id(client_id_);
    request.set_sequence_id(id);
    request.set_tokens(total_tokens);
    v1::ExtendSequenceResponse response;
    absl::Status status =
        Call("ExtendSequence", &v1::PoolService::Stub::ExtendSequence, request, &response, deadline);
    if (!status.ok()) return Forget(id, status);
    return CacheLayout(response.layout()).status();
  }

  absl::StatusOr<LayoutCache::Entry> Cached(SequenceId id, absl::Time deadline = absl::InfiniteFuture()) {
    if (LayoutCache::Entry entry = layouts_.Find(id)) return entry;
    return Refresh(id, deadline);
  }

  absl::StatusOr<LayoutCache::Entry> Refresh(SequenceId id, absl::Time deadline = absl::InfiniteFuture()) {
    v1::GetLayoutRequest request;
    request.set_client_id(client_id_);
    request.set_sequence_id(id);
    v1::GetLayoutResponse response;
    absl::Status status = Call("GetLayout", &v1::PoolService::Stub::GetLayout, request, &response, deadline);
    if (!status.ok()) return Forget(id, status);
    return CacheLayout(response.layout());
  }

  // A call named tokens past the cached layout: the sequence may have grown under it.
  absl::StatusOr<LayoutCache::Entry> RefreshGrown(SequenceId id) {
    {
      absl::MutexLock lock(&metrics_mu_);
      ++metrics_.layouts_refreshed;
    }
    return Refresh(id);
  }

  // Room for token `position` of `id` (batch row `row` of a WriteStep), reserved ahead
  // in whole pages: reserve_tokens past it, or only the page it needs when the pool
  // cannot give that much; nothing when another client grew the sequence first.
  absl::StatusOr<LayoutCache::Entry> MakeRoom(SequenceId id, size_t row, uint64_t position, absl::Time deadline) {
    AwaitGrowthAhead(id, deadline);
    // A growth ahead that landed meanwhile put its layout in the cache.
    if (LayoutCache::Entry grown = layouts_.Find(id); grown && position < grown->tokens) return grown;
    auto layout = Refresh(id, deadline);
    if (!layout.ok()) return layout.status();
    if (position < (*layout)->tokens) return layout;
    const uint64_t page = (*layout)->page_tokens;
    const auto in_pages = [page](uint64_t tokens) {
      return std::min((tokens + page - 1) / page * page, kMaxSequenceTokens);
    };
    const uint64_t ahead = in_pages(position + 1 + options_.reserve_tokens);
    const uint64_t needed = in_pages(position + 1);
    // Reserving ahead is worth half the time left: the page it needs must still get the
    // other half when the pool cannot give that much.
    const absl::Time ahead_deadline = absl::Now() + (deadline - absl::Now()) / 2;
    absl::Status extended = ExtendBy(id, ahead, needed < ahead ? ahead_deadline : deadline);
    if ((absl::IsResourceExhausted(extended) || absl::IsDeadlineExceeded(extended)) && needed < ahead) {
      extended = ExtendBy(id, needed, deadline);
    }
    if (extended.ok()) {
      ForgetGrowth(id);  // grown: growing ahead may be tried again
      return Cached(id);
    }
    // The daemon refuses to shrink: another client may have grown it past `ahead`.
    if (auto now = Refresh(id, deadline); now.ok() && position < (*now)->tokens) return now;
    return absl::Status(extended.code(), absl::StrCat("making room for position ", position, " of sequence ", id,
                                                      " (batch row ", row, "): ", extended.message()));
  }

  // Growth off the step: once a sequence's room past `position` falls to half of
  // reserve_tokens, one ExtendSequence to reserve_tokens past it goes out in the
  // background (marked `ahead`: the daemon serves it behind the growths steps wait
  // for), so that a WriteStep waits for growth (MakeRoom) only when the room is gone
  // before that lands. A failure here is left to MakeRoom, which will meet it; after a
  // refusal for room, no more growth ahead for the sequence until MakeRoom has grown
  // it (else every step would ask again).
  void GrowAhead(SequenceId id, uint64_t position, const SequenceLayout& layout) {
    if (options_.reserve_tokens < 2 || layout.tokens > position + 1 + options_.reserve_tokens / 2) return;
    auto call = std::make_shared<AsyncCall<v1::ExtendSequenceRequest, v1::ExtendSequenceResponse>>();
    {
      absl::MutexLock lock(&growing_mu_);
      if (growing_.contains(id) || no_growth_ahead_.contains(id)) return;  // one at a time per sequence
      growing_[id] = call;
    }
    call->request.set_client_id(client_id_);
    call->request.set_sequence_id(id);
    call->request.set_ahead(true);
    // Whole pages, as MakeRoom asks: the pages are reserved anyway.
    const uint64_t page = std::max<uint64_t>(layout.page_tokens, 1);
    const uint64_t ahead = (position + 1 + options_.reserve_tokens + page - 1) / page * page;
    call->request.set_tokens(std::min(ahead, kMaxSequenceTokens));
    StartAsync(call, &v1::PoolService::Stub::async_interface::ExtendSequence, "ExtendSequence",
               [this, call, id](absl::Status status) {
                 if (status.ok()) {
                   if (auto layout = LayoutFromProto(call->response.layout()); layout.ok()) {
                     layouts_.PutIfCached(*std::move(layout));
                   }
                 }
                 absl::MutexLock lock(&growing_mu_);
                 if (absl::IsResourceExhausted(status)) no_growth_ahead_.insert(id);
                 growing_.erase(id);
               });
  }

  // Waits (until `deadline`) for a growth ahead of `id` in flight: a second Extend of
  // the same sequence would only wait for it in the daemon, holding one of its threads.
  void AwaitGrowthAhead(SequenceId id, absl::Time deadline) {
    absl::MutexLock lock(&growing_mu_);
    const auto landed = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(growing_mu_) { return !growing_.contains(id); };
    growing_mu_.AwaitWithDeadline(absl::Condition(&landed), deadline);
  }

  // A released sequence's growth state goes with it.
  void ForgetGrowth(SequenceId id) {
    absl::MutexLock lock(&growing_mu_);
    no_growth_ahead_.erase(id);
  }

  // A sequence the daemon no longer knows must not be served from a stale layout. (A
  // daemon that does not answer says nothing of its layouts: over CXL they go on
  // serving loads and stores while it is down.)
  absl::Status Forget(SequenceId id, absl::Status status) {
    if (absl::IsNotFound(status)) layouts_.Erase(id);
    return status;
  }
  // After a data-plane call on `id`'s cached layout: NotFound (released under it) or
  // Unavailable (the RDMA peer it names is gone; a restarted daemon has other addresses
  // and keys) make the next call ask for a fresh one.
  absl::Status ForgetAfterDataPlane(SequenceId id, absl::Status status) {
    if (absl::IsUnavailable(status)) layouts_.Erase(id);
    return Forget(id, status);
  }

  // Counts what the engine exports (client_metrics.h): one lock per call, never per
  // entry.
  // `selected`: the call's entries, padding not counted.
  void RecordFetch(uint32_t layer, uint64_t selected, uint32_t entry_bytes, absl::Duration took,
                   const absl::Status& status) {
    absl::MutexLock lock(&metrics_mu_);
    TransportCounters& counters = metrics_.transports[options_.transport];
    ++counters.fetch_calls;
    if (!status.ok()) {
      ++counters.fetch_errors;
      CountStaleLayout(status);
      return;
    }
    counters.entries_fetched += selected;
    counters.bytes_fetched += selected * entry_bytes;
    // `layer` passed the data plane's check against the sequence's layers (at most kMaxLayers).
    if (metrics_.fetch_seconds_by_layer.size() <= layer) metrics_.fetch_seconds_by_layer.resize(layer + 1);
    metrics_.fetch_seconds_by_layer[layer].Observe(absl::ToDoubleSeconds(took));
  }
  // `calls` data-plane writes that wrote `bytes`; the last failed unless `last` is OK.
  void RecordWrites(uint64_t calls, uint64_t bytes, const absl::Status& last) {
    absl::MutexLock lock(&metrics_mu_);
    TransportCounters& counters = metrics_.transports[options_.transport];
    counters.write_calls += calls;
    counters.bytes_written += bytes;
    if (!last.ok()) {
      ++counters.write_errors;
      CountStaleLayout(last);
    }
  }
  // Once per data-plane call, whatever the batch: NotFound (released under the cached
  // layout) or Unavailable (its RDMA peer unreachable), after which the layout is dropped.
  void CountStaleLayout(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(metrics_mu_) {
    if (absl::IsNotFound(status) || absl::IsUnavailable(status)) ++metrics_.stale_layout_refusals;
  }

  const ClientOptions options_;
  const std::string client_id_;
  std::unique_ptr<v1::PoolService::Stub> stub_;
  ReleaseFence fence_;  // before the data plane and the keeper, which use it
  std::unique_ptr<DataPlane> data_plane_;
  // options_.fetch_bytes_per_second's (a cluster client's, shared by its node
  // connections); null: unpaced.
  const std::shared_ptr<RatePacer> fetch_pacer_;
  LayoutCache layouts_;
  std::unique_ptr<LeaseKeeper> keepalive_;
  absl::Mutex async_mu_;
  int async_in_flight_ ABSL_GUARDED_BY(async_mu_) = 0;
  absl::Mutex growing_mu_;
  // GrowAhead's calls in flight (cancelled when the client closes), and the sequences
  // whose growth ahead the pool refused for room.
  absl::flat_hash_map<SequenceId, std::shared_ptr<AsyncCall<v1::ExtendSequenceRequest, v1::ExtendSequenceResponse>>>
      growing_ ABSL_GUARDED_BY(growing_mu_);
  absl::flat_hash_set<SequenceId> no_growth_ahead_ ABSL_GUARDED_BY(growing_mu_);
  mutable absl::Mutex metrics_mu_;
  ClientMetrics metrics_ ABSL_GUARDED_BY(metrics_mu_);
};

}  // namespace

namespace internal {
namespace {

// The internal calls reach into the client Client::Connect made; any other Client (a
// wrapper, a test double) is refused rather than cast blindly.
absl::StatusOr<ClientImpl*> Connected(Client& client) {
  if (auto* impl = dynamic_cast<ClientImpl*>(&client)) return impl;
  return absl::FailedPreconditionError(
      "the GPU path and the C ABI need a client made by Client::Connect, not another implementation of Client");
}

}  // namespace

absl::StatusOr<SequenceLayout> Layout(Client& client, SequenceId id) {
  auto impl = Connected(client);
  if (!impl.ok()) return impl.status();
  return (*impl)->Layout(id);
}

absl::StatusOr<std::shared_ptr<const SequenceLayout>> CachedLayout(Client& client, SequenceId id) {
  auto impl = Connected(client);
  if (!impl.ok()) return impl.status();
  return (*impl)->CachedLayout(id);
}

absl::StatusOr<ReleaseFence*> Fence(Client& client) {
  auto impl = Connected(client);
  if (!impl.ok()) return impl.status();
  return (*impl)->release_fence();
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (!options.etcd.empty()) {
    ClientOptions cluster = options;
    if (cluster.client_id.empty()) cluster.client_id = MakeClientId();
    return internal::ConnectCluster(cluster);
  }
  absl::StatusOr<std::shared_ptr<RatePacer>> pacer = internal::FetchPacerFor(options);
  if (!pacer.ok()) return pacer.status();
  return internal::ConnectNode(options, *std::move(pacer));
}

namespace internal {

absl::StatusOr<std::shared_ptr<RatePacer>> FetchPacerFor(const ClientOptions& options) {
  if (options.fetch_bytes_per_second == 0) return std::shared_ptr<RatePacer>();
  if (options.fetch_pacer_file.empty()) {
    return std::make_shared<RatePacer>(options.fetch_bytes_per_second, options.fetch_burst);
  }
  absl::StatusOr<std::unique_ptr<RatePacer>> shared =
      RatePacer::OpenShared(options.fetch_pacer_file, options.fetch_bytes_per_second, options.fetch_burst);
  if (!shared.ok()) return shared.status();
  return std::shared_ptr<RatePacer>(*std::move(shared));
}

absl::StatusOr<std::unique_ptr<Client>> ConnectNode(const ClientOptions& options,
                                                    std::shared_ptr<RatePacer> fetch_pacer) {
  std::string client_id = options.client_id.empty() ? MakeClientId() : options.client_id;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  ChannelSecurity security;
  security.tls_root_certs = options.tls_root_certs;
  security.tls_cert = options.tls_cert;
  security.tls_key = options.tls_key;
  auto credentials = ChannelCredentialsFor(security);
  if (!credentials.ok()) return credentials.status();
  auto channel = grpc::CreateCustomChannel(options.address, *credentials, args);
  auto data_plane = MakeDataPlane(options, client_id, channel);
  if (!data_plane.ok()) return data_plane.status();
  auto stub = v1::PoolService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options.rpc_timeout));
  context.set_wait_for_ready(true);  // ride out the daemon's start-up
  v1::HealthRequest request;
  v1::HealthResponse response;
  const grpc::Status health = stub->Health(&context, request, &response);
  if (!health.ok()) {
    return absl::UnavailableError(absl::StrCat("sparsepool daemon at ", options.address,
                                               " did not answer: ", health.error_message()));
  }
  auto client = std::make_unique<ClientImpl>(options, std::move(client_id), channel, *std::move(data_plane),
                                             std::move(fetch_pacer));
  if (absl::Status started = client->StartKeepAlive(); !started.ok()) return started;
  return std::unique_ptr<Client>(std::move(client));
}

}  // namespace internal

}  // namespace sparsepool

#include "transport/rdma/ucx_data_plane.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "transport/sequence_liveness.h"
#include "transport/rdma/read_plan.h"

namespace sparsepool {

absl::StatusOr<std::unique_ptr<UcxDataPlane>> UcxDataPlane::Create(absl::Duration timeout) {
  auto ucx = UcxContext::Create();
  if (!ucx.ok()) return ucx.status();
  std::unique_ptr<UcxDataPlane> plane(new UcxDataPlane(timeout));
  absl::MutexLock lock(&plane->mu_);
  plane->ucx_ = *std::move(ucx);
  return plane;
}

uint64_t UcxDataPlane::gets_issued() const {
  absl::MutexLock lock(&mu_);
  return gets_;
}

void UcxDataPlane::set_coalesce(bool coalesce) {
  absl::MutexLock lock(&mu_);
  coalesce_ = coalesce;
}

absl::StatusOr<UcxDataPlane::Peer> UcxDataPlane::PeerFor(const RegionRef& region) {
  if (ucx_ == nullptr) return absl::UnavailableError("UCX could not be set up again after a peer failure");
  if (region.ucx_worker_address.empty() || region.ucx_rkey.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "region ", region.path, " is not published over UCX; start sparsepoold with --ucx=true"));
  }
  auto& endpoint = endpoints_[region.ucx_worker_address];
  if (endpoint == nullptr) {
    auto connected = UcxEndpoint::Connect(ucx_.get(), region.ucx_worker_address);
    if (!connected.ok()) {
      endpoints_.erase(region.ucx_worker_address);
      return connected.status();
    }
    endpoint = *std::move(connected);
  }
  // A key is unpacked on one endpoint and names one registration: a restarted daemon
  // (a new worker address, a new packed key for the same region) needs a key of its own.
  const std::string key = absl::StrCat(region.ucx_worker_address, "/", region.ucx_rkey);
  auto& rkey = rkeys_[key];
  if (rkey == nullptr) {
    auto unpacked = UcxRkey::Unpack(endpoint->ep(), region.ucx_rkey);
    if (!unpacked.ok()) {
      rkeys_.erase(key);
      return unpacked.status();
    }
    rkey = *std::move(unpacked);
  }
  return Peer{endpoint->ep(), rkey->rkey()};
}

absl::Status UcxDataPlane::Finish(std::vector<void*>& requests, const char* what) {
  absl::Status status = ucx_->Wait(requests, timeout_, what);
  if (absl::IsDeadlineExceeded(status)) {
    // Requests to a vanished peer may still be pending inside this worker: never touch
    // it again, so nothing lands late in a buffer the caller has reused. Its objects
    // are leaked on purpose (destroying them would wait on the dead peer); a daemon
    // failure costs one worker.
    for (auto& [key, rkey] : rkeys_) rkey.release();
    for (auto& [address, endpoint] : endpoints_) endpoint.release();
    rkeys_.clear();
    endpoints_.clear();
    ucx_.release();
    auto fresh = UcxContext::Create();
    if (fresh.ok()) ucx_ = *std::move(fresh);
    return absl::UnavailableError(status.message());
  }
  if (!status.ok()) {
    // Keys belong to endpoints: drop both, and reconnect on the next call.
    rkeys_.clear();
    endpoints_.clear();
  }
  return status;
}

absl::Status UcxDataPlane::GatherValidated(const GatherBatch& batch) {
  absl::MutexLock lock(&mu_);
  const std::vector<ReadRequest> reads = PlanReads(batch, coalesce_);
  // Each row's pages of this layer, and its record (in the home region: another region
  // when the sequence is striped).
  std::vector<Peer> peers;
  std::vector<Peer> homes;
  for (const SequenceLayout* seq : batch.sequences) {
    auto peer = PeerFor(seq->LayerRegion(batch.layer));
    if (!peer.ok()) return peer.status();
    peers.push_back(*peer);
    auto home = seq->stripe_regions.empty() ? peer : PeerFor(seq->region);
    if (!home.ok()) return home.status();
    homes.push_back(*home);
  }
  std::vector<void*> requests;
  requests.reserve(reads.size());
  ucp_request_param_t params = {};
  for (const ReadRequest& read : reads) {
    const Peer& peer = peers[read.row];
    requests.push_back(ucp_get_nbx(peer.ep, batch.out.data() + read.local_offset, read.length,
                                   read.remote_address, peer.rkey, &params));
  }
  gets_ += reads.size();
  if (absl::Status s = Finish(requests, "UCX gets of a top-k batch"); !s.ok()) return s;
  // Layouts may be stale (another client released a sequence): were they still live?
  std::vector<const SequenceLayout*> rows(batch.sequences.begin(), batch.sequences.end());
  return CheckLive(rows, homes);
}

absl::Status UcxDataPlane::CheckLive(absl::Span<const SequenceLayout* const> rows, absl::Span<const Peer> peers) {
  std::vector<SequenceId> ids;
  for (const SequenceLayout* row : rows) ids.push_back(row->sequence_id);
  return ReadAndCheckRecords(ids, [&](absl::Span<RecordCopies> copies) {
    std::vector<void*> requests;
    ucp_request_param_t params = {};
    for (size_t row = 0; row < rows.size(); ++row) {
      requests.push_back(ucp_get_nbx(peers[row].ep, copies[row].data(), kRecordCopiesBytes,
                                     rows[row]->region.remote_base + rows[row]->record_offset, peers[row].rkey,
                                     &params));
    }
    return Finish(requests, "UCX gets of sequence records");
  });
}

absl::Status UcxDataPlane::WriteValidated(const WriteRange& range) {
  const SequenceLayout& seq = *range.sequence;
  absl::MutexLock lock(&mu_);
  auto peer = PeerFor(seq.LayerRegion(range.layer));
  if (!peer.ok()) return peer.status();
  auto home = seq.stripe_regions.empty() ? peer : PeerFor(seq.region);
  if (!home.ok()) return home.status();
  // Never write through a stale layout into pages another sequence may now hold; a
  // release racing this very write is reported after it.
  const SequenceLayout* rows[] = {&seq};
  const Peer homes[] = {*home};
  if (absl::Status s = CheckLive(rows, homes); !s.ok()) return s;
  std::vector<void*> requests;
  ucp_request_param_t params = {};
  for (const ReadRequest& write : PlanWrites(range)) {
    requests.push_back(ucp_put_nbx(peer->ep, range.entries.data() + write.local_offset, write.length,
                                   write.remote_address, peer->rkey, &params));
  }
  // Puts complete locally before they land remotely: flush makes them visible.
  requests.push_back(ucp_ep_flush_nbx(peer->ep, &params));
  if (absl::Status s = Finish(requests, "UCX puts of entries"); !s.ok()) return s;
  return CheckLive(rows, homes);
}

}  // namespace sparsepool

#include "transport/rdma/verbs_data_plane.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "transport/sequence_liveness.h"
#include "transport/rdma/read_plan.h"
#include "transport/rdma/verbs_work_requests.h"

namespace sparsepool {
namespace {

absl::Status NotServedOverVerbs(const RegionRef& region) {
  return absl::FailedPreconditionError(absl::StrCat(
      "region ", region.path, " is not served over libibverbs; start sparsepoold with --verbs=true"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<VerbsDataPlane>> VerbsDataPlane::Create(const VerbsOptions& options,
                                                                      VerbsConnector connector) {
  auto device = VerbsDevice::Open(options.device);
  if (!device.ok()) return device.status();
  auto pd = AllocateProtectionDomain(**device);
  if (!pd.ok()) return pd.status();
  std::unique_ptr<VerbsDataPlane> plane(new VerbsDataPlane(options, std::move(connector)));
  absl::MutexLock lock(&plane->mu_);
  plane->device_ = *std::move(device);
  plane->pd_ = *std::move(pd);
  return plane;
}

VerbsDataPlane::~VerbsDataPlane() {
  absl::MutexLock lock(&mu_);
  Disconnect();
}

absl::Status VerbsDataPlane::EnsureConnected() {
  if (qp_ != nullptr) return absl::OkStatus();
  QueuePairOptions qp_options;
  qp_options.port = options_.port;
  qp_options.gid_index = options_.gid_index;
  qp_options.max_send_wr = options_.queue_depth;
  auto qp = RcQueuePair::Create(*device_, pd_.get(), qp_options);
  if (!qp.ok()) return qp.status();
  VerbsPeerInfo local{(*qp)->local(), (*qp)->mtu_bytes()};
  auto remote = connector_(local);
  if (!remote.ok()) return remote.status();
  const uint32_t mtu = std::min(local.mtu_bytes, remote->mtu_bytes);
  if (absl::Status s = (*qp)->Connect(remote->endpoint, mtu); !s.ok()) return s;
  qp_ = *std::move(qp);
  return absl::OkStatus();
}

absl::StatusOr<std::byte*> VerbsDataPlane::Staging(size_t bytes) {
  if (staging_bytes_ >= bytes) return staging_.get();
  staging_mr_.reset();  // no transfer is in flight here: each call waited for its own
  const size_t grown = std::max(bytes, staging_bytes_ * 2);
  auto buffer = std::make_unique<std::byte[]>(grown);
  auto mr = RegisterMemory(pd_.get(), buffer.get(), grown, 0);
  if (!mr.ok()) {
    staging_.reset();
    staging_bytes_ = 0;
    return mr.status();
  }
  staging_ = std::move(buffer);
  staging_bytes_ = grown;
  staging_mr_ = *std::move(mr);
  return staging_.get();
}

absl::Status VerbsDataPlane::Transfer(absl::Span<const ReadRequest> transfers, ibv_wr_opcode opcode,
                                      const std::byte* local, ibv_mr* mr,
                                      absl::FunctionRef<uint32_t(uint32_t)> rkey_of_row, const char* what) {
  const absl::Time deadline = absl::Now() + options_.timeout;
  // Two groups in flight, each half the queue: one is posted while the other completes.
  const std::vector<PostGroup> groups = GroupForDoorbells(transfers.size(), std::max(1u, options_.queue_depth / 2));
  size_t waiting = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    WorkRequestChain chain(transfers.subspan(groups[g].first, groups[g].count), opcode,
                           reinterpret_cast<uint64_t>(local), mr->lkey, rkey_of_row, g);
    if (waiting == 2) {
      if (absl::Status s = qp_->Wait(1, deadline, what); !s.ok()) return s;
      --waiting;
    }
    if (absl::Status s = qp_->Post(chain.head(), what); !s.ok()) return s;
    ++waiting;
  }
  return qp_->Wait(waiting, deadline, what);
}

absl::Status VerbsDataPlane::GatherValidated(const GatherBatch& batch) {
  for (const SequenceLayout* seq : batch.sequences) {
    // The layer's pages, and the record in the home region.
    for (const RegionRef* region : {&seq->LayerRegion(batch.layer), &seq->region}) {
      if (region->verbs_rkey == 0) return NotServedOverVerbs(*region);
    }
  }
  const std::vector<ReadRequest> reads = PlanReads(batch, /*coalesce=*/true);
  if (reads.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  // Room after the entries for the records CheckLive reads.
  auto staging = Staging(batch.out.size() + batch.sequences.size() * kRecordCopiesBytes);
  if (!staging.ok()) return staging.status();
  absl::Status s = Transfer(reads, IBV_WR_RDMA_READ, *staging, staging_mr_.get(),
                            [&](uint32_t row) { return batch.sequences[row]->LayerRegion(batch.layer).verbs_rkey; },
                            "RDMA READs of a top-k batch");
  if (!s.ok()) {
    Disconnect();
    return s;
  }
  // Layouts may be stale (another client released a sequence): were they still live?
  if (absl::Status live = CheckLive(batch.sequences); !live.ok()) return live;
  // Only what was read: padding slots of the caller's buffer stay untouched.
  for (const ReadRequest& read : reads) {
    std::memcpy(batch.out.data() + read.local_offset, *staging + read.local_offset, read.length);
  }
  return absl::OkStatus();
}

absl::Status VerbsDataPlane::CheckLive(absl::Span<const SequenceLayout* const> rows) {
  // Both copies of each row's record, read into the end of the staging buffer, past
  // the batch's entries (read there already and copied out after this).
  const size_t records_bytes = rows.size() * kRecordCopiesBytes;
  if (staging_bytes_ < records_bytes) {
    return absl::InternalError("staging buffer smaller than the records it must hold");
  }
  std::vector<ReadRequest> reads;
  for (size_t row = 0; row < rows.size(); ++row) {
    reads.push_back(ReadRequest{static_cast<uint32_t>(row), rows[row]->region.remote_base + rows[row]->record_offset,
                                static_cast<uint32_t>(kRecordCopiesBytes), staging_bytes_ - records_bytes +
                                                                               row * kRecordCopiesBytes});
  }
  std::vector<SequenceId> ids;
  for (const SequenceLayout* row : rows) ids.push_back(row->sequence_id);
  return ReadAndCheckRecords(ids, [&](absl::Span<RecordCopies> copies) {
    absl::Status read = Transfer(reads, IBV_WR_RDMA_READ, staging_.get(), staging_mr_.get(),
                                 [&](uint32_t row) { return rows[row]->region.verbs_rkey; },
                                 "RDMA READs of sequence records");
    if (!read.ok()) {
      Disconnect();
      return read;
    }
    for (size_t row = 0; row < rows.size(); ++row) {
      std::memcpy(copies[row].data(), staging_.get() + reads[row].local_offset, kRecordCopiesBytes);
    }
    return absl::OkStatus();
  });
}

absl::Status VerbsDataPlane::WriteValidated(const WriteRange& range) {
  const RegionRef& pages = range.sequence->LayerRegion(range.layer);
  for (const RegionRef* region : {&pages, &range.sequence->region}) {
    if (region->verbs_rkey == 0) return NotServedOverVerbs(*region);
  }
  const std::vector<ReadRequest> writes = PlanWrites(range);
  if (writes.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  auto staging = Staging(range.entries.size() + kRecordCopiesBytes);
  if (!staging.ok()) return staging.status();
  // Never write through a stale layout into pages another sequence may now hold; a
  // release racing this very write is reported after it.
  const SequenceLayout* rows[] = {range.sequence};
  if (absl::Status live = CheckLive(rows); !live.ok()) return live;
  std::memcpy(*staging, range.entries.data(), range.entries.size());
  const uint32_t rkey = pages.verbs_rkey;
  absl::Status s = Transfer(writes, IBV_WR_RDMA_WRITE, *staging, staging_mr_.get(), [&](uint32_t) { return rkey; },
                            "RDMA WRITEs of entries");
  if (!s.ok()) {
    Disconnect();
    return s;
  }
  return CheckLive(rows);
}

void VerbsDataPlane::Disconnect() {
  if (qp_ != nullptr) {
    qp_->Abort();
    qp_.reset();
  }
  // The queue pair is gone, so the device no longer touches the staging buffer.
  staging_mr_.reset();
  staging_.reset();
  staging_bytes_ = 0;
}

}  // namespace sparsepool

#include "client/decode_session_impl.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "client/client_internal.h"
#include "common/monotonic_time.h"
#include "kernels/cuda_pointer.h"
#include "kernels/session_kernels.h"
#include "kernels/topk_gather.h"

namespace sparsepool::internal {
namespace {

using kernels::CudaBuffer;
using kernels::CudaMemory;
using kernels::CudaToStatus;

// The public option enums name the kernels' choices one for one.
static_assert(static_cast<uint32_t>(CachePolicy::kLru) == static_cast<uint32_t>(kernels::ResidencyPolicy::kLru));
static_assert(static_cast<uint32_t>(CachePolicy::kDecayedFrequency) ==
              static_cast<uint32_t>(kernels::ResidencyPolicy::kDecayedFrequency));
static_assert(static_cast<int>(GatherOrder::kWarpPerEntry) == static_cast<int>(kernels::GatherAlgorithm::kWarpPerEntry));
static_assert(static_cast<int>(GatherOrder::kSortedByAddress) ==
              static_cast<int>(kernels::GatherAlgorithm::kSortedByAddress));
static_assert(static_cast<int>(GatherOrder::kBatchSortedByAddress) ==
              static_cast<int>(kernels::GatherAlgorithm::kBatchSortedByAddress));

// Region offsets are below this for every region a row may name: it only picks the
// gather's algorithm (its sort keys hold an offset), never bounds a read.
constexpr uint64_t kRegionBytesBound = uint64_t{1} << 44;

// How long PrepareStep waits for a reservation that fell behind.
constexpr absl::Duration kReservationWait = absl::Seconds(30);
// ExtendSequence calls a session has in flight at once, at most (one per row).
constexpr uint32_t kReserverThreads = 8;

template <typename T>
absl::Status AllocateMapped(T** pointer, size_t count) {
  void* memory = nullptr;
  if (cudaError_t e = cudaHostAlloc(&memory, count * sizeof(T), cudaHostAllocMapped); e != cudaSuccess) {
    cudaGetLastError();
    return absl::ResourceExhaustedError(
        absl::StrCat("allocating ", count * sizeof(T), " bytes of mapped pinned memory: ", cudaGetErrorString(e)));
  }
  std::memset(memory, 0, count * sizeof(T));
  *pointer = static_cast<T*>(memory);
  return absl::OkStatus();
}

absl::Status ValidateOptions(const DecodeSessionOptions& o) {
  const auto range = [](const char* name, uint64_t value, uint64_t low, uint64_t high) -> absl::Status {
    if (value >= low && value <= high) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(name, " ", value, " is out of range [", low, ", ", high, "]"));
  };
  for (absl::Status s : {range("max_batch", o.max_batch, 1, kernels::kMaxSessionBatch),
                         range("layers", o.layers, 1, 1024), range("entry_bytes", o.entry_bytes, 1, 1 << 20),
                         range("k", o.k, 1, kernels::kMaxResidencyK), range("max_tokens", o.max_tokens, 1, (uint64_t{1} << 31) - 1),
                         range("page_tokens", o.page_tokens, 1, 1 << 16), range("buffers", o.buffers, 1, 1024),
                         range("reserve_tokens", o.reserve_tokens, 1, (uint64_t{1} << 31) - 1)}) {
    if (!s.ok()) return s;
  }
  if (o.cache_slots != 0 && (o.cache_slots < o.k || o.cache_slots > kernels::kMaxResidencyCapacity)) {
    return absl::InvalidArgumentError(absl::StrCat("cache_slots ", o.cache_slots, " must be 0 (no cache) or from k (",
                                                   o.k, ") to ", kernels::kMaxResidencyCapacity));
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

SessionShape ShapeOf(const DecodeSessionOptions& o) {
  SessionShape shape;
  shape.max_batch = o.max_batch;
  shape.layers = o.layers;
  shape.entry_bytes = o.entry_bytes;
  shape.page_tokens = o.page_tokens;
  shape.max_tokens = o.max_tokens;
  shape.reserve_tokens = o.reserve_tokens;
  return shape;
}

}  // namespace

DecodeSessionImpl::DecodeSessionImpl(Client* client, ReleaseFence* fence, GpuRegionRegistry* regions,
                                     const DecodeSessionOptions& options)
    : client_(client), fence_(fence), regions_(regions), options_(options), rows_(ShapeOf(options)) {}

absl::StatusOr<std::unique_ptr<DecodeSessionImpl>> DecodeSessionImpl::Create(Client* client, GpuRegionRegistry* regions,
                                                                     const DecodeSessionOptions& options) {
  if (client == nullptr || regions == nullptr) return absl::InvalidArgumentError("a session needs a client and a region registry");
  if (absl::Status valid = ValidateOptions(options); !valid.ok()) return valid;
  auto fence = internal::Fence(*client);
  if (!fence.ok()) return fence.status();
  if (absl::Status s = kernels::RequireCudaDevice("a decode session"); !s.ok()) return s;
  std::unique_ptr<DecodeSessionImpl> session(new DecodeSessionImpl(client, *fence, regions, options));
  if (absl::Status allocated = session->Allocate(); !allocated.ok()) return allocated;
  for (uint32_t i = 0; i < std::min(options.max_batch, kReserverThreads); ++i) {
    session->reservers_.emplace_back([s = session.get()] { s->ReserverMain(); });
  }
  return session;
}

absl::Status DecodeSessionImpl::Allocate() {
  const DecodeSessionOptions& o = options_;
  const uint64_t batch = o.max_batch, layers = o.layers;
  const bool cached = o.cache_slots != 0;
  const uint64_t index_buffers = o.buffers;
  auto allocate = [this](auto& buffer, uint64_t count) -> absl::Status {
    using T = std::remove_reference_t<decltype(*buffer.data())>;
    auto allocated = CudaBuffer<T>::Allocate(count, CudaMemory::kDevice);
    if (!allocated.ok()) return allocated.status();
    buffer = *std::move(allocated);
    device_bytes_ += buffer.bytes();
    return absl::OkStatus();
  };
  for (absl::Status s : {allocate(pages_, batch * layers * rows_.max_pages()), allocate(row_tables_, layers * batch),
                         allocate(session_rows_, batch), allocate(step_counter_, 1), allocate(instances_, layers * batch),
                         allocate(flat_, index_buffers * batch * o.k)}) {
    if (!s.ok()) return s;
  }
  if (!cached) {
    if (absl::Status s = allocate(entries_, index_buffers * batch * o.k * o.entry_bytes); !s.ok()) return s;
  } else {
    kernels::ResidencyOptions cache;
    cache.instances = static_cast<uint32_t>(batch * layers);
    cache.capacity = o.cache_slots;
    cache.max_tokens = static_cast<uint32_t>(o.max_tokens);
    cache.entry_bytes = o.entry_bytes;
    cache.policy = static_cast<kernels::ResidencyPolicy>(o.policy);
    cache.lookup_threads = o.cache_lookup_threads;
    cache.fill_warps = o.cache_fill_warps;
    auto created = kernels::ResidencyCache::Create(cache);
    if (!created.ok()) return created.status();
    cache_ = *std::move(created);
    device_bytes_ += batch * layers * (uint64_t{o.cache_slots} * (o.entry_bytes + 14) + o.max_tokens * 4);
    if (o.record_hits_ready) hits_ready_.resize(layers);
    for (cudaEvent_t& event : hits_ready_) {
      if (absl::Status s = CudaToStatus(cudaEventCreate(&event), "creating an event");
          !s.ok()) {
        return s;
      }
    }
  }
  // Every row free (null page tables), counters at zero, instance (row, layer) = row * layers + layer.
  std::vector<uint32_t> instances(layers * batch);
  for (uint64_t layer = 0; layer < layers; ++layer) {
    for (uint64_t row = 0; row < batch; ++row) instances[layer * batch + row] = static_cast<uint32_t>(row * layers + layer);
  }
  for (absl::Status s :
       {CudaToStatus(cudaMemset(row_tables_.data(), 0, row_tables_.bytes()), "clearing row tables"),
        CudaToStatus(cudaMemset(session_rows_.data(), 0, session_rows_.bytes()), "clearing rows"),
        CudaToStatus(cudaMemset(step_counter_.data(), 0, step_counter_.bytes()), "clearing the step counter"),
        CudaToStatus(cudaMemset(flat_.data(), 0xFF, flat_.bytes()), "clearing indices"),
        CudaToStatus(cudaMemcpy(instances_.data(), instances.data(), instances_.bytes(), cudaMemcpyHostToDevice),
                     "uploading instances"),
        AllocateMapped(&reports_, batch), AllocateMapped(&faults_, 2 * layers), AllocateMapped(&steps_done_, 1)}) {
    if (!s.ok()) return s;
  }
  return CudaToStatus(cudaDeviceSynchronize(), "setting up a decode session");
}

DecodeSessionImpl::~DecodeSessionImpl() {
  {
    absl::MutexLock lock(&reserve_mu_);
    stopping_ = true;
  }
  for (std::thread& reserver : reservers_) reserver.join();
  cudaDeviceSynchronize();  // no step of ours may still run when its memory goes
  {
    absl::MutexLock lock(&tickets_mu_);
    tickets_.clear();
  }
  for (cudaEvent_t event : hits_ready_) {
    if (event != nullptr) cudaEventDestroy(event);
  }
  for (void* mapped : {static_cast<void*>(reports_), static_cast<void*>(faults_), static_cast<void*>(steps_done_)}) {
    if (mapped != nullptr) cudaFreeHost(mapped);
  }
}

kernels::SessionStepArgs DecodeSessionImpl::StepArgs() const {
  kernels::SessionStepArgs a;
  a.rows = row_tables_.data();
  a.session_rows = session_rows_.data();
  a.reports = reports_;
  a.step_counter = step_counter_.data();
  a.steps_done = steps_done_;
  a.max_batch = options_.max_batch;
  a.layers = options_.layers;
  return a;
}

// ---- Rows ----

absl::StatusOr<uint32_t> DecodeSessionImpl::Join(SequenceId id, uint64_t tokens, cudaStream_t stream) {
  auto layout = internal::CachedLayout(*client_, id);
  if (!layout.ok()) return layout.status();
  // Room for the first steps now; later reservations run ahead on the reserver threads.
  if (const uint64_t wanted = rows_.InitialReservation(tokens); (*layout)->tokens < wanted && tokens <= wanted) {
    if (absl::Status s = client_->ExtendSequence(id, wanted); !s.ok()) return s;
    layout = internal::CachedLayout(*client_, id);
    if (!layout.ok()) return layout.status();
  }
  // Every stripe's region (one, unless the sequence's layers are striped over several).
  std::vector<const std::byte*> stripe_devices;
  for (uint32_t stripe = 0; stripe < (*layout)->stripes(); ++stripe) {
    auto region = regions_->Register((*layout)->StripeRegion(stripe));
    if (!region.ok()) return region.status();
    stripe_devices.push_back(region->device);
  }
  auto row = rows_.Join(*std::move(layout), tokens, stripe_devices);
  if (!row.ok()) return row.status();
  reports_[*row] = kernels::SessionRowReport{};
  for (absl::Status s : {UploadPages(*row, stream), UploadRow(*row, stream), UploadSessionRow(*row, stream)}) {
    if (!s.ok()) return s;
  }
  if (cache_ != nullptr) {
    if (absl::Status s = cache_->ResetRange(*row * options_.layers, options_.layers, stream); !s.ok()) return s;
  }
  return row;
}

absl::Status DecodeSessionImpl::Leave(uint32_t row, cudaStream_t stream) {
  if (row >= options_.max_batch || !rows_.active(row)) {
    return absl::InvalidArgumentError(absl::StrCat("row ", row, " is not a row the session serves now"));
  }
  rows_.Leave(row);
  for (absl::Status s : {UploadRow(row, stream), UploadSessionRow(row, stream)}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

uint64_t* DecodeSessionImpl::RowPagesOnDevice(uint32_t row) const {
  return pages_.data() + uint64_t{row} * options_.layers * rows_.max_pages();
}

absl::Status DecodeSessionImpl::UploadPages(uint32_t row, cudaStream_t stream) {
  // Read before the range is taken: the layout whose pages are uploaded.
  const SessionRows::PageRange range = rows_.TakePagesToUpload(row);
  if (range.empty()) return absl::OkStatus();
  const SequenceLayout& l = rows_.layout(row);
  // From the layout's pageable memory: the driver stages it before the call returns.
  return CudaToStatus(cudaMemcpy2DAsync(RowPagesOnDevice(row) + range.from, rows_.max_pages() * sizeof(uint64_t),
                                        l.page_offsets.data() + range.from, uint64_t{l.pages_per_layer} * sizeof(uint64_t),
                                        (range.to - range.from) * sizeof(uint64_t), options_.layers,
                                        cudaMemcpyHostToDevice, stream),
                      "uploading page tables");
}

absl::Status DecodeSessionImpl::UploadRow(uint32_t row, cudaStream_t stream) {
  const std::vector<kernels::RowPages> tables = rows_.RowTables(row, RowPagesOnDevice(row));
  return CudaToStatus(cudaMemcpy2DAsync(row_tables_.data() + row, options_.max_batch * sizeof(kernels::RowPages),
                                        tables.data(), sizeof(kernels::RowPages), sizeof(kernels::RowPages),
                                        options_.layers, cudaMemcpyHostToDevice, stream),
                      "uploading row tables");
}

absl::Status DecodeSessionImpl::UploadSessionRow(uint32_t row, cudaStream_t stream) {
  const kernels::SessionRow device_row = rows_.DeviceRow(row);
  return CudaToStatus(cudaMemcpyAsync(session_rows_.data() + row, &device_row, sizeof(device_row),
                                      cudaMemcpyHostToDevice, stream),
                      "uploading a row");
}

// ---- Reservations ----

void DecodeSessionImpl::ReserverMain() {
  while (true) {
    Reservation job;
    {
      absl::MutexLock lock(&reserve_mu_);
      const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reserve_mu_) {
        return stopping_ || !reserve_queue_.empty();
      };
      reserve_mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      job = std::move(reserve_queue_.front());
      reserve_queue_.pop_front();
    }
    absl::Status extended = client_->ExtendSequence(job.job.id, job.job.tokens);
    if (extended.ok()) {
      auto layout = internal::CachedLayout(*client_, job.job.id);
      job.result = layout.ok() ? absl::StatusOr<std::shared_ptr<const SequenceLayout>>(*std::move(layout))
                               : absl::StatusOr<std::shared_ptr<const SequenceLayout>>(layout.status());
    } else {
      job.result = extended;
    }
    absl::MutexLock lock(&reserve_mu_);
    reserve_done_.push_back(std::move(job));
  }
}

absl::Status DecodeSessionImpl::ApplyReservations(bool wait, cudaStream_t stream, std::vector<RowFailure>* failures,
                                              bool* arrived) {
  std::vector<Reservation> done;
  {
    absl::MutexLock lock(&reserve_mu_);
    if (wait) {
      const auto any = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reserve_mu_) { return !reserve_done_.empty(); };
      reserve_mu_.AwaitWithTimeout(absl::Condition(&any), kReservationWait);
    }
    done.swap(reserve_done_);
  }
  if (arrived != nullptr) *arrived = !done.empty();
  for (Reservation& done_job : done) {
    const SessionRows::Reservation& job = done_job.job;
    if (!done_job.result.ok()) {
      const absl::Status& why = done_job.result.status();
      if (DecodeSession::MayJoinAgain(why)) {
        // Not a failure of the row yet: it steps on while its reserve lasts and asks
        // again (a daemon that restarts meanwhile, a pool full for a moment, a call cut
        // off cost no row). The step that finds it out of room reports this error.
        rows_.ReservationFailed(job, why, MonotonicNow());
        continue;
      }
      // Asking again would not help (its sequence gone, the call refused): the row
      // leaves now, saying why; unless it changed hands since the job was made.
      if (rows_.Current(job)) {
        ReportRow(job.row, absl::Status(why.code(), absl::StrCat("sequence ", job.id, " (row ", job.row,
                                                                 ") could not reserve room: ", why.message(),
                                                                 "; it left the session")),
                  failures);
        if (absl::Status s = Leave(job.row, stream); !s.ok()) return s;
      }
      continue;
    }
    if (!rows_.ApplyReservation(job, *std::move(done_job.result))) continue;  // the row changed hands meanwhile
    if (absl::Status s = UploadPages(job.row, stream); !s.ok()) return s;
    if (absl::Status s = UploadSessionRow(job.row, stream); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void DecodeSessionImpl::ReportRow(uint32_t row, absl::Status status, std::vector<RowFailure>* failures) {
  if (failures != nullptr) failures->push_back(RowFailure{row, rows_.sequence(row), std::move(status)});
}

// ---- Between steps ----

absl::Status DecodeSessionImpl::PrepareStep(cudaStream_t stream, std::vector<RowFailure>* failures) {
  // No step while the daemon refuses to fence this client's connection: refused before
  // anything changes, or is booked on the rate.
  if (fence_ != nullptr) {
    if (absl::StatusOr<ReleaseFence::Ticket> probe = fence_->TryEnter(); !probe.ok()) return probe.status();
  }
  // Paced before the fence is taken: a step held to its rate must not hold back the
  // daemon's releases meanwhile.
  uint64_t selected = 0;
  for (uint32_t row = 0; row < options_.max_batch; ++row) {
    if (rows_.active(row)) selected += std::min<uint64_t>(options_.k, rows_.tokens(row) + 1);
  }
  client_->PaceFetch(selected * fetches_per_step_ * options_.entry_bytes);
  // What the completed steps reported. Only when every step prepared so far has ended:
  // then no kernel writes these flags while they are read and cleared.
  const unsigned long long steps_done = *reinterpret_cast<volatile unsigned long long*>(steps_done_);
  std::atomic_thread_fence(std::memory_order_acquire);  // the reports were written before the count
  if (steps_done == steps_prepared_) {
    for (uint32_t row = 0; row < options_.max_batch; ++row) {
      kernels::SessionRowReport& report = reports_[row];
      if (rows_.active(row) && report.released != 0) {
        ReportRow(row, absl::NotFoundError(absl::StrCat("sequence ", rows_.sequence(row), " (row ", row,
                                                        ") was released or reclaimed while the session used it; "
                                                        "its last step's entries are not its own, and it left the session")),
                  failures);
        if (absl::Status s = Leave(row, stream); !s.ok()) return s;
      } else if (rows_.active(row) && report.out_of_room != 0) {
        ReportRow(row, absl::InternalError(absl::StrCat("sequence ", rows_.sequence(row), " (row ", row,
                                                        ") had no page for the token a step appended")),
                  failures);
      }
      report = kernels::SessionRowReport{};
    }
    std::vector<uint64_t> ids, tokens;  // what FaultToStatus names; made only for a fault
    for (uint32_t i = 0; i < 2 * options_.layers; ++i) {
      kernels::GatherFault& fault = faults_[i];
      if (fault.flag == 0) continue;
      if (ids.empty()) {
        ids.resize(options_.max_batch);
        tokens.resize(options_.max_batch);
        for (uint32_t row = 0; row < options_.max_batch; ++row) {
          ids[row] = rows_.sequence(row);
          tokens[row] = rows_.tokens(row);
        }
      }
      const uint32_t row = static_cast<uint32_t>(std::min<int64_t>(std::max(fault.row, 0), options_.max_batch - 1));
      // A row that left just now was reported whole.
      if (rows_.active(row)) ReportRow(row, kernels::FaultToStatus(fault, ids, tokens, i % options_.layers), failures);
      fault = kernels::GatherFault{};
    }
  }
  if (absl::Status s = ApplyReservations(false, stream, failures, nullptr); !s.ok()) return s;
  // Every reservation due is asked before any is waited for: rows out of room at once
  // (a daemon that answered none for a while) wait for one round trip together, on the
  // reserver threads, not for one each.
  const absl::Time now = MonotonicNow();
  for (uint32_t row = 0; row < options_.max_batch; ++row) {
    if (!rows_.active(row)) continue;
    if (std::optional<SessionRows::Reservation> due = rows_.ReservationDue(row, now)) {
      absl::MutexLock lock(&reserve_mu_);
      reserve_queue_.push_back(Reservation{*due});
    }
  }
  std::vector<uint32_t> ready;
  for (uint32_t row = 0; row < options_.max_batch; ++row) {
    if (!rows_.active(row)) continue;
    // Waits only when the reservation fell behind the row's need (and gives up when
    // none arrives within kReservationWait).
    bool arrived = true;
    while (arrived && rows_.active(row) && rows_.Readiness(row) == SessionRows::StepReadiness::kWaitForReservation) {
      if (absl::Status s = ApplyReservations(true, stream, failures, &arrived); !s.ok()) return s;
    }
    if (!rows_.active(row)) continue;
    const SessionRows::StepReadiness readiness = rows_.Readiness(row);
    if (readiness != SessionRows::StepReadiness::kReady) {
      const std::string what = absl::StrCat("sequence ", rows_.sequence(row), " (row ", row, ") ");
      const absl::Status& reserving = rows_.reservation_error(row);
      // The code says whether the row may join again later: OutOfRange never (it is as
      // long as the session takes); the reservation's own (Unavailable or
      // DeadlineExceeded for a daemon away, ResourceExhausted for a full pool) once the
      // daemon answers or the pool has room.
      absl::Status why;
      if (readiness == SessionRows::StepReadiness::kPastMaxTokens) {
        why = absl::OutOfRangeError(absl::StrCat(what, "reached the session's max_tokens ", options_.max_tokens));
      } else if (readiness == SessionRows::StepReadiness::kWaitForReservation) {
        why = absl::DeadlineExceededError(absl::StrCat(
            what, "has no room for its next token: its reservation did not come within ",
            absl::FormatDuration(kReservationWait),
            reserving.ok() ? "" : absl::StrCat(" (the one before failed: ", reserving.message(), ")")));
      } else if (!reserving.ok()) {
        why = absl::Status(reserving.code(), absl::StrCat(what, "has no room for its next token: reserving it failed: ",
                                                          reserving.message()));
      } else {
        why = absl::ResourceExhaustedError(absl::StrCat(what, "has no room reserved for its next token"));
      }
      ReportRow(row, absl::Status(why.code(), absl::StrCat(why.message(), "; it left the session")), failures);
      if (absl::Status s = Leave(row, stream); !s.ok()) return s;
      continue;
    }
    ready.push_back(row);
  }
  // The step's write-backs are fenced from here until the step has completed. Taken
  // only now: a ticket held while this waited for reservations would hold back this
  // client's acknowledgement of releases whose memory those reservations wait for.
  std::optional<ReleaseFence::Ticket> ticket;
  if (fence_ != nullptr) {
    absl::StatusOr<ReleaseFence::Ticket> entered = fence_->TryEnter();
    if (!entered.ok()) return entered.status();  // refused meanwhile: the rows in `failures` left, none advanced
    ticket = *std::move(entered);
  }
  for (uint32_t row : ready) {
    // What BeginStep does on the device; a row a later reservation's answer made leave
    // is not in the step.
    if (rows_.active(row)) rows_.Advance(row);
  }
  if (ticket.has_value()) {
    absl::MutexLock lock(&tickets_mu_);
    tickets_.push_back(*std::move(ticket));
  }
  ++steps_prepared_;
  return absl::OkStatus();
}

absl::Status DecodeSessionImpl::SeedCache(uint32_t layer, const int32_t* device_topk, cudaStream_t stream) {
  if (cache_ == nullptr) return absl::OkStatus();
  if (layer >= options_.layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is out of range (", options_.layers, " layers)"));
  }
  return cache_->Step(CacheStepArgs(layer, device_topk), stream);
}

int32_t* DecodeSessionImpl::FlatIndices(uint32_t layer) const {
  return flat_.data() + uint64_t{layer % options_.buffers} * options_.max_batch * options_.k;
}

kernels::ResidencyStepArgs DecodeSessionImpl::CacheStepArgs(uint32_t layer, const int32_t* device_topk) const {
  kernels::ResidencyStepArgs args;
  args.rows = row_tables_.data() + uint64_t{layer} * options_.max_batch;
  args.instances = instances_.data() + uint64_t{layer} * options_.max_batch;
  args.indices = device_topk;
  args.batch = options_.max_batch;
  args.k = options_.k;
  args.step_counter = step_counter_.data();
  args.out_slots = FlatIndices(layer);
  args.flat_slots = true;
  args.fault = faults_ + layer;
  return args;
}

// ---- The step ----

absl::Status DecodeSessionImpl::BeginStep(cudaStream_t stream) {
  fetches_enqueued_ = 0;
  return CudaToStatus(kernels::LaunchBeginStep(StepArgs(), stream), "launching a step's beginning");
}

absl::Status DecodeSessionImpl::WriteLayer(uint32_t layer, const std::byte* device_entries, cudaStream_t stream) {
  if (layer >= options_.layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is out of range (", options_.layers, " layers)"));
  }
  kernels::WriteBackLaunch launch;
  launch.region_bytes = kRegionBytesBound;
  launch.rows = row_tables_.data() + uint64_t{layer} * options_.max_batch;
  launch.entries = device_entries;
  launch.batch = options_.max_batch;
  launch.entry_bytes = options_.entry_bytes;
  launch.fault = faults_ + options_.layers + layer;
  // The step's fence ticket does not hold back a release the lease loop learned of
  // before the ticket was taken (common/release_fence.h): such a write must see the
  // release in the record, right before writing, and skip the row (reported as
  // released; EndStep's check then takes the row out of the session).
  launch.check_record = true;
  return kernels::LaunchWriteBack(launch, stream);
}

absl::Status DecodeSessionImpl::FetchLayer(uint32_t layer, const int32_t* device_topk, cudaStream_t stream) {
  if (layer >= options_.layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is out of range (", options_.layers, " layers)"));
  }
  ++fetches_enqueued_;
  int32_t* flat = FlatIndices(layer);
  const kernels::RowPages* rows = row_tables_.data() + uint64_t{layer} * options_.max_batch;
  if (cache_ != nullptr) {
    const kernels::ResidencyStepArgs args = CacheStepArgs(layer, device_topk);
    if (absl::Status s = cache_->Lookup(args, stream); !s.ok()) return s;
    if (!hits_ready_.empty()) {
      if (absl::Status s = CudaToStatus(cudaEventRecord(hits_ready_[layer], stream), "recording hits_ready"); !s.ok()) {
        return s;
      }
    }
    return cache_->Fill(args, stream);
  }
  kernels::GatherLaunch launch;
  launch.region_bytes = kRegionBytesBound;
  launch.rows = rows;
  launch.indices = device_topk;
  launch.batch = options_.max_batch;
  launch.k = options_.k;
  launch.entry_bytes = options_.entry_bytes;
  const uint64_t buffer_entries = uint64_t{options_.max_batch} * options_.k;
  launch.out = entries_.data() + uint64_t{layer % options_.buffers} * buffer_entries * options_.entry_bytes;
  launch.out_bytes = buffer_entries * options_.entry_bytes;
  launch.out_flat = flat;
  launch.fault = faults_ + layer;
  launch.max_blocks = options_.max_blocks;
  launch.algorithm = static_cast<kernels::GatherAlgorithm>(options_.gather_algorithm);
  launch.slices_per_row = options_.slices_per_row;
  return kernels::LaunchTopKGather(launch, stream);
}

void DecodeSessionImpl::EndTicket(void* session) {
  auto* self = static_cast<DecodeSessionImpl*>(session);
  ReleaseFence::Ticket ticket;
  {
    absl::MutexLock lock(&self->tickets_mu_);
    if (self->tickets_.empty()) return;
    ticket = std::move(self->tickets_.front());
    self->tickets_.pop_front();
  }
  // Ends here, outside the lock: the step's writes have all landed.
}

absl::Status DecodeSessionImpl::EndStep(cudaStream_t stream) {
  fetches_per_step_ = fetches_enqueued_;
  if (absl::Status s = CudaToStatus(kernels::LaunchEndStep(StepArgs(), stream), "launching a step's end"); !s.ok()) {
    return s;
  }
  return CudaToStatus(cudaLaunchHostFunc(stream, &DecodeSessionImpl::EndTicket, this), "enqueuing the fence's release");
}

// ---- Where entries land ----

DecodeSessionImpl::Delivery DecodeSessionImpl::delivered(uint32_t layer) const {
  Delivery d;
  const uint64_t buffer = layer % options_.buffers;
  d.flat_indices = FlatIndices(layer);
  if (cache_ != nullptr) {
    d.entries = cache_->state().slot_data;
    d.entry_count = uint64_t{cache_->state().instances} * cache_->state().capacity;
  } else {
    d.entry_count = uint64_t{options_.max_batch} * options_.k;
    d.entries = entries_.data() + buffer * d.entry_count * options_.entry_bytes;
  }
  return d;
}

absl::StatusOr<kernels::ResidencyCounters> DecodeSessionImpl::cache_counters() const {
  if (cache_ == nullptr) return absl::FailedPreconditionError("the session has no residency cache");
  return cache_->Counters();
}

const uint16_t* DecodeSessionImpl::miss_positions(uint32_t row, uint32_t layer) const {
  return cache_ == nullptr ? nullptr : cache_->miss_positions(row * options_.layers + layer);
}

const uint32_t* DecodeSessionImpl::miss_count(uint32_t row, uint32_t layer) const {
  return cache_ == nullptr ? nullptr : cache_->miss_count(row * options_.layers + layer);
}

}  // namespace sparsepool::internal

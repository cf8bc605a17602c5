// The request-level run's GPU strategies (bench/request_strategies.h): the pool's
// decode session, and the prefix pull's GPU variants, which keep each pulled copy in
// HBM or pinned host memory and gather every step's top-k from it with the pool's own
// gather kernel.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/dense_pages.h"
#include "bench/prefix_fetch.h"
#include "bench/request_step.h"
#include "bench/request_strategies.h"
#include "client/decode_session.h"
#include "client/gpu_regions.h"
#include "kernels/cuda_buffer.h"
#include "kernels/cuda_pointer.h"
#include "kernels/topk_gather.h"

namespace sparsepool::bench {
namespace {

using kernels::CudaBuffer;
using kernels::CudaMemory;
using kernels::CudaToStatus;

// A non-blocking stream, destroyed with its owner.
class Stream {
 public:
  ~Stream() {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  absl::Status Create() { return CudaToStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream"); }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// ---- cxl-gpu-topk and cxl-gpu-topk-cache: the decode session, its step one graph ----

class SessionRequests final : public RequestStrategy {
 public:
  SessionRequests(std::string name, std::unique_ptr<Client> client, const RequestShape& shape)
      : name_(std::move(name)), client_(std::move(client)), shape_(shape) {}
  ~SessionRequests() override {
    if (graph_ != nullptr) cudaGraphExecDestroy(graph_);
    if (stream_.get() != nullptr) cudaStreamSynchronize(stream_.get());
  }

  absl::Status Init(uint32_t cache_slots) {
    auto regions = GpuRegionRegistry::Create();
    if (!regions.ok()) return regions.status();
    regions_ = *std::move(regions);
    if (absl::Status s = stream_.Create(); !s.ok()) return s;
    DecodeSessionOptions o;
    o.max_batch = shape_.max_batch;
    o.layers = shape_.stored_layers;
    o.entry_bytes = shape_.entry_bytes;
    o.k = shape_.k;
    o.max_tokens = shape_.max_tokens + 1;
    o.page_tokens = shape_.page_tokens;
    o.cache_slots = cache_slots;
    if (shape_.reserve_tokens > 0) o.reserve_tokens = shape_.reserve_tokens;
    auto session = DecodeSession::Create(client_.get(), regions_.get(), o);
    if (!session.ok()) return session.status();
    session_ = *std::move(session);
    const uint64_t index_cells = uint64_t{shape_.fetched_layers} * shape_.max_batch * shape_.k;
    const uint64_t entry_bytes = uint64_t{shape_.stored_layers} * shape_.max_batch * shape_.entry_bytes;
    for (auto [buffer, memory] : {std::pair{&host_indices_, CudaMemory::kPinnedHost},
                                  std::pair{&device_indices_, CudaMemory::kDevice}}) {
      auto b = CudaBuffer<int32_t>::Allocate(index_cells, memory);
      if (!b.ok()) return b.status();
      *buffer = *std::move(b);
    }
    for (auto [buffer, memory] : {std::pair{&host_entries_, CudaMemory::kPinnedHost},
                                  std::pair{&device_entries_, CudaMemory::kDevice}}) {
      auto b = CudaBuffer<std::byte>::Allocate(entry_bytes, memory);
      if (!b.ok()) return b.status();
      *buffer = *std::move(b);
    }
    std::fill_n(host_indices_.data(), index_cells, -1);
    return Capture();
  }

  std::string name() const override { return name_; }
  Client& client() override { return *client_; }

  // Pins the pool's regions for the GPU before the clock starts: an engine's warm-up.
  absl::Status WarmUp(absl::Span<const SequenceId> prompts) override {
    for (SequenceId id : prompts) {
      if (absl::Status s = regions_->RegisterRegionOf(*client_, id); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Admit(SequenceId id, uint64_t, uint64_t) override { return client_->AdoptSequence(id); }

  absl::Status Join(SequenceId id, uint64_t tokens) override {
    // More requests than the batch holds is the caller's bookkeeping gone wrong, not a
    // full pool: the session's own answer (ResourceExhausted) would be retried.
    if (rows_.contains(id) || rows_.size() >= shape_.max_batch) {
      return absl::InternalError(absl::StrCat("request ", id,
                                              rows_.contains(id) ? " joined already" : " joins a full batch", " (",
                                              rows_.size(), " of ", shape_.max_batch, " rows taken)"));
    }
    auto row = session_->Join(id, tokens, stream_.get());
    if (!row.ok()) return row.status();
    rows_[id] = *row;
    return absl::OkStatus();
  }

  void Leave(SequenceId id) override {
    auto it = rows_.find(id);
    if (it == rows_.end()) return;
    (void)session_->Leave(it->second, stream_.get());
    rows_.erase(it);
  }

  absl::Status Step(absl::Span<const StepRow> rows, absl::Span<const std::byte> new_entries,
                    absl::Span<const int32_t> indices) override {
    // Nothing of the last step's survives into this one's answer: an error before the
    // graph runs comes with no failed rows (none stepped).
    failures_.clear();
    last_wait_s_.reset();
    if (absl::Status s = CheckStepShape(shape_, rows, new_entries, indices); !s.ok()) return s;
    // The step's inputs by session row, where the captured graph copies them from.
    const uint32_t k = shape_.k, entry = shape_.entry_bytes, batch = shape_.max_batch;
    step_rows_.clear();
    for (size_t i = 0; i < rows.size(); ++i) {
      auto it = rows_.find(rows[i].id);
      if (it == rows_.end()) return absl::NotFoundError(absl::StrCat("request ", rows[i].id, " did not join"));
      const uint32_t row = it->second;
      if (session_->tokens(row) != rows[i].tokens) {
        return absl::InternalError(absl::StrCat("request ", rows[i].id, " has ", rows[i].tokens,
                                                " tokens; its session row ", session_->tokens(row)));
      }
      step_rows_.push_back(row);
      for (uint32_t slot = 0; slot < shape_.fetched_layers; ++slot) {
        std::memcpy(host_indices_.data() + (uint64_t{slot} * batch + row) * k,
                    indices.data() + (slot * rows.size() + i) * k, k * sizeof(int32_t));
      }
      for (uint32_t layer = 0; layer < shape_.stored_layers; ++layer) {
        std::memcpy(host_entries_.data() + (uint64_t{layer} * batch + row) * entry,
                    new_entries.data() + (i * shape_.stored_layers + layer) * entry, entry);
      }
    }
    std::vector<DecodeSession::RowFailure> failures;
    if (absl::Status s = session_->PrepareStep(stream_.get(), &failures); !s.ok()) {
      // No step (the fence refused, a CUDA failure): an error of the step as a whole,
      // with no failed rows; those that left before it are forgotten all the same.
      for (const auto& f : failures) {
        if (Left(f)) rows_.erase(f.sequence);
      }
      return s;
    }
    // The step runs even when rows failed: PrepareStep has advanced the others and taken
    // the release fence, which the graph's end gives back.
    const auto launched = std::chrono::steady_clock::now();
    if (absl::Status s = CudaToStatus(cudaGraphLaunch(graph_, stream_.get()), "launching the step"); !s.ok()) return s;
    if (absl::Status s = CudaToStatus(cudaStreamSynchronize(stream_.get()), "the step"); !s.ok()) return s;
    last_wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - launched).count();
    for (const auto& f : failures) {
      const bool left = Left(f);
      if (left) rows_.erase(f.sequence);  // its row may go to another
      failures_.push_back(StepFailure{f.sequence,
                                      absl::Status(f.status.code(), absl::StrCat("request ", f.sequence, " (row ",
                                                                                 f.row, "): ", f.status.message())),
                                      left});
    }
    // What this step's end finds (a row released under it, a bad index) the next
    // PrepareStep reports; the run's last step has none after it, and the run's checks
    // (the entries delivered, the pool against the ledgers) stand for it.
    if (!failures_.empty()) return failures_.front().status;
    return absl::OkStatus();
  }

  std::optional<double> LastStepWaitSeconds() const override { return last_wait_s_; }
  absl::Span<const StepFailure> LastStepFailures() const override { return failures_; }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    const uint32_t last_layer = (shape_.fetched_layers - 1) % shape_.stored_layers;
    const DecodeSession::Delivery d = session_->delivered(last_layer);
    const uint32_t session_row = step_rows_.at(row);
    int32_t flat = -1;
    if (absl::Status s = CudaToStatus(cudaMemcpy(&flat, d.flat_indices + uint64_t{session_row} * shape_.k + position,
                                                 sizeof(flat), cudaMemcpyDeviceToHost),
                                      "reading back an index");
        !s.ok()) {
      return s;
    }
    if (flat < 0 || static_cast<uint64_t>(flat) >= d.entry_count) {
      return absl::DataLossError(absl::StrCat("position ", position, " of session row ", session_row,
                                              " was delivered nowhere (flat index ", flat, ")"));
    }
    return CudaToStatus(cudaMemcpy(out.data(), d.entries + uint64_t(flat) * shape_.entry_bytes, out.size(),
                                   cudaMemcpyDeviceToHost),
                        "reading back an entry");
  }

  uint64_t LocalBytes() const override { return 0; }

 private:
  // Whether a failed row left the session (its row free now, or another's).
  bool Left(const DecodeSession::RowFailure& f) const {
    return !session_->active(f.row) || session_->sequence(f.row) != f.sequence;
  }

  // The whole step, captured once before any request joins: the inputs' trip to the
  // GPU, every stored layer's write-back, every fetched layer's gather. Joins, leaves and
  // growth change only the session's device tables, which the replay reads.
  absl::Status Capture() {
    cudaStream_t s = stream_.get();
    if (absl::Status st = CudaToStatus(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "capture");
        !st.ok()) {
      return st;
    }
    absl::Status status = CudaToStatus(cudaMemcpyAsync(device_indices_.data(), host_indices_.data(),
                                                       host_indices_.bytes(), cudaMemcpyHostToDevice, s),
                                       "indices");
    if (status.ok()) {
      status = CudaToStatus(cudaMemcpyAsync(device_entries_.data(), host_entries_.data(), host_entries_.bytes(),
                                            cudaMemcpyHostToDevice, s),
                            "new entries");
    }
    if (status.ok()) status = session_->BeginStep(s);
    const uint64_t batch = shape_.max_batch;
    for (uint32_t layer = 0; status.ok() && layer < shape_.stored_layers; ++layer) {
      status = session_->WriteLayer(layer, device_entries_.data() + layer * batch * shape_.entry_bytes, s);
    }
    for (uint32_t slot = 0; status.ok() && slot < shape_.fetched_layers; ++slot) {
      status = session_->FetchLayer(slot % shape_.stored_layers, device_indices_.data() + slot * batch * shape_.k, s);
    }
    if (status.ok()) status = session_->EndStep(s);
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(s, &graph);
    if (!status.ok()) {
      if (graph != nullptr) cudaGraphDestroy(graph);
      return status;
    }
    if (absl::Status st = CudaToStatus(ended, "ending the capture"); !st.ok()) return st;
    status = CudaToStatus(cudaGraphInstantiate(&graph_, graph, 0), "instantiating the step");
    cudaGraphDestroy(graph);
    return status;
  }

  std::string name_;
  std::unique_ptr<Client> client_;
  const RequestShape shape_;
  std::unique_ptr<GpuRegionRegistry> regions_;
  Stream stream_;
  std::unique_ptr<DecodeSession> session_;
  cudaGraphExec_t graph_ = nullptr;
  CudaBuffer<int32_t> host_indices_, device_indices_;    // [fetched layers][max_batch][k]
  CudaBuffer<std::byte> host_entries_, device_entries_;  // [stored layers][max_batch][entry]
  absl::flat_hash_map<SequenceId, uint32_t> rows_;       // request -> session row
  std::vector<uint32_t> step_rows_;                      // the last step's rows' session rows
  std::optional<double> last_wait_s_;                    // the last step's launch to its stream's end
  std::vector<StepFailure> failures_;                    // the last step's
};

// ---- rdma-prefix-pull-gpu / -pinned: the pull, then local gathers on the GPU ----

// Tokens pulled per FetchTokenRange, as in bench/prefix_pull.cc.
constexpr uint64_t kPullChunkTokens = 16384;

class GpuPrefixPullRequests final : public RequestStrategy {
 public:
  GpuPrefixPullRequests(std::string name, std::unique_ptr<Client> client, std::unique_ptr<Client> pull_client,
                        const RequestShape& shape, bool in_hbm)
      : name_(std::move(name)),
        client_(std::move(client)),
        pull_client_(std::move(pull_client)),
        shape_(shape),
        in_hbm_(in_hbm),
        slot_bytes_(uint64_t{shape.stored_layers} * shape.max_tokens * shape.entry_bytes) {}
  ~GpuPrefixPullRequests() override {
    if (stream_.get() != nullptr) cudaStreamSynchronize(stream_.get());
    if (pull_stream_.get() != nullptr) cudaStreamSynchronize(pull_stream_.get());
  }

  // One slot per place in the batch, each with room for the longest request, allocated
  // before the run: an engine sizes its KV memory once (and a dense pool's engine
  // registers it once), so no allocation sits on an admission.
  absl::Status Init() {
    for (Stream* s : {&stream_, &pull_stream_}) {
      if (absl::Status st = s->Create(); !st.ok()) return st;
    }
    auto arena = CudaBuffer<std::byte>::Allocate(shape_.max_batch * slot_bytes_,
                                                 in_hbm_ ? CudaMemory::kDevice : CudaMemory::kPinnedHost);
    if (!arena.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat(shape_.max_batch, " copies of ", slot_bytes_, " bytes do not fit ",
                                                       in_hbm_ ? "in HBM (try rdma-prefix-pull-pinned)" : "in pinned memory",
                                                       ": ", arena.status().message()));
    }
    arena_ = *std::move(arena);
    auto pages = DensePageOffsets(uint64_t{shape_.max_batch} * shape_.stored_layers,
                                  shape_.max_tokens * shape_.entry_bytes);
    if (!pages.ok()) return pages.status();
    pages_ = *std::move(pages);
    const uint64_t cells = uint64_t{shape_.fetched_layers} * shape_.max_batch * shape_.k;
    const uint64_t tables = uint64_t{shape_.fetched_layers} * shape_.max_batch;
    auto host_indices = CudaBuffer<int32_t>::Allocate(cells, CudaMemory::kPinnedHost);
    auto device_indices = CudaBuffer<int32_t>::Allocate(cells, CudaMemory::kDevice);
    auto host_rows = CudaBuffer<kernels::RowPages>::Allocate(tables, CudaMemory::kPinnedHost);
    auto device_rows = CudaBuffer<kernels::RowPages>::Allocate(tables, CudaMemory::kDevice);
    auto step_entries = CudaBuffer<std::byte>::Allocate(
        uint64_t{shape_.max_batch} * shape_.stored_layers * shape_.entry_bytes, CudaMemory::kPinnedHost);
    auto out = CudaBuffer<std::byte>::Allocate(uint64_t{shape_.max_batch} * shape_.k * shape_.entry_bytes,
                                               CudaMemory::kDevice);
    auto fault = CudaBuffer<kernels::GatherFault>::Allocate(1, CudaMemory::kPinnedHost);
    auto staging = CudaBuffer<std::byte>::Allocate(kPullChunkTokens * shape_.entry_bytes, CudaMemory::kPinnedHost);
    for (const absl::Status& s : {host_indices.status(), device_indices.status(), host_rows.status(),
                                  device_rows.status(), step_entries.status(), out.status(), fault.status(),
                                  staging.status()}) {
      if (!s.ok()) return s;
    }
    host_indices_ = *std::move(host_indices);
    device_indices_ = *std::move(device_indices);
    host_rows_ = *std::move(host_rows);
    device_rows_ = *std::move(device_rows);
    step_entries_ = *std::move(step_entries);
    out_ = *std::move(out);
    fault_ = *std::move(fault);
    staging_ = *std::move(staging);
    free_slots_.clear();
    for (uint32_t slot = 0; slot < shape_.max_batch; ++slot) free_slots_.push_back(shape_.max_batch - 1 - slot);
    return absl::OkStatus();
  }

  std::string name() const override { return name_; }
  Client& client() override { return *client_; }

  absl::Status Admit(SequenceId id, uint64_t tokens, uint64_t max_tokens) override {
    if (max_tokens > shape_.max_tokens) {
      return absl::OutOfRangeError(absl::StrCat("request ", id, " grows to ", max_tokens, " tokens; copies hold ",
                                                shape_.max_tokens));
    }
    if (absl::Status s = client_->AdoptSequence(id); !s.ok()) return s;
    uint32_t slot = 0;
    {
      absl::MutexLock lock(&mu_);
      if (free_slots_.empty()) return absl::ResourceExhaustedError("every copy slot is taken");
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    absl::Status status = Pull(id, slot, tokens);
    absl::MutexLock lock(&mu_);
    if (!status.ok()) {
      free_slots_.push_back(slot);
      return status;
    }
    admitted_[id] = Copy{slot, tokens, max_tokens};
    local_bytes_ += CopyBytes(max_tokens);
    return absl::OkStatus();
  }

  absl::Status Join(SequenceId id, uint64_t tokens) override {
    absl::MutexLock lock(&mu_);
    auto it = admitted_.find(id);
    if (it == admitted_.end() || it->second.tokens != tokens) {
      return absl::NotFoundError(absl::StrCat("request ", id, " was not admitted at ", tokens, " tokens"));
    }
    batch_[id] = it->second;
    admitted_.erase(it);
    return absl::OkStatus();
  }

  void Leave(SequenceId id) override {
    absl::MutexLock lock(&mu_);
    auto it = batch_.find(id);
    if (it == batch_.end()) return;
    free_slots_.push_back(it->second.slot);
    local_bytes_ -= CopyBytes(it->second.max_tokens);
    batch_.erase(it);
  }

  absl::Status Step(absl::Span<const StepRow> rows, absl::Span<const std::byte> new_entries,
                    absl::Span<const int32_t> indices) override {
    if (absl::Status s = CheckStepShape(shape_, rows, new_entries, indices); !s.ok()) return s;
    cudaStream_t stream = stream_.get();
    const uint32_t entry = shape_.entry_bytes, k = shape_.k;
    const uint64_t batch = shape_.max_batch;
    {
      absl::MutexLock lock(&mu_);
      step_copies_.clear();
      for (const StepRow& row : rows) {
        auto it = batch_.find(row.id);
        if (it == batch_.end()) return absl::NotFoundError(absl::StrCat("request ", row.id, " did not join"));
        Copy& copy = it->second;
        if (row.tokens != copy.tokens || copy.tokens >= copy.max_tokens) {
          return absl::OutOfRangeError(absl::StrCat("request ", row.id, " at ", row.tokens, " tokens: its copy holds ",
                                                    copy.tokens, " of room for ", copy.max_tokens));
        }
        step_copies_.push_back(&copy);
      }
    }
    if (absl::Status s = WriteStepThroughClient(*client_, rows, new_entries, ids_, positions_); !s.ok()) return s;
    std::memcpy(step_entries_.data(), new_entries.data(), new_entries.size());
    {
      // batch_ changes only on this thread (Join, Leave), so step_copies_ holds for the step.
      absl::MutexLock lock(&mu_);
      for (size_t i = 0; i < rows.size(); ++i) {
        Copy& copy = *step_copies_[i];
        // The decode worker keeps its own new entries: a local copy, nothing crosses.
        for (uint32_t layer = 0; layer < shape_.stored_layers; ++layer) {
          if (absl::Status s = CudaToStatus(
                  cudaMemcpyAsync(arena_.data() + Offset(copy.slot, layer, copy.tokens),
                                  step_entries_.data() + (i * shape_.stored_layers + layer) * entry, entry,
                                  cudaMemcpyHostToDevice, stream),
                  "appending to the local copy");
              !s.ok()) {
            return s;
          }
        }
        ++copy.tokens;
        for (uint32_t slot = 0; slot < shape_.fetched_layers; ++slot) {
          kernels::RowPages& pages = host_rows_.data()[slot * batch + i];
          pages = kernels::RowPages{};
          pages.page_offsets = pages_.data() + uint64_t{copy.slot} * shape_.stored_layers + slot % shape_.stored_layers;
          pages.tokens = copy.tokens;
          pages.page_tokens = static_cast<uint32_t>(shape_.max_tokens);
          pages.entry_stride = entry;
          pages.sequence_id = rows[i].id;
          std::memcpy(host_indices_.data() + (slot * batch + i) * k, indices.data() + (slot * rows.size() + i) * k,
                      k * sizeof(int32_t));
        }
      }
    }
    for (auto [to, from, bytes] :
         {std::tuple<void*, const void*, uint64_t>{device_rows_.data(), host_rows_.data(), host_rows_.bytes()},
          {device_indices_.data(), host_indices_.data(), host_indices_.bytes()}}) {
      if (absl::Status s = CudaToStatus(cudaMemcpyAsync(to, from, bytes, cudaMemcpyHostToDevice, stream), "step tables");
          !s.ok()) {
        return s;
      }
    }
    *fault_.data() = kernels::GatherFault{};
    for (uint32_t slot = 0; slot < shape_.fetched_layers; ++slot) {
      kernels::GatherLaunch launch;
      launch.region = arena_.data();
      launch.region_bytes = arena_.bytes();
      launch.rows = device_rows_.data() + slot * batch;
      launch.indices = device_indices_.data() + slot * batch * k;
      launch.batch = static_cast<uint32_t>(rows.size());
      launch.k = k;
      launch.entry_bytes = entry;
      launch.out = out_.data();
      launch.out_bytes = out_.bytes();
      launch.fault = fault_.data();
      launch.algorithm = kernels::GatherAlgorithm::kWarpPerEntry;
      if (absl::Status s = kernels::LaunchTopKGather(launch, stream); !s.ok()) return s;
    }
    if (absl::Status s = CudaToStatus(cudaStreamSynchronize(stream), "the step's gathers"); !s.ok()) return s;
    if (fault_.data()->flag != 0) {
      return absl::InvalidArgumentError(absl::StrCat("request ", rows[fault_.data()->row].id, " selects token ",
                                                     fault_.data()->index, " outside its copy"));
    }
    return absl::OkStatus();
  }

  absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) override {
    return CudaToStatus(cudaMemcpy(out.data(), out_.data() + (uint64_t{row} * shape_.k + position) * shape_.entry_bytes,
                                   out.size(), cudaMemcpyDeviceToHost),
                        "reading back an entry");
  }

  uint64_t AdmissionBytes() const override { return admission_bytes_; }
  uint64_t LocalBytes() const override { return local_bytes_; }

 private:
  struct Copy {
    uint32_t slot = 0;
    uint64_t tokens = 0;  // in the copy, every layer
    uint64_t max_tokens = 0;
  };
  uint64_t Offset(uint32_t slot, uint32_t layer, uint64_t token) const {
    return slot * slot_bytes_ + (uint64_t{layer} * shape_.max_tokens + token) * shape_.entry_bytes;
  }
  uint64_t CopyBytes(uint64_t max_tokens) const {
    return uint64_t{shape_.stored_layers} * max_tokens * shape_.entry_bytes;
  }

  // Every stored layer of the prompt over the wire into `slot`: straight into pinned
  // copies, through the pinned staging buffer into HBM.
  absl::Status Pull(SequenceId id, uint32_t slot, uint64_t tokens) {
    const uint32_t entry = shape_.entry_bytes;
    for (uint32_t layer = 0; layer < shape_.stored_layers; ++layer) {
      for (uint64_t first = 0; first < tokens; first += kPullChunkTokens) {
        const uint64_t count = std::min(kPullChunkTokens, tokens - first);
        const SequenceId row[] = {id};
        std::byte* target = in_hbm_ ? staging_.data() : arena_.data() + Offset(slot, layer, first);
        if (absl::Status s =
                FetchTokenRange(*pull_client_, layer, row, first, count, absl::MakeSpan(target, count * entry));
            !s.ok()) {
          return s;
        }
        if (in_hbm_) {
          if (absl::Status s = CudaToStatus(
                  cudaMemcpyAsync(arena_.data() + Offset(slot, layer, first), staging_.data(), count * entry,
                                  cudaMemcpyHostToDevice, pull_stream_.get()),
                  "copying a pulled chunk into HBM");
              !s.ok()) {
            return s;
          }
          if (absl::Status s = CudaToStatus(cudaStreamSynchronize(pull_stream_.get()), "the pulled chunk"); !s.ok()) {
            return s;
          }
        }
        admission_bytes_ += count * entry;
      }
    }
    return absl::OkStatus();
  }

  std::string name_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Client> pull_client_;
  const RequestShape shape_;
  const bool in_hbm_;
  const uint64_t slot_bytes_;
  Stream stream_, pull_stream_;
  CudaBuffer<std::byte> arena_;  // [max_batch slots][stored layers][max_tokens][entry]
  CudaBuffer<uint64_t> pages_;   // [slot][stored layer]: each copy layer is one page
  CudaBuffer<int32_t> host_indices_, device_indices_;              // [fetched][max_batch][k]
  CudaBuffer<kernels::RowPages> host_rows_, device_rows_;          // [fetched][max_batch]
  CudaBuffer<std::byte> step_entries_;  // pinned: the step's new entries, [rows][stored][entry]
  CudaBuffer<std::byte> out_;           // [max_batch][k][entry]: the last fetched layer's
  CudaBuffer<kernels::GatherFault> fault_;
  CudaBuffer<std::byte> staging_;       // pinned: a pulled chunk on its way to HBM
  absl::Mutex mu_;
  std::vector<uint32_t> free_slots_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<SequenceId, Copy> admitted_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<SequenceId, Copy> batch_ ABSL_GUARDED_BY(mu_);
  std::vector<Copy*> step_copies_;  // decode thread only
  std::vector<SequenceId> ids_;
  std::vector<uint64_t> positions_;
  std::atomic<uint64_t> admission_bytes_{0};
  std::atomic<uint64_t> local_bytes_{0};
};

}  // namespace

absl::StatusOr<std::unique_ptr<RequestStrategy>> MakeSessionRequests(std::string name, std::unique_ptr<Client> client,
                                                                     const RequestShape& shape, uint32_t cache_slots) {
  if (absl::Status s = kernels::RequireCudaDevice("each GPU strategy"); !s.ok()) return s;
  auto strategy = std::make_unique<SessionRequests>(std::move(name), std::move(client), shape);
  if (absl::Status s = strategy->Init(cache_slots); !s.ok()) return s;
  return strategy;
}

absl::StatusOr<std::unique_ptr<RequestStrategy>> MakeGpuPrefixPullRequests(std::string name,
                                                                           std::unique_ptr<Client> client,
                                                                           std::unique_ptr<Client> pull_client,
                                                                           const RequestShape& shape,
                                                                           bool copies_in_hbm) {
  if (absl::Status s = kernels::RequireCudaDevice("each GPU strategy"); !s.ok()) return s;
  auto strategy = std::make_unique<GpuPrefixPullRequests>(std::move(name), std::move(client), std::move(pull_client),
                                                          shape, copies_in_hbm);
  if (absl::Status s = strategy->Init(); !s.ok()) return s;
  return strategy;
}

}  // namespace sparsepool::bench

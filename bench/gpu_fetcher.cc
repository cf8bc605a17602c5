#include "bench/gpu_fetcher.h"

#include <cuda_runtime.h>  // the typed cudaMalloc overloads

#include "absl/strings/str_cat.h"
#include "client/client_internal.h"
#include "kernels/cuda_pointer.h"
#include "transport/sequence_liveness.h"

namespace sparsepool::bench {
namespace {

absl::Status CudaError(absl::string_view what, cudaError_t error) {
  cudaGetLastError();
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(error)));
}

// Calls between two Finish calls, each with a fault record of its own.
constexpr size_t kMaxPendingCalls = 1024;

}  // namespace

absl::StatusOr<std::unique_ptr<GpuFetcher>> GpuFetcher::Create(Options options) {
  std::unique_ptr<GpuRegionRegistry> own;
  if (options.regions == nullptr) {
    auto created = GpuRegionRegistry::Create();
    if (!created.ok()) return created.status();
    own = *std::move(created);
  } else if (absl::Status s = kernels::RequireCudaDevice("the GPU fetch path"); !s.ok()) {
    return s;
  }
  return std::unique_ptr<GpuFetcher>(new GpuFetcher(options, std::move(own)));
}

GpuFetcher::~GpuFetcher() {
  cudaDeviceSynchronize();  // nothing of ours may be in flight when it is freed
  for (auto& [id, pages] : pages_) cudaFree(pages.offsets);
  if (device_rows_ != nullptr) cudaFree(device_rows_);
  for (kernels::GatherFault* fault : fault_pool_) cudaFreeHost(fault);
}

absl::StatusOr<const uint64_t*> GpuFetcher::PagesFor(const SequenceLayout& layout, cudaStream_t stream) {
  DevicePages& pages = pages_[layout.sequence_id];
  if (pages.offsets != nullptr && pages.pages_per_layer == layout.pages_per_layer) return pages.offsets;
  if (pages.offsets != nullptr) {
    // The old table may still be read by a kernel in flight on `stream`.
    if (cudaError_t e = cudaStreamSynchronize(stream); e != cudaSuccess) return CudaError("waiting to replace a page table", e);
    cudaFree(pages.offsets);
    pages.offsets = nullptr;
  }
  const size_t bytes = std::max<size_t>(1, layout.page_offsets.size()) * sizeof(uint64_t);
  if (cudaError_t e = cudaMalloc(&pages.offsets, bytes); e != cudaSuccess) {
    pages_.erase(layout.sequence_id);
    return CudaError("allocating a device page table", e);
  }
  // From pageable memory: staged before the call returns, so the layout may go away.
  if (cudaError_t e = cudaMemcpyAsync(pages.offsets, layout.page_offsets.data(),
                                      layout.page_offsets.size() * sizeof(uint64_t),
                                      cudaMemcpyHostToDevice, stream);
      e != cudaSuccess) {
    return CudaError("uploading a page table", e);
  }
  pages.pages_per_layer = layout.pages_per_layer;
  return pages.offsets;
}

absl::StatusOr<GpuFetcher::PendingCall*> GpuFetcher::Prepare(
    uint32_t layer, absl::Span<const SequenceLayout* const> layouts, cudaStream_t stream, Region* region) {
  if (layouts.empty()) return absl::InvalidArgumentError("empty batch");
  if (pending_.size() >= kMaxPendingCalls) {
    return absl::FailedPreconditionError(
        absl::StrCat(kMaxPendingCalls, " calls since the last Finish; call Finish first"));
  }
  const SequenceLayout& first = *layouts[0];
  std::vector<kernels::RowPages> rows;
  PendingCall call;
  call.layer = layer;
  for (size_t row = 0; row < layouts.size(); ++row) {
    const SequenceLayout& l = *layouts[row];
    if (!l.stripe_regions.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence ", l.sequence_id, " (batch row ", row, ") is striped over ", l.stripes(),
          " regions; this fetcher reads one region (the decode session reads striped sequences)"));
    }
    if (l.region.uuid != first.region.uuid) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch rows 0 and ", row, " live in different regions (", first.region.path, ", ",
          l.region.path, "); fetch each region's rows separately"));
    }
    if (l.entry_bytes != first.entry_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", l.sequence_id, " (batch row ", row,
                                                     ") has entry_bytes ", l.entry_bytes,
                                                     " but row 0 has ", first.entry_bytes));
    }
    if (layer >= l.layers) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is out of range for sequence ",
                                                     l.sequence_id, ", which has ", l.layers, " layers"));
    }
    auto pages = PagesFor(l, stream);
    if (!pages.ok()) return pages.status();
    rows.push_back(kernels::RowPages{*pages + size_t{layer} * l.pages_per_layer, l.tokens, l.page_tokens,
                                     l.entry_stride, l.sequence_id, l.record_offset});
    call.sequence_ids.push_back(l.sequence_id);
    call.tokens.push_back(l.tokens);
    call.record_offsets.push_back(l.record_offset);
  }
  auto mapped = options_.regions->Register(first.region);
  if (!mapped.ok()) return mapped.status();
  *region = *mapped;
  call.region_host = mapped->host;
  call.region_path = first.region.path;
  if (rows.size() > device_rows_capacity_) {
    if (device_rows_ != nullptr) {
      cudaStreamSynchronize(stream);
      cudaFree(device_rows_);
      device_rows_ = nullptr;
    }
    if (cudaError_t e = cudaMalloc(&device_rows_, rows.size() * sizeof(kernels::RowPages)); e != cudaSuccess) {
      device_rows_capacity_ = 0;
      return CudaError("allocating row tables", e);
    }
    device_rows_capacity_ = static_cast<uint32_t>(rows.size());
  }
  // Ordered on `stream` after the previous call's kernel, which read the last contents.
  if (cudaError_t e = cudaMemcpyAsync(device_rows_, rows.data(), rows.size() * sizeof(kernels::RowPages),
                                      cudaMemcpyHostToDevice, stream);
      e != cudaSuccess) {
    return CudaError("uploading row tables", e);
  }
  if (fault_pool_.size() <= pending_.size()) {
    kernels::GatherFault* fault = nullptr;
    if (cudaError_t e = cudaMallocHost(&fault, sizeof(kernels::GatherFault)); e != cudaSuccess) {
      return CudaError("allocating a fault record", e);
    }
    fault_pool_.push_back(fault);
  }
  call.fault = fault_pool_[pending_.size()];
  *call.fault = kernels::GatherFault{};
  pending_.push_back(std::move(call));
  return &pending_.back();
}

absl::Status GpuFetcher::FetchTopK(uint32_t layer, absl::Span<const SequenceLayout* const> layouts,
                                   const int32_t* device_indices, uint32_t k, std::byte* device_out,
                                   cudaStream_t stream) {
  Region region;
  auto call = Prepare(layer, layouts, stream, &region);
  if (!call.ok()) return call.status();
  kernels::GatherLaunch launch;
  launch.region = region.device;
  launch.region_bytes = region.bytes;
  launch.rows = device_rows_;
  launch.indices = device_indices;
  launch.batch = static_cast<uint32_t>(layouts.size());
  launch.k = k;
  launch.entry_bytes = layouts[0]->entry_bytes;
  launch.out = device_out;
  launch.out_bytes = uint64_t{launch.batch} * k * launch.entry_bytes;
  launch.fault = (*call)->fault;
  launch.max_blocks = options_.max_blocks;
  absl::Status launched = kernels::LaunchTopKGather(launch, stream);
  if (!launched.ok()) pending_.pop_back();
  return launched;
}

absl::Status GpuFetcher::FetchTopK(Client& client, uint32_t layer, absl::Span<const SequenceId> batch,
                                   const int32_t* device_indices, uint32_t k, std::byte* device_out,
                                   cudaStream_t stream) {
  std::vector<std::shared_ptr<const SequenceLayout>> held;
  std::vector<const SequenceLayout*> layouts;
  for (SequenceId id : batch) {
    auto layout = internal::CachedLayout(client, id);
    if (!layout.ok()) return layout.status();
    layouts.push_back(layout->get());
    held.push_back(*std::move(layout));
  }
  return FetchTopK(layer, layouts, device_indices, k, device_out, stream);
}

absl::Status GpuFetcher::FetchTopKCached(kernels::ResidencyCache& cache, uint32_t layer,
                                         absl::Span<const SequenceLayout* const> layouts,
                                         const uint32_t* device_instances, const int32_t* device_indices,
                                         uint32_t k, uint32_t step, int32_t* device_slots,
                                         cudaStream_t stream) {
  if (!layouts.empty() && layouts[0]->entry_bytes != cache.state().entry_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("entry_bytes ", layouts[0]->entry_bytes,
                                                   " does not match the cache's ", cache.state().entry_bytes));
  }
  Region region;
  auto call = Prepare(layer, layouts, stream, &region);
  if (!call.ok()) return call.status();
  kernels::ResidencyStepArgs args;
  args.region = region.device;
  args.rows = device_rows_;
  args.instances = device_instances;
  args.indices = device_indices;
  args.batch = static_cast<uint32_t>(layouts.size());
  args.k = k;
  args.step = step;
  args.out_slots = device_slots;
  args.fault = (*call)->fault;
  absl::Status launched = cache.Step(args, stream);
  if (!launched.ok()) pending_.pop_back();
  return launched;
}

absl::Status GpuFetcher::WriteBack(uint32_t layer, absl::Span<const SequenceLayout* const> layouts,
                                   const int32_t* device_tokens, const std::byte* device_entries,
                                   cudaStream_t stream) {
  Region region;
  auto call = Prepare(layer, layouts, stream, &region);
  if (!call.ok()) return call.status();
  // Held from before the check until the kernel has completed (a host function after
  // it on the stream ends it): until then the daemon reuses none of these pages.
  auto in_flight = std::make_unique<ReleaseFence::Ticket>(options_.fence != nullptr ? options_.fence->Enter()
                                                                                    : ReleaseFence::Ticket());
  // Never write through a stale layout into pages another sequence may now hold.
  for (const SequenceLayout* l : layouts) {
    if (absl::Status s = CheckSequenceLive(region.host, *l); !s.ok()) {
      pending_.pop_back();
      return s;
    }
  }
  kernels::WriteBackLaunch launch;
  launch.region = const_cast<std::byte*>(region.device);  // registered for writes too
  launch.region_bytes = region.bytes;
  launch.rows = device_rows_;
  launch.tokens = device_tokens;
  launch.entries = device_entries;
  launch.batch = static_cast<uint32_t>(layouts.size());
  launch.entry_bytes = layouts[0]->entry_bytes;
  launch.fault = (*call)->fault;
  absl::Status launched = kernels::LaunchWriteBack(launch, stream);
  if (!launched.ok()) {
    pending_.pop_back();
    return launched;
  }
  // The ticket ends when the stream reaches this point (host functions may not call
  // CUDA; ending a ticket does not).
  const auto end_ticket = [](void* ticket) { delete static_cast<ReleaseFence::Ticket*>(ticket); };
  if (cudaError_t e = cudaLaunchHostFunc(stream, end_ticket, in_flight.get()); e != cudaSuccess) {
    // The kernel is enqueued: hold the fence until it is done, then report.
    cudaStreamSynchronize(stream);
    return CudaError("enqueuing the end of a write-back's fence ticket", e);
  }
  in_flight.release();
  return absl::OkStatus();
}

absl::Status GpuFetcher::Finish(cudaStream_t stream) {
  if (cudaError_t e = cudaStreamSynchronize(stream); e != cudaSuccess) return CudaError("waiting for the stream", e);
  absl::Status first = absl::OkStatus();
  for (const PendingCall& call : pending_) {
    if (call.fault->flag != 0 && first.ok()) {
      first = kernels::FaultToStatus(*call.fault, call.sequence_ids, call.tokens, call.layer);
    }
    for (size_t row = 0; row < call.sequence_ids.size() && first.ok(); ++row) {
      first = CheckSequenceLive(call.region_host, call.sequence_ids[row], call.record_offsets[row], call.region_path);
    }
  }
  pending_.clear();
  return first;
}

}  // namespace sparsepool::bench
